import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { depositRecordId, withdrawalRecordId } from '@obol/protocol/billingIds';
import { type TwoOperators, stopTestPostgres, twoOperators } from './support/twoOperators.ts';

/**
 * One shopper reading a dozen articles in an evening, one logon: every article its own deposit
 * (the wallet ends each transaction before the next). Every one of them clears, the merchant is
 * paid for each, and each is billed once on each side under its own record id — the 10th, 11th
 * and 12th deposits of a logon included (their ids used to collide with the 1st).
 */
describe.each(['PGlite', 'PostgreSQL'] as const)('a dozen deposits in one logon on %s', (engine) => {
  let t: TwoOperators;
  beforeAll(async () => {
    t = await twoOperators(engine);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (engine === 'PostgreSQL') await stopTestPostgres();
  });

  it('every deposit clears and is billed under its own id', async () => {
    const shopper = t.newShopper('SEK:1.00');
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:50.00' });
    const transactionIds: string[] = [];
    // The same deposits as the merchant's operator knows them (it bills by trade handle).
    const handles: string[] = [];
    const deposits = 12;
    for (let i = 0; i < deposits; i++) {
      const r = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03', origin: t.shop.url });
      transactionIds.push(r.receipt.transactionId);
      handles.push(r.receipt.handle);
      await shopper.endTransaction(r.receipt.transactionId);
      await t.shop.agent.settled();
    }
    expect(new Set(transactionIds).size).toBe(deposits);
    // All in one logon: op-sek.<logon>.1 … op-sek.<logon>.12
    const logon = transactionIds[0]!.split('.').slice(0, 2).join('.');
    expect(transactionIds.every((id) => id.startsWith(`${logon}.`))).toBe(true);

    for (const id of transactionIds) {
      expect(await shopper.transactionStatus(id)).toMatchObject({ state: 'cleared', outcome: 'agreed', chargedMerchant: 'EUR:0.03' });
    }
    const merchant = ((await t.admin(t.eur, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>).find(
      (b) => b.account === 'merchant:news.example',
    );
    expect(merchant?.balance).toBe('EUR:0.36');

    const deposited = (await t.billingLines('eur')).filter((l) => l.type === 'am.deposit');
    const withdrawn = (await t.billingLines('sek')).filter((l) => l.type === 'am.withdrawal');
    expect(deposited.map((l) => l.body.recordId).sort()).toEqual(handles.map(depositRecordId).sort());
    expect(withdrawn.map((l) => l.body.recordId).sort()).toEqual(transactionIds.map(withdrawalRecordId).sort());
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  }, 120_000);
});
