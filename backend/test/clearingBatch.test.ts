import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { formatAmount, parseAmount } from '@obol/protocol/money';
import { newTradeHandle } from '@obol/protocol/identity';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson, undiciHttp } from '../src/http/client.ts';
import { deposits } from '../src/operator/context.ts';
import { faultyHttp } from './support/faultyHttp.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * Clearing information many to a message (`acquirer.clearings`, POST /v1/peer/clearings): each
 * item is applied on its own terms and answered on its own — a bad one fails alone, a batch sent
 * again moves nothing twice, and a batch whose answer is lost is delivered again without a
 * second booking.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('clearing information in batches on %s', (engine) => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators(engine);
  }, 120_000);
  afterEach(() => {
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

  async function clearingOf(handle: string, charged: string, unused?: string) {
    const [row] = await t.sek.ctx.db.query<{ deposit_merchant: string }>('SELECT deposit_merchant FROM am_transactions WHERE trade_handle = $1', [handle]);
    const deposit = parseAmount(row?.deposit_merchant ?? 'EUR:0.17');
    const c = parseAmount(charged);
    return signMessage(
      'acquirer.clearing',
      {
        msgId: randomId(),
        transactionId: handle,
        outcome: 'agreed',
        flagged: false,
        count: 1,
        charged,
        unused: unused ?? formatAmount({ currency: c.currency, value: deposit.value - c.value }),
        time: t.clock.now(),
      },
      t.eur.ctx.identity.key.signer,
    );
  }

  const postsOf = async (id: string) => (await t.sek.ctx.db.query<{ id: string }>('SELECT id FROM movements WHERE id LIKE $1', [`%${id}%`])).map((m) => m.id);
  /** The withdrawal records written for billing (the outbox, one entry per sink), by what they charge the merchant side. */
  const withdrawalsOf = async (transactionId: string) =>
    (
      await t.sek.ctx.db.query<{ amount: string }>(
        `SELECT payload->'body'->>'amountMerchant' AS amount FROM outbox
          WHERE topic LIKE 'billing:%' AND payload->>'type' = 'am.withdrawal' AND payload->'body'->>'transactionId' = $1`,
        [transactionId],
      )
    ).map((r) => r.amount);

  it('a batch with bad items: the good one is booked, each bad one refused alone, and the batch sent again moves nothing twice', async () => {
    const good = await oneArticle();
    const bad = await oneArticle();
    const batch = await signMessage(
      'acquirer.clearings',
      {
        msgId: randomId(),
        clearings: [
          await clearingOf(good.handle, 'EUR:0.03'),
          // Charged and unused do not make up the deposit: not made by the clearing rule.
          await clearingOf(bad.handle, 'EUR:0.03', 'EUR:0.01'),
          await clearingOf(newTradeHandle(), 'EUR:0.03', 'EUR:0.14'),
          // Signed by the batch's key, but naming another signer.
          { ...(await clearingOf(bad.handle, 'EUR:0.03')), kid: t.shop.key.signer.kid },
        ],
        time: t.clock.now(),
      },
      t.eur.ctx.identity.key.signer,
    );
    const expected = {
      results: [
        { ok: { transactionId: good.handle, state: 'cleared' } },
        { error: expect.objectContaining({ name: 'INVALID_AMOUNT' }) },
        { error: expect.objectContaining({ name: 'UNKNOWN_TRANSACTION' }) },
        { error: expect.objectContaining({ name: 'BAD_SIGNATURE' }) },
      ],
    };
    expect(await postJson(`${t.sek.url}${OperatorPaths.peerClearings}`, batch)).toEqual(expected);
    const state = async (id: string) => (await t.sek.ctx.db.query<{ state: string }>('SELECT state FROM am_transactions WHERE id = $1', [id]))[0]?.state;
    expect(await state(good.transactionId)).toBe('cleared');
    expect(await state(bad.transactionId)).toBe('open');
    expect(await postsOf(deposits.customer(good.transactionId))).toEqual([`post:${deposits.customer(good.transactionId)}`]);
    expect(await postsOf(deposits.customer(bad.transactionId))).toEqual([]);
    expect(await withdrawalsOf(good.transactionId)).toEqual(['EUR:0.03']);

    // The same batch again: the same answers, and nothing booked a second time.
    expect(await postJson(`${t.sek.url}${OperatorPaths.peerClearings}`, batch)).toEqual(expected);
    expect(await postsOf(deposits.customer(good.transactionId))).toEqual([`post:${deposits.customer(good.transactionId)}`]);
    expect(await withdrawalsOf(good.transactionId)).toEqual(['EUR:0.03']);
    expect(await t.admin(t.sek, OperatorPaths.adminAudit)).toMatchObject({ ok: true });

    // The bad one still clears, by its own (correct) clearing.
    const fixed = await signMessage('acquirer.clearings', { msgId: randomId(), clearings: [await clearingOf(bad.handle, 'EUR:0.03')], time: t.clock.now() }, t.eur.ctx.identity.key.signer);
    expect(await postJson(`${t.sek.url}${OperatorPaths.peerClearings}`, fixed)).toEqual({ results: [{ ok: { transactionId: bad.handle, state: 'cleared' } }] });
    expect(await state(bad.transactionId)).toBe('cleared');
    expect(await t.admin(t.sek, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it('a batch signed by someone else is refused as a whole, and applies nothing', async () => {
    const p = await oneArticle();
    const forged = await signMessage('acquirer.clearings', { msgId: randomId(), clearings: [await clearingOf(p.handle, 'EUR:0.03')], time: t.clock.now() }, t.shop.key.signer);
    await expect(postJson(`${t.sek.url}${OperatorPaths.peerClearings}`, forged)).rejects.toMatchObject({ name: 'UNKNOWN_KEY' });
    expect(await postsOf(deposits.customer(p.transactionId))).toEqual([]);
  });

  it('many sessions ended at once clear through batches, each once on both sides', async () => {
    const net = faultyHttp();
    t.eur.ctx.http = net.http;
    const bought = await Promise.all(Array.from({ length: 6 }, () => oneArticle()));
    await Promise.all(bought.map((p) => t.shop.agent.stop(p.handle)));
    await t.shop.agent.settled();
    await Promise.all(bought.map((p) => p.shopper.endTransaction(p.transactionId)));
    // Every clearing information went in batches; none alone.
    const items = net.posts(OperatorPaths.peerClearings).flatMap((b) => (b as { body: { clearings: unknown[] } }).body.clearings);
    expect(items.length).toBe(6);
    expect(net.posts(OperatorPaths.peerClearing)).toEqual([]);
    for (const p of bought) {
      expect(await p.shopper.transactionStatus(p.transactionId)).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.03', chargedCustomer: 'SEK:0.34' });
      expect(await postsOf(deposits.customer(p.transactionId))).toEqual([`post:${deposits.customer(p.transactionId)}`]);
      expect(await withdrawalsOf(p.transactionId)).toEqual(['EUR:0.03']);
      const [acq] = await t.eur.ctx.db.query<{ state: string }>('SELECT state FROM acq_transactions WHERE id = $1', [p.handle]);
      expect(acq?.state).toBe('cleared');
    }
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it("a batch whose answer is lost after the account manager applied it is delivered again, booked once", async () => {
    const p = await oneArticle();
    const net = faultyHttp([{ path: OperatorPaths.peerClearings, method: 'POST', lose: 'answer', times: 1 }]);
    t.eur.ctx.http = net.http;
    await t.shop.agent.stop(p.handle);
    await t.shop.agent.settled();
    await p.shopper.endTransaction(p.transactionId);

    expect(net.faults[0]!.times).toBe(0);
    // Applied by the batch whose answer was lost; the copy sent alone right after is answered, not applied again.
    expect(net.answers(OperatorPaths.peerClearings)).toEqual([{ results: [{ ok: { transactionId: p.handle, state: 'cleared' } }] }]);
    expect(net.answers(OperatorPaths.peerClearing)).toEqual([{ transactionId: p.handle, state: 'cleared' }]);
    const [entry] = await t.eur.ctx.db.query<{ done_at: unknown }>(`SELECT done_at FROM outbox WHERE topic = 'clearing' AND key = $1`, [p.handle]);
    expect(entry?.done_at).not.toBeNull();
    expect(await postsOf(deposits.customer(p.transactionId))).toEqual([`post:${deposits.customer(p.transactionId)}`]);
    expect(await withdrawalsOf(p.transactionId)).toEqual(['EUR:0.03']);
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it('a peer that takes no batches (an older operator) gets each clearing on its own', async () => {
    const p = await oneArticle();
    const net = faultyHttp([{ path: OperatorPaths.peerClearings, method: 'POST', refuse: 'UNSUPPORTED_METHOD', times: 1 }]);
    t.eur.ctx.http = net.http;
    await t.shop.agent.stop(p.handle);
    await t.shop.agent.settled();
    await p.shopper.endTransaction(p.transactionId);
    expect(net.faults[0]!.times).toBe(0);
    expect(net.answers(OperatorPaths.peerClearing)).toEqual([{ transactionId: p.handle, state: 'cleared' }]);
    expect(await p.shopper.transactionStatus(p.transactionId)).toMatchObject({ state: 'cleared', chargedCustomer: 'SEK:0.34' });
    expect(await withdrawalsOf(p.transactionId)).toEqual(['EUR:0.03']);
  });
});
