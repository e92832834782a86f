import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { parseAmount } from '@obol/protocol/money';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson } from '../src/http/client.ts';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * Refunds after clearing (issue 14 item 2): the merchant asks its operator, the money goes back
 * across the interoperator account, the shopper's operator credits her in SEK at the rate pinned
 * for the transaction; both ledgers, both billing sinks and both audits account for it, and
 * every wrong request is a catalogue error with nothing moved.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('refunds after clearing on %s', (engine) => {
  let t: TwoOperators;
  const shopAdminToken = 'shop-admin-token-for-refund-tests-0123456789';
  beforeAll(async () => {
    t = await twoOperators(engine, { shopAdminToken });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  const ids = ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];
  /** A shopper of op-sek with `n` purchases of EUR 0.03 at the news shop, cleared (or left open). */
  async function clearedPurchases(n: number, clear = true) {
    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:50.00' });
    let transactionId = '';
    let handle = '';
    for (let i = 0; i < n; i++) {
      const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: ids[i]!, price: 'EUR:0.03', origin: t.shop.url });
      transactionId = r.receipt.transactionId;
      handle = r.receipt.handle;
    }
    if (clear) {
      await t.shop.agent.stop(handle);
      await t.shop.agent.settled();
      await shopper.report(transactionId);
      expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'cleared', chargedMerchant: `EUR:0.0${n * 3}` });
    }
    return { shopper, customerId: account.customerId, transactionId, handle };
  }
  const balances = async () => {
    const rows = [
      ...((await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>),
      ...((await t.admin(t.eur, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>).map((r) => ({ ...r, account: `eur/${r.account}` })),
    ];
    return Object.fromEntries(rows.map((r) => [r.account, r.balance]));
  };
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true, refundProblems: [] });
  }
  const refundThroughAdmin = (body: object, token = shopAdminToken) =>
    postJson(`${t.shop.moduleUrl}${MerchantPaths.adminRefunds}`, body, { headers: { authorization: `Bearer ${token}` } });
  async function refusal(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      if (e instanceof ObolError) return e.name;
      throw e;
    }
    throw new Error('expected a refusal');
  }

  it('refunds part, then the rest: the shopper gets back in SEK exactly what she paid, both books and billings agree', async () => {
    const { shopper, customerId, transactionId, handle } = await clearedPurchases(2);
    const before = await balances();
    // EUR 0.06 cost her SEK 0.69 at the pinned 0.0874 (0.06 / 0.0874 = 0.6865 → 0.69, half-even).
    expect(before[`customer:${customerId}`]).toBe('SEK:49.31');

    const first = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03' });
    expect(first).toMatchObject({ transactionId: handle, n: 1, amount: 'EUR:0.03', refundedTotal: 'EUR:0.03' });
    const afterFirst = await balances();
    // 0.03 / 0.0874 = 0.3432 → SEK 0.34.
    expect(afterFirst[`customer:${customerId}`]).toBe('SEK:49.65');
    expect(parseAmount(afterFirst['eur/merchant:news.example']!).value).toBe(parseAmount(before['eur/merchant:news.example']!).value - 3n);

    // The rest, through the shop's administration route: what the two come to is what she paid.
    const second = (await refundThroughAdmin({ transactionId: handle, amount: 'EUR:0.03' })) as { n: number; refundedTotal: string };
    expect(second).toMatchObject({ n: 2, refundedTotal: 'EUR:0.06' });
    const afterSecond = await balances();
    expect(afterSecond[`customer:${customerId}`]).toBe('SEK:50.00');

    // The wallet sees both, in its own currency, when it next asks its operator.
    const status = await shopper.transactionStatus(transactionId);
    expect(status.refunds).toEqual([
      expect.objectContaining({ transactionId, n: 1, amount: 'SEK:0.34', amountMerchant: 'EUR:0.03' }),
      expect.objectContaining({ transactionId, n: 2, amount: 'SEK:0.35', amountMerchant: 'EUR:0.03' }),
    ]);

    // Billing: one refund record per refund on each side, as signed by each operator.
    const sekRecords = (await t.billingLines('sek')).filter((l) => l.type === 'am.refund' && l.body.transactionId === transactionId);
    expect(sekRecords.map((r) => [r.body.side, r.body.n, r.body.amount, r.body.amountMerchant, r.body.customerId])).toEqual([
      ['customer', 1, 'SEK:0.34', 'EUR:0.03', customerId],
      ['customer', 2, 'SEK:0.35', 'EUR:0.03', customerId],
    ]);
    const eurRecords = (await t.billingLines('eur')).filter((l) => l.type === 'am.refund' && l.body.transactionId === handle);
    expect(eurRecords.map((r) => [r.body.side, r.body.n, r.body.amount, r.body.merchantId])).toEqual([
      ['merchant', 1, 'EUR:0.03', 'news.example'],
      ['merchant', 2, 'EUR:0.03', 'news.example'],
    ]);
    // Nothing is left to refund.
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.01' }))).toBe('AMOUNT_EXCEEDS_SIGNED');
    expect(await balances()).toEqual(afterSecond);
    await audits();
  });

  it('a resent refund is the same refund; its id for another amount, an amount over what was paid, another merchant’s, unknown and uncleared purchases are refused with nothing moved', async () => {
    // A session still open, and a second merchant of op-eur with its own key.
    const open = await clearedPurchases(1, false);
    const other = await keyHandle(await generateSigningKeyPair());
    await t.admin(t.eur, OperatorPaths.adminMerchants, {
      merchantId: 'other.example',
      publicKey: other.publicKeySpki,
      origins: ['http://other.example'],
      url: 'http://127.0.0.1:9/obol',
    });
    const { handle, customerId, shopper, transactionId } = await clearedPurchases(1);
    const refundId = randomId();
    const first = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.01', refundId });
    const afterFirst = await balances();
    expect(afterFirst[`customer:${customerId}`]).toBe('SEK:49.77'); // paid 0.34, back 0.11 (0.01 / 0.0874 = 0.1144)
    // The wallet learns it from its operator's list of refunds, once.
    expect(await shopper.refreshRefunds()).toBe(1);
    expect(await shopper.refreshRefunds()).toBe(0);
    expect((await shopper.transaction(transactionId))?.refunds).toEqual([{ n: 1, amount: 'SEK:0.11', amountMerchant: 'EUR:0.01', time: expect.any(Number) }]);
    // The same refund again (a lost answer, a CLI retry): the same answer, nothing moves.
    const again = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.01', refundId });
    expect(again.refund).toEqual(first.refund);
    expect(await balances()).toEqual(afterFirst);
    // The same id for another refund is a replay, refused.
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.02', refundId }))).toBe('REPLAYED');
    // More than is left (0.02 of 0.03).
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03' }))).toBe('AMOUNT_EXCEEDS_SIGNED');
    // Unknown purchase.
    expect(await refusal(t.shop.agent.refund({ transactionId: 't-AAAAAAAAAAAAAAAAAAAAAA', amount: 'EUR:0.01' }))).toBe('UNKNOWN_TRANSACTION');
    // A session closed but not cleared yet (the wallet has not reported): its record is signed and
    // on its way, so no refund line any more, and the operators refuse until clearing.
    await t.shop.agent.stop(open.handle);
    await t.shop.agent.settled();
    expect(await refusal(t.shop.agent.refund({ transactionId: open.handle, amount: 'EUR:0.01' }))).toBe('CONFLICT');
    // Another merchant of the same operator, with its own key, cannot refund the news shop's sale.
    const foreign = await signMessage(
      'merchant.refund',
      { refundId: randomId(), transactionId: handle, merchantId: 'other.example', amount: 'EUR:0.01', time: t.clock.now() },
      other.signer,
    );
    expect(await refusal(postJson(`${t.eur.url}${OperatorPaths.merchantRefund}`, foreign))).toBe('UNKNOWN_TRANSACTION');
    // …nor by naming the news shop in a message signed with its own key.
    const posing = await signMessage(
      'merchant.refund',
      { refundId: randomId(), transactionId: handle, merchantId: 'news.example', amount: 'EUR:0.01', time: t.clock.now() },
      other.signer,
    );
    expect(await refusal(postJson(`${t.eur.url}${OperatorPaths.merchantRefund}`, posing))).toBe('UNAUTHORIZED');
    // The shop's administration route wants its token.
    expect(await refusal(refundThroughAdmin({ transactionId: handle, amount: 'EUR:0.01' }, 'wrong-token-wrong-token-wrong-token'))).toBe('UNAUTHORIZED');
    expect(await refusal(refundThroughAdmin({ transactionId: handle, amount: 'EUR:-0.01' }))).toBe('MALFORMED');
    expect(await refusal(refundThroughAdmin({ transactionId: handle, amount: 'SEK:0.01' }))).toBe('CURRENCY_MISMATCH');
    expect(await balances()).toEqual(afterFirst);
    await audits();
  });

  it('a copy of a refund delivered again to the customer’s operator credits nothing twice', async () => {
    const { handle, customerId, transactionId, shopper } = await clearedPurchases(1);
    const refund = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03' });
    // A copy of the acquirer's signed refund, sent again to op-sek, changes nothing.
    const copy = (await postJson(`${t.sek.url}${OperatorPaths.peerRefund}`, refund.refund)) as { amount: string };
    expect(copy.amount).toBe('SEK:0.34');
    expect((await balances())[`customer:${customerId}`]).toBe('SEK:50.00');
    expect((await shopper.transactionStatus(transactionId)).refunds).toHaveLength(1);
    // A refund that arrives before the clearing it follows is put off (CONFLICT: the acquirer's
    // outbox sends it again), and credits nothing meanwhile.
    const open = await clearedPurchases(1, false);
    const early = await signMessage(
      'acquirer.refund',
      { msgId: randomId(), transactionId: open.handle, n: 1, refundId: randomId(), amount: 'EUR:0.01', refundedTotal: 'EUR:0.01', time: t.clock.now() },
      t.eur.ctx.identity.key.signer,
    );
    const before = await balances();
    expect(await refusal(postJson(`${t.sek.url}${OperatorPaths.peerRefund}`, early))).toBe('CONFLICT');
    // Signed by anyone but the merchant's operator, it is not a refund at all.
    const forged = await signMessage('acquirer.refund', early.body, t.sek.ctx.identity.key.signer);
    expect(await refusal(postJson(`${t.sek.url}${OperatorPaths.peerRefund}`, forged))).toBe('UNAUTHORIZED');
    expect(await balances()).toEqual(before);
    await audits();
  });
});
