import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { undiciHttp } from '../src/http/client.ts';
import { deposits } from '../src/operator/context.ts';
import { faultyHttp } from './support/faultyHttp.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * The operator's roles are agents over an injected `Http` (AccountManagerAgent, AcquirerAgent):
 * handing one operator's context a faulty network puts a fault between it and the other operator,
 * with both servers real. Here the answer of a peer call is lost after the peer committed; the
 * protocol still ends with one deposit on each side, one clearing, one withdrawal, and books that
 * balance.
 */
describe('operator agents with a fault between the two operators', () => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators('PGlite');
  }, 120_000);
  afterEach(() => {
    t.sek.ctx.http = undiciHttp;
    t.eur.ctx.http = undiciHttp;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function oneArticle() {
    const shopper = t.newShopper('SEK:1.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:10.00' });
    const bought = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });
    return { shopper, customerId: account.customerId, transactionId: bought.receipt.transactionId, handle: bought.receipt.handle };
  }

  /** Exactly one deposit, clearing and billing record of this transaction on each side, and both audits clean. */
  async function oneOfEach(p: { customerId: string; transactionId: string; handle: string }) {
    const am = await t.sek.ctx.db.query<{ id: string; state: string }>('SELECT id, state FROM am_transactions WHERE customer_id = $1', [p.customerId]);
    expect(am).toEqual([{ id: p.transactionId, state: 'cleared' }]);
    const acq = await t.eur.ctx.db.query<{ state: string }>('SELECT state FROM acq_transactions WHERE id = $1', [p.handle]);
    expect(acq).toEqual([{ state: 'cleared' }]);
    // One reservation on each side (a pending transfer of the ledger), posted once.
    for (const [op, id] of [
      [t.sek, deposits.customer(p.transactionId)],
      [t.eur, deposits.acquirer(p.handle)],
    ] as const) {
      const pending = await op.ctx.db.query<{ state: string }>('SELECT state FROM pending_transfers WHERE id = $1', [id]);
      expect(pending, id).toEqual([{ state: 'posted' }]);
      const posts = await op.ctx.db.query<{ id: string }>('SELECT id FROM movements WHERE id LIKE $1', [`%${id}%`]);
      expect(posts.map((m) => m.id)).toEqual([`post:${id}`]);
    }
    const withdrawals = (await t.billingLines('sek')).filter((r) => r.type === 'am.withdrawal' && r.body.transactionId === p.transactionId);
    expect(withdrawals.map((r) => [r.body.amount, r.body.amountMerchant])).toEqual([['SEK:0.34', 'EUR:0.03']]);
    const depositRecords = (await t.billingLines('eur')).filter((r) => r.type === 'am.deposit' && r.body.transactionId === p.handle);
    expect(depositRecords.map((r) => r.body.amount)).toEqual(['EUR:0.03']);
    for (const op of [t.sek, t.eur]) {
      expect(await t.admin(op, OperatorPaths.adminAudit), `${op.ctx.config.operatorId} audit`).toMatchObject({ ok: true });
    }
  }

  it("the acquirer's answer to the forwarded customer record is lost after it stored the record: the record is sent again and clears once", async () => {
    const p = await oneArticle();
    const net = faultyHttp([{ path: OperatorPaths.peerCustomerRecord, method: 'POST', lose: 'answer', times: 1 }]);
    t.sek.ctx.http = net.http;

    await p.shopper.endTransaction(p.transactionId);
    await t.shop.agent.settled();

    // The fault struck: the acquirer answered the first copy (it had stored the record), and the
    // account manager never heard it; the wallet's resend went through it again.
    expect(net.faults[0]!.times).toBe(0);
    expect(net.posts(OperatorPaths.peerCustomerRecord).length).toBe(2);
    expect(net.answers(OperatorPaths.peerCustomerRecord).length).toBe(2);
    expect(await p.shopper.transactionStatus(p.transactionId)).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.03', chargedCustomer: 'SEK:0.34' });
    await oneOfEach(p);
  });

  it("the account manager's answer to the clearing information is lost after it applied it: the acquirer's timer sends it again, nothing moves twice", async () => {
    const p = await oneArticle();
    // The clearing goes first in a batch (acquirer.clearings), whose answer is lost; the acquirer
    // then sends it on its own at once, and that answer is lost too.
    const net = faultyHttp([
      { path: OperatorPaths.peerClearings, method: 'POST', lose: 'answer', times: 1 },
      { path: OperatorPaths.peerClearing, method: 'POST', lose: 'answer', times: 1 },
    ]);
    t.eur.ctx.http = net.http;
    // The merchant's record first (it alone clears nothing before the deadline), then the
    // wallet's: the acquirer clears on it, and its clearing information reaches the account
    // manager, which applies it; the answer back is lost.
    await t.shop.agent.stop(p.handle);
    await t.shop.agent.settled();
    await p.shopper.endTransaction(p.transactionId);

    expect(net.faults.map((f) => f.times)).toEqual([0, 0]);
    expect(net.answers(OperatorPaths.peerClearings)).toEqual([{ results: [{ ok: { transactionId: p.handle, state: 'cleared' } }] }]);
    expect(net.answers(OperatorPaths.peerClearing)).toEqual([{ transactionId: p.handle, state: 'cleared' }]);
    // The acquirer still holds it as undelivered.
    const deliveredAt = async () =>
      (await t.eur.ctx.db.query<{ done_at: unknown }>(`SELECT done_at FROM outbox WHERE topic = 'clearing' AND key = $1`, [p.handle]))[0]?.done_at;
    expect(await deliveredAt()).toBeNull();

    // The acquirer's timer, called on the agent, sends it again after its back-off (10 s ± 20 %):
    // the copy is answered, not applied again.
    t.clock.advance(60_000);
    expect(await t.eur.acquirer.settleDeadlines()).toMatchObject({ resent: 1, refused: 0 });
    expect(net.posts(OperatorPaths.peerClearing).length).toBe(2);
    expect(net.answers(OperatorPaths.peerClearing)[1]).toEqual({ transactionId: p.handle, state: 'cleared' });
    expect(await deliveredAt()).not.toBeNull();

    expect(await p.shopper.transactionStatus(p.transactionId)).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.03', chargedCustomer: 'SEK:0.34' });
    await oneOfEach(p);
  });
});
