import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperatorPaths } from '@obol/protocol/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newsCatalogue } from '../src/demo/catalogues.ts';
import { openDb } from '../src/store/db.ts';
import { MERCHANT_KEY_FILE } from '../src/merchant/setup.ts';
import { type ShopOptions, startShop } from '../src/world/shop.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * A shop restarted on its data and key folders (after a crash, a deploy) keeps its signing key.
 * The wallet checks every delivery against the merchant certificate it got when the session
 * opened; a shop that came back with a new key broke every open session at it (BAD_SIGNATURE on
 * each purchase until the session ran out), as the crash trial found.
 */
describe('a shop restarted on its folders', () => {
  let t: TwoOperators;
  let dir: string;
  beforeAll(async () => {
    t = await twoOperators('PGlite');
    dir = await mkdtemp(join(tmpdir(), 'obol-shop-restart-'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs with the same key, so a session opened before the restart goes on after it', { timeout: 180_000 }, async () => {
    const options: ShopOptions = {
      merchantId: 'papers.example',
      name: 'Papers',
      operatorUrl: t.eur.url,
      operatorId: 'op-eur',
      currency: 'EUR',
      adminToken: t.world.adminToken,
      catalogue: newsCatalogue('EUR'),
      clock: t.clock,
      keyDir: join(dir, 'keys'),
      sweepIntervalMs: 0,
    };
    const first = await startShop({ ...options, db: await openDb({ dataDir: join(dir, 'data') }) });
    const port = Number(new URL(first.url).port);
    expect((await stat(join(dir, 'keys', MERCHANT_KEY_FILE))).mode & 0o777).toBe(0o600);

    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const before = await shopper.buy({ merchantUrl: first.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03' });
    const kid = first.key.kid;
    await first.close();

    const db = await openDb({ dataDir: join(dir, 'data') });
    const second = await startShop({ ...options, port, db });
    try {
      expect(second.key.kid).toBe(kid);
      const after = await shopper.buy({ merchantUrl: second.moduleUrl, productId: 'two-banks', price: 'EUR:0.03' });
      expect(after.receipt.transactionId).toBe(before.receipt.transactionId);
      expect(after.receipt.status).toBe('delivered');
      expect(new TextDecoder().decode(after.content)).toContain('Two banks');
    } finally {
      await second.close();
      await db.close();
    }
  });
});
