import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { ObolError } from '@obol/protocol/errors';
import { purchasesHash } from '@obol/protocol/purchaseList';
import { signMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { postJson } from '../src/http/client.ts';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * How sessions end and how FIG 3 settles them: on the wallet's word, the merchant's word, the
 * timer; a side that never reports; a merchant that claims more than the customer signed. The
 * clock is moved, nothing sleeps.
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('ending sessions and settling them on %s', (engine) => {
  let t: TwoOperators;
  const grace = 300_000;
  beforeAll(async () => {
    t = await twoOperators(engine, { clearingGraceSec: grace / 1000 });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  async function shopperWithPurchases(n: number) {
    const shopper = t.newShopper('SEK:2.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:50.00' });
    const ids = ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];
    let transactionId = '';
    // The same transaction as the merchant and its operator know it.
    let handle = '';
    for (let i = 0; i < n; i++) {
      const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: ids[i]!, price: 'EUR:0.03', origin: t.shop.url });
      transactionId = r.receipt.transactionId;
      handle = r.receipt.handle;
    }
    return { shopper, customerId: account.customerId, transactionId, handle };
  }
  const balanceOf = async (customerId: string) =>
    ((await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>).find(
      (b) => b.account === `customer:${customerId}`,
    )?.balance;
  const settle = async () => {
    await t.admin(t.eur, OperatorPaths.adminSettleDeadlines, {});
    await t.admin(t.sek, OperatorPaths.adminSettleDeadlines, {});
  };
  async function audits() {
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }

  it('ends on the merchant’s word: the merchant reports, the wallet reports, they agree', async () => {
    const { shopper, transactionId, handle, customerId } = await shopperWithPurchases(2);
    await t.shop.agent.stop(handle);
    await t.shop.agent.settled();
    await shopper.report(transactionId);
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'cleared', outcome: 'agreed', chargedMerchant: 'EUR:0.06' });
    expect(await balanceOf(customerId)).toBe('SEK:49.31');
    await audits();
  });

  it('ends by timer, both sides report after it: agreed', async () => {
    const { shopper, transactionId, handle } = await shopperWithPurchases(1);
    t.clock.advance(901_000); // past the agreed 900 s
    const swept = await t.shop.agent.sweep();
    expect(swept.closed).toContain(handle);
    await t.shop.agent.settled();
    await expect(
      shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url }),
    ).resolves.toMatchObject({ receipt: { productId: 'two-banks' } }); // a new transaction opens
    await shopper.report(transactionId);
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'cleared', outcome: 'agreed', chargedMerchant: 'EUR:0.03' });
    await audits();
  });

  it('ends by timer and the wallet never reports: settled on the merchant’s proof at the deadline', async () => {
    const { shopper, transactionId } = await shopperWithPurchases(3);
    t.clock.advance(901_000);
    await t.shop.agent.sweep();
    await t.shop.agent.settled();
    await settle();
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'open' });
    t.clock.advance(grace);
    await settle();
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({
      state: 'cleared',
      outcome: 'wallet-deadline',
      chargedMerchant: 'EUR:0.09',
      flagged: false,
    });
    await audits();
  });

  it('ends by timer and the merchant never reports: the deposit goes back to the customer at the deadline', async () => {
    const { shopper, transactionId, customerId } = await shopperWithPurchases(2);
    t.clock.advance(901_000);
    await shopper.report(transactionId); // the wallet reports; the merchant's timer never runs
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({ state: 'reported' });
    t.clock.advance(grace);
    await settle();
    expect(await shopper.transactionStatus(transactionId)).toMatchObject({
      state: 'cleared',
      outcome: 'merchant-deadline',
      chargedMerchant: 'EUR:0.00',
      refundCustomer: 'SEK:2.00',
    });
    expect(await balanceOf(customerId)).toBe('SEK:50.00');
    await audits();
  });

  it('a merchant that claims more than the customer signed gets the proven amount, flagged; its replay changes nothing', async () => {
    const { shopper, transactionId, handle } = await shopperWithPurchases(2);
    const session = await t.shop.agent.session(handle);
    expect(session).toMatchObject({ spent: 'EUR:0.06' });
    const proof = (await t.shop.agent.record(handle))?.body.proof ?? null;
    expect(proof).toBeNull(); // nothing reported yet
    // The merchant's own latest accept, then a record that claims 0.15 with it.
    const accepts = (await shopper.receipts(transactionId)).map((r) => r.accept);
    const greedy = await signMessage(
      'merchant.record',
      {
        msgId: randomId(),
        transactionId: handle,
        count: 5,
        total: 'EUR:0.15',
        purchasesHash: await purchasesHash(randomId(16), []),
        proof: accepts[accepts.length - 1]!,
        time: t.clock.now(),
      },
      t.shop.key.signer,
    );
    await postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, greedy);
    await shopper.report(transactionId);
    const status = await shopper.transactionStatus(transactionId);
    expect(status).toMatchObject({ state: 'cleared', outcome: 'proven', chargedMerchant: 'EUR:0.06', flagged: true });
    const before = await t.admin(t.eur, OperatorPaths.adminBalances);
    await expect(postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, greedy)).resolves.toMatchObject({ state: 'cleared' });
    expect(await t.admin(t.eur, OperatorPaths.adminBalances)).toEqual(before);
    await audits();
  });

  it('a merchant record whose proof was not signed by the customer is refused', async () => {
    const { handle: transactionId } = await shopperWithPurchases(1);
    const fakeAccept = await signMessage(
      'wallet.accept',
      {
        acceptId: randomId(),
        transactionId,
        n: 4,
        cumulative: 'EUR:0.12',
        commitment: await purchasesHash(randomId(16), []),
        time: t.clock.now(),
      },
      t.shop.key.signer, // the merchant's key, not the session key
    );
    const record = await signMessage(
      'merchant.record',
      {
        msgId: randomId(),
        transactionId,
        count: 4,
        total: 'EUR:0.12',
        purchasesHash: await purchasesHash(randomId(16), []),
        proof: fakeAccept,
        time: t.clock.now(),
      },
      t.shop.key.signer,
    );
    await expect(postJson(`${t.eur.url}${OperatorPaths.merchantRecord}`, record)).rejects.toMatchObject({ name: 'UNKNOWN_KEY' });
    await audits();
  });

  it('clearing information replayed to the account manager has no second effect', async () => {
    const { shopper, transactionId, customerId } = await shopperWithPurchases(1);
    await shopper.endTransaction(transactionId);
    await t.shop.agent.settled();
    const status = await shopper.transactionStatus(transactionId);
    expect(status.state).toBe('cleared');
    const balance = await balanceOf(customerId);
    await expect(postJson(`${t.sek.url}${OperatorPaths.peerClearing}`, status.clearing)).resolves.toMatchObject({ state: 'cleared' });
    expect(await balanceOf(customerId)).toBe(balance);
    // and clearing information signed by anyone else is refused
    const forged = await signMessage('acquirer.clearing', { ...status.clearing!.body, msgId: randomId() } as never, t.shop.key.signer);
    await expect(postJson(`${t.sek.url}${OperatorPaths.peerClearing}`, forged)).rejects.toBeInstanceOf(ObolError);
    expect(await balanceOf(customerId)).toBe(balance);
    await audits();
  });
});
