import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { type Engine, type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * FIG 2 → purchases → FIG 3 across two operators in two currencies, against real servers, on the
 * embedded store and on a real PostgreSQL server.
 */
const engines: Engine[] = ['PGlite', 'PostgreSQL'];

describe.each(engines)('payments on %s', (engine) => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators(engine);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  async function fundedShopper(amount = 'SEK:100.00', minimum = 'SEK:1.00') {
    const shopper = t.newShopper(minimum);
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount });
    return { shopper, customerId: account.customerId };
  }

  async function audits() {
    for (const op of [t.sek, t.eur]) {
      const audit = (await t.admin(op, OperatorPaths.adminAudit)) as { ok: boolean };
      expect(audit, `${op.ctx.config.operatorId} audit`).toMatchObject({ ok: true });
    }
  }

  it('a shopper in SEK buys three EUR articles, the deposit runs out and renews, the session ends, and both ledgers balance', async () => {
    // A deposit of SEK 1.00 is EUR 0.08 at the pinned rate 0.0874 (floor): two 0.03 articles fit.
    const { shopper, customerId } = await fundedShopper();
    const url = t.shop.moduleUrl;
    const origin = t.shop.url;
    const a1 = await shopper.buy({ merchantUrl: url, productId: 'why-micropayments', price: 'EUR:0.03', origin });
    const a2 = await shopper.buy({ merchantUrl: url, productId: 'two-banks', price: 'EUR:0.03', origin });
    const a3 = await shopper.buy({ merchantUrl: url, productId: 'fair-exchange', price: 'EUR:0.03', origin });
    expect(new TextDecoder().decode(a1.content)).toContain('Why micropayments failed');
    expect(a3.receipt.transactionId).not.toBe(a1.receipt.transactionId);
    expect(a2.receipt.transactionId).toBe(a1.receipt.transactionId);

    // The first transaction was closed by the merchant when the deposit ran out; end the second.
    await shopper.endTransaction(a3.receipt.transactionId);
    await t.shop.agent.settled();
    for (const tx of await shopper.listTransactions()) if (tx.transactionId) await shopper.transactionStatus(tx.transactionId);

    const first = await shopper.transactionStatus(a1.receipt.transactionId);
    const second = await shopper.transactionStatus(a3.receipt.transactionId);
    expect(first).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.06', outcome: 'agreed', flagged: false });
    expect(second).toMatchObject({ state: 'cleared', chargedMerchant: 'EUR:0.03', outcome: 'agreed' });
    // EUR 0.06 at 1/0.0874 is SEK 0.69 (half-even); EUR 0.03 is SEK 0.34.
    expect(first.chargedCustomer).toBe('SEK:0.69');
    expect(second.chargedCustomer).toBe('SEK:0.34');
    expect((await shopper.balance()).balance).toBe('SEK:98.97');

    const eurBalances = (await t.admin(t.eur, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>;
    expect(eurBalances.find((b) => b.account === 'merchant:news.example')?.balance).toBe('EUR:0.09');
    expect(await t.admin(t.sek, OperatorPaths.adminPositions)).toEqual([{ operatorId: 'op-eur', position: 'EUR:0.09' }]);
    expect(await t.admin(t.eur, OperatorPaths.adminPositions)).toEqual([{ operatorId: 'op-sek', position: 'EUR:-0.09' }]);
    await audits();

    // Billing: what was bought for how much — only the hash of what.
    const withdrawals = (await t.billingLines('sek')).filter((r) => r.body.customerId === customerId);
    expect(withdrawals.map((r) => [r.type, r.body.amount, r.body.amountMerchant, r.body.count])).toEqual([
      ['am.withdrawal', 'SEK:0.69', 'EUR:0.06', 2],
      ['am.withdrawal', 'SEK:0.34', 'EUR:0.03', 1],
    ]);
    const deposits = (await t.billingLines('eur')).filter((r) => r.body.merchantId === 'news.example');
    expect(deposits.map((r) => r.body.amount)).toEqual(expect.arrayContaining(['EUR:0.06', 'EUR:0.03']));
    const everything = JSON.stringify([...withdrawals, ...deposits]);
    expect(everything).not.toContain('why-micropayments');
    expect(everything).not.toContain('fair-exchange');
  });

  it('a wallet reads its trading session at the merchant with a read signed by the session key; nobody else can', async () => {
    const { shopper } = await fundedShopper();
    const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03', origin: t.shop.url });
    // The wallet asks by its own bank's TransactionIdentity; the merchant knows the trade handle.
    const { transactionId, handle } = r.receipt;
    const view = await shopper.merchantSession(transactionId);
    expect(view).toMatchObject({ transactionId: handle, state: 'open', count: 1, spent: 'EUR:0.03' });
    expect(view).toEqual(await t.shop.agent.session(handle));
    // Twice in a row: each call signs a new read.
    expect((await shopper.merchantSession(transactionId)).count).toBe(1);
    // Without the session key: 401, whether the id is real or not.
    for (const id of [handle, `${handle.slice(0, -1)}${handle.endsWith('A') ? 'B' : 'A'}`]) {
      const res = await fetch(`${t.shop.moduleUrl}/sessions/${id}`);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { name: string } }).error.name).toBe('UNAUTHORIZED');
    }
  });

  it('50 concurrent initiations against a balance that covers 10 deposits: exactly 10 succeed', async () => {
    const { shopper, customerId } = await fundedShopper('SEK:10.00', 'SEK:1.00');
    await shopper.exchangeTable();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () =>
        shopper.openTransaction({ merchantUrl: t.shop.moduleUrl, firstPrice: 'EUR:0.03', origin: t.shop.url }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.name);
    expect(ok).toHaveLength(10);
    expect(new Set(refused)).toEqual(new Set(['INSUFFICIENT_FUNDS']));
    // The deposits are reserved (pending transfers of the ledger), not yet moved: the account still
    // holds the money, all of it promised, ten deposits of SEK:1.00.
    const books = (await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; kind: string; balance: string }>;
    expect(books.find((b) => b.account === `customer:${customerId}`)?.balance).toBe('SEK:10.00');
    expect(await t.sek.ctx.ledger.account(`customer:${customerId}`)).toMatchObject({ balance: 1000n, debitsPending: 1000n });
    expect((await shopper.balance()).available).toBe('SEK:0.00');
    await audits();
  });
});
