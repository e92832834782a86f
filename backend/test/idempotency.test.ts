import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { randomId, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import type { OperatorServer } from '../src/operator/server.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/** Issue 15 item 6: administration calls take an `Idempotency-Key`; a retried call has no second effect. */
describe('Idempotency-Key on administration calls', () => {
  const shopAdminToken = 'shop-admin-token-for-idempotency';
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators('PGlite', { shopAdminToken });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  const adminPost = (op: OperatorServer, url: string, body: unknown, key?: string) =>
    op.app.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${t.world.adminToken}`, ...(key ? { 'idempotency-key': key } : {}) },
      payload: body as object,
    });

  async function newCustomer(): Promise<string> {
    const shopper = t.newShopper();
    return (await shopper.register(t.sek.url)).customerId;
  }
  const balanceOf = async (customerId: string) =>
    ((await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>).find((b) => b.account === `customer:${customerId}`)?.balance;

  it('funds once for a key sent twice, and says the second answer is a replay', async () => {
    const customerId = await newCustomer();
    const key = randomId();
    const first = await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:5.00' }, key);
    const second = await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:5.00' }, key);
    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(first.json());
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await balanceOf(customerId)).toBe('SEK:5.00');
    // Without a key, each call is its own.
    await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:1.00' });
    await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:1.00' });
    expect(await balanceOf(customerId)).toBe('SEK:7.00');
  });

  it('refuses the same key with another body (409 CONFLICT) and a malformed key (400)', async () => {
    const customerId = await newCustomer();
    const key = randomId();
    expect((await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:2.00' }, key)).statusCode).toBe(200);
    const other = await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:3.00' }, key);
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ error: { name: 'CONFLICT' } });
    // The key is per route: the same key on another route is another request.
    const limit = await adminPost(t.sek, OperatorPaths.adminCreditLimit, { accountId: `customer:${customerId}`, limit: 'SEK:1.00' }, key);
    expect(limit.statusCode).toBe(200);
    const bad = await adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:2.00' }, 'with space');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { name: 'MALFORMED' } });
    expect(await balanceOf(customerId)).toBe('SEK:2.00');
  });

  it('replays a refusal the same way, and funds once when two copies race', async () => {
    const key = randomId();
    const refused = await adminPost(t.sek, OperatorPaths.adminFund, { customerId: 'nobody', amount: 'SEK:2.00' }, key);
    const again = await adminPost(t.sek, OperatorPaths.adminFund, { customerId: 'nobody', amount: 'SEK:2.00' }, key);
    expect(refused.statusCode).toBe(404);
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual(refused.json());

    const customerId = await newCustomer();
    const raceKey = randomId();
    const answers = await Promise.all([1, 2, 3].map(() => adminPost(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:4.00' }, raceKey)));
    // Each copy either did the funding, replayed it, or was told the first is still running.
    for (const a of answers) expect([200, 409]).toContain(a.statusCode);
    expect(answers.filter((a) => a.statusCode === 200 && a.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(await balanceOf(customerId)).toBe('SEK:4.00');
  });

  it('adds a product once on the shop’s administration, and refuses the key for another product', async () => {
    const key = randomId();
    const product = (id: string) => ({
      productId: id,
      title: 'Idempotent',
      description: 'added once',
      price: 'EUR:0.02',
      contentType: 'text/plain',
      content: toBase64Url(utf8.encode(`content of ${id}`)),
    });
    const post = (body: unknown) =>
      t.shop.app.inject({
        method: 'POST',
        url: `/obol${MerchantPaths.adminProducts}`,
        headers: { authorization: `Bearer ${shopAdminToken}`, 'idempotency-key': key },
        payload: body as object,
      });
    const first = await post(product('idem-1'));
    const second = await post(product('idem-1'));
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ productId: 'idem-1', result: 'added' });
    // Without the key the second call would say 'unchanged'; with it, it is the first answer.
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect((await post(product('idem-2'))).statusCode).toBe(409);
  });
});
