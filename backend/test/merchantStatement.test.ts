import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths, STATEMENT_WINDOW_MS } from '@obol/protocol/api';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson } from '../src/http/client.ts';
import { formatDeposits, formatPayouts, formatStatus, requestStatement } from '../src/merchant/statement.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * Issue 15 item 4: a merchant's own statement from its operator, asked with its own key (never
 * the operator's admin token), fresh and once only: balance, deposits and how each cleared.
 */
describe('a merchant’s statement at its operator', () => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators('PGlite');
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  const post = (url: string, body: unknown) => postJson(url, body);
  const ask = (query = {}) => requestStatement({ operatorUrl: t.eur.url, merchantId: 'news.example', key: t.shop.key, now: t.clock.now(), post }, query);

  it('shows the balance owed, the cleared deposit and the open one', async () => {
    const shopper = t.newShopper('SEK:1.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const origin = t.shop.url;
    const a1 = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03', origin });
    await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin });
    await shopper.endTransaction(a1.receipt.transactionId);
    await t.shop.agent.settled();
    t.clock.advance(1000);
    // A second session, still open.
    await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'fair-exchange', price: 'EUR:0.03', origin });

    const s = await ask();
    expect(s.merchantId).toBe('news.example');
    expect(s.operatorId).toBe('op-eur');
    expect(s.balances).toEqual([{ currency: 'EUR', balance: 'EUR:0.06', reserved: 'EUR:0.08', openDeposits: 1, clearedDeposits: 1 }]);
    expect(s.deposits.map((d) => [d.state, d.deposit, d.charged, d.count, d.outcome])).toEqual([
      ['open', 'EUR:0.08', null, null, null],
      ['cleared', 'EUR:0.08', 'EUR:0.06', 2, 'agreed'],
    ]);
    const cleared = s.deposits[1]!;
    expect(cleared.unused).toBe('EUR:0.02');
    expect(cleared.clearedAt).toBeGreaterThanOrEqual(cleared.openedAt);
    // It agrees with the operator's own books.
    const books = (await t.admin(t.eur, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>;
    expect(books.find((b) => b.account === 'merchant:news.example')?.balance).toBe('EUR:0.06');

    expect(formatStatus(s)).toContain('balance EUR:0.06');
    expect(formatDeposits(s)).toMatch(/cleared\s+EUR:0.08\s+EUR:0.06\s+2\s+agreed/);
    expect(formatPayouts(s)).toContain('Owed to you by op-eur: EUR:0.06');
    expect(formatPayouts(s)).toMatch(/2026-11-23\s+1\s+EUR:0.06/);

    // `since` and `limit` bound the list.
    expect((await ask({ limit: 1 })).deposits.map((d) => d.state)).toEqual(['open']);
    expect((await ask({ since: t.clock.now() + 1 })).deposits).toEqual([]);
  });

  it('refuses a replay, a stale request, another merchant’s name and an unknown key', async () => {
    const url = `${t.eur.url}${OperatorPaths.merchantStatement}`;
    const signed = await signMessage('merchant.statement', { msgId: randomId(), merchantId: 'news.example', time: t.clock.now() }, t.shop.key.signer);
    await postJson(url, signed);
    await expect(postJson(url, signed)).rejects.toMatchObject({ name: 'REPLAYED' });

    const stale = await signMessage('merchant.statement', { msgId: randomId(), merchantId: 'news.example', time: t.clock.now() - STATEMENT_WINDOW_MS - 1 }, t.shop.key.signer);
    await expect(postJson(url, stale)).rejects.toMatchObject({ name: 'UNAUTHORIZED' });

    const otherName = await signMessage('merchant.statement', { msgId: randomId(), merchantId: 'other.example', time: t.clock.now() }, t.shop.key.signer);
    await expect(postJson(url, otherName)).rejects.toMatchObject({ name: 'UNAUTHORIZED' });

    const stranger = await keyHandle(await generateSigningKeyPair());
    const unknown = await signMessage('merchant.statement', { msgId: randomId(), merchantId: 'news.example', time: t.clock.now() }, stranger.signer);
    await expect(postJson(url, unknown)).rejects.toMatchObject({ name: 'UNKNOWN_KEY' });

    // The operator's admin token is no way in: the route answers signed requests only.
    await expect(postJson(url, {}, { headers: { authorization: `Bearer ${t.world.adminToken}` } })).rejects.toMatchObject({ name: 'MALFORMED' });
  });
});
