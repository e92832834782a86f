import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { formatAmount } from '@obol/protocol/money';
import { signMessage } from '@obol/protocol/signed';
import { postJson } from '../src/http/client.ts';
import { type TwoOperators, initiateBody, rawCustomer, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * The merchant's operator cannot reach the merchant when a wallet opens a deposit. The wallet is
 * told UNAVAILABLE and its deposit goes back; the same message sent again is a clean retry (the
 * same answer while the merchant is away, a deposit once it is back), never a constraint error;
 * and the shopper can buy again the moment the merchant is reachable.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('an unreachable merchant on %s', (engine) => {
  let t: TwoOperators;
  let merchantUrl = '';
  beforeAll(async () => {
    t = await twoOperators(engine);
    const [merchant] = await t.eur.ctx.db.query<{ url: string }>(`SELECT url FROM merchants WHERE id = 'news.example'`);
    merchantUrl = merchant!.url;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  // Nothing listens on port 1: the acquirer's call to the merchant is refused.
  const merchantDown = () => t.eur.ctx.db.query(`UPDATE merchants SET url = 'http://127.0.0.1:1/obol' WHERE id = 'news.example'`);
  const merchantUp = () => t.eur.ctx.db.query(`UPDATE merchants SET url = $1 WHERE id = 'news.example'`, [merchantUrl]);
  const code = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { name?: string }) => e.name);
  /** What the customer can spend: the account's balance less the deposits reserved on it. */
  const balanceOf = async (customerId: string) => {
    const account = await t.sek.ctx.ledger.account(`customer:${customerId}`);
    return formatAmount({ currency: account.currency, value: account.balance - account.debitsPending });
  };
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }

  it('the same initiation sent again gets UNAVAILABLE while the merchant is away, and opens the deposit once it is back', async () => {
    const { key, customerId, session } = await rawCustomer(t);
    const sessionKey = await keyHandle(await generateSigningKeyPair());
    const initiate = await signMessage('wallet.initiate', await initiateBody(t, session.sessionId, sessionKey), key.signer);

    await merchantDown();
    for (let i = 0; i < 3; i++) {
      expect(await code(postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate))).toBe('UNAVAILABLE');
      expect(await balanceOf(customerId)).toBe('SEK:10.00');
    }
    await merchantUp();
    const ack = (await postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate)) as { type: string; body: { transactionId: string } };
    expect(ack.type).toBe('am.ack');
    expect(await balanceOf(customerId)).toBe('SEK:8.00');
    // From now on the answer is the first one, and nothing more is reserved.
    expect(await postJson(`${t.sek.url}${OperatorPaths.initiate}`, initiate)).toEqual(ack);
    expect(await balanceOf(customerId)).toBe('SEK:8.00');
    await audits();
  });

  it('a shopper whose purchase failed because the merchant was away buys at once when it is back', async () => {
    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const buy = () => shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });

    await merchantDown();
    expect(await code(buy())).toBe('UNAVAILABLE');
    expect(await code(buy())).toBe('UNAVAILABLE');
    expect(await balanceOf(account.customerId)).toBe('SEK:10.00');
    await merchantUp();
    await expect(buy()).resolves.toMatchObject({ receipt: { productId: 'two-banks' } });
    expect(await balanceOf(account.customerId)).toBe('SEK:8.00');
    await audits();
  });
});
