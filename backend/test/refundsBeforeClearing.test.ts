import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { randomId } from '@obol/protocol/webcrypto';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * Refunds before clearing (issue 14 item 2): while the session is open the merchant signs a refund
 * line for a purchase; its record reports the accepted cumulative minus the lines, the wallet
 * learns them in the merchant's answer to its stop and sends a record that agrees, and clearing
 * charges the lowered total — the shopper's operator returns the difference with the unused
 * deposit at the pinned rate. No new money path: both ledgers, billing records and audits are
 * those of any clearing.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('refunds before clearing on %s', (engine) => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators(engine);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  const ids = ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];
  /** A shopper of op-sek with `n` purchases of EUR 0.03 at the news shop, the session left open. */
  async function openPurchases(n: number) {
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
    return { shopper, customerId: account.customerId, transactionId, handle };
  }
  const customerBalance = async (customerId: string) => {
    const rows = (await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>;
    return rows.find((r) => r.account === `customer:${customerId}`)?.balance;
  };
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }
  async function refusal(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      if (e instanceof ObolError) return e.name;
      throw e;
    }
    throw new Error('expected a refusal');
  }

  it('a refund line in an open session: the wallet learns it, the records agree, she pays the lowered total at the pinned rate', async () => {
    const { shopper, customerId, transactionId, handle } = await openPurchases(2);
    const line = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.02', n: 2 });
    expect(line).toMatchObject({ transactionId: handle, n: 2, amount: 'EUR:0.02', refundedTotal: 'EUR:0.02' });
    expect(line.refund).toBeUndefined();
    expect(line.line?.type).toBe('merchant.refundLine');

    // The wallet's stop: the merchant answers with its lines, the wallet checks and keeps them.
    await shopper.endTransaction(transactionId);
    const tx = await shopper.transaction(transactionId);
    // EUR 0.06 would have cost SEK 0.69 (0.06 / 0.0874 → 0.6865); EUR 0.04 costs SEK 0.46 (0.4577):
    // the line is worth SEK 0.23 to her, by the bank's rule.
    expect(tx?.total).toBe('EUR:0.04');
    expect(tx?.refunds).toEqual([{ n: 2, amount: 'SEK:0.23', amountMerchant: 'EUR:0.02', time: expect.any(Number), beforeClearing: { refundId: line.refundId } }]);
    await t.shop.agent.settled();
    await shopper.report(transactionId);
    const status = await shopper.transactionStatus(transactionId);
    expect(status).toMatchObject({ state: 'cleared', outcome: 'agreed', flagged: false, chargedMerchant: 'EUR:0.04' });
    expect(await customerBalance(customerId)).toBe('SEK:49.54');

    // The billing records are those of a clearing at the lowered total.
    const withdrawal = (await t.billingLines('sek')).find((l) => l.type === 'am.withdrawal' && l.body.transactionId === transactionId);
    expect(withdrawal?.body).toMatchObject({ amount: 'SEK:0.46', amountMerchant: 'EUR:0.04', count: 2, flagged: false });
    const deposit = (await t.billingLines('eur')).find((l) => l.type === 'am.deposit' && l.body.transactionId === handle);
    expect(deposit?.body).toMatchObject({ amount: 'EUR:0.04', count: 2, flagged: false });
    // Once closed, a refund is one after clearing, through the operators.
    const after = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.04' });
    expect(after.refund?.type).toBe('acquirer.refund');
    expect(await customerBalance(customerId)).toBe('SEK:50.00');
    await audits();
  });

  it('a line never raises a total nor refunds more than purchase n cost; a resent line is the same line', async () => {
    const { shopper, customerId, transactionId, handle } = await openPurchases(2);
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.04', n: 1 }))).toBe('CONFLICT');
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.01', n: 3 }))).toBe('CONFLICT');
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'SEK:0.01', n: 1 }))).toBe('CURRENCY_MISMATCH');
    const refundId = randomId();
    const first = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.02', n: 1, refundId });
    const again = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.02', n: 1, refundId });
    expect(again).toEqual(first);
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.01', n: 1, refundId }))).toBe('CONFLICT');
    // 0.02 of purchase 1's 0.03 is refunded: 0.02 more would be more than it cost.
    expect(await refusal(t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.02', n: 1 }))).toBe('CONFLICT');
    // Without n: the latest purchase with room for it (purchase 2).
    const second = await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03' });
    expect(second).toMatchObject({ n: 2, refundedTotal: 'EUR:0.05' });
    await shopper.endTransaction(transactionId);
    expect((await shopper.transaction(transactionId))?.refunds?.map((r) => r.amountMerchant).sort()).toEqual(['EUR:0.02', 'EUR:0.03']);
    await t.shop.agent.settled();
    await shopper.report(transactionId);
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'cleared', outcome: 'agreed', flagged: false, chargedMerchant: 'EUR:0.01' });
    // EUR 0.01 → SEK 0.11 (0.1144).
    expect(await customerBalance(customerId)).toBe('SEK:49.89');
    await audits();
  });

  it('a wallet that never learnt of the line clears safely: at the merchant’s lower total, flagged', async () => {
    const { shopper, customerId, transactionId, handle } = await openPurchases(2);
    await t.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03', n: 1 });
    // The wallet reports without a stop to the merchant: its record says EUR 0.06, no line.
    await shopper.report(transactionId);
    expect((await shopper.transaction(transactionId))?.refunds).toBeUndefined();
    // The merchant closes: its record says EUR 0.03.
    await t.shop.agent.stop(handle);
    await t.shop.agent.settled();
    const status = await shopper.transactionStatus(transactionId);
    // decideClearing 'proven': never more than the merchant claims, the disagreement flagged.
    expect(status).toMatchObject({ state: 'cleared', outcome: 'proven', flagged: true, chargedMerchant: 'EUR:0.03' });
    // EUR 0.03 → SEK 0.34 (0.3432).
    expect(await customerBalance(customerId)).toBe('SEK:49.66');
    await audits();
  });
});
