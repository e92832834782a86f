/**
 * What must hold after the crash trial, once the killing stopped, every deadline passed and the
 * timers ran. Ledger soundness is the operator's own audit (admin API, what `obol audit` prints);
 * the rest compares what the shoppers hold (receipts, at the pinned rate) with what the operators
 * booked and billed. Each violation is a sentence naming the party and the numbers.
 */
import { readFile } from 'node:fs/promises';
import { OperatorPaths } from '@obol/protocol/api';
import { convert, parseRate } from '@obol/protocol/exchangeTable';
import { type Amount, add, compare, formatAmount, min, parseAmount, sub, zero } from '@obol/protocol/money';
import { getJson } from '../../src/http/client.ts';
import { type Db, openDb } from '../../src/store/db.ts';
import type { CrashOperator, CrashWorld } from './crashWorld.ts';
import type { Shopper } from './shopper.ts';

export interface InvariantReport {
  violations: string[];
  /** Money booked differently from what receipts and accepts prove, in minor units summed over parties. */
  moneyLost: bigint;
  /** Billing records in the sinks' files, over both operators. */
  billingRecords: number;
  /** Trading sessions the operators opened (account-manager side, both operators). */
  operatorSessions: number;
}

interface AccountBalance {
  account: string;
  kind: string;
  balance: string;
}

type AdminGet = (op: CrashOperator, path: string) => Promise<unknown>;

/** Checks through each operator's administration API; the servers must be running. */
export async function checkLiveInvariants(world: CrashWorld, shoppers: readonly Shopper[], funds: ReadonlyMap<Shopper, string>): Promise<InvariantReport> {
  const violations: string[] = [];
  let moneyLost = 0n;
  const admin: AdminGet = (op, path) => getJson(`${op.url}${path}`, { headers: { authorization: `Bearer ${world.adminToken}` } });

  const balances = new Map<string, Map<string, AccountBalance>>();
  for (const op of world.operators) {
    const audit = (await admin(op, OperatorPaths.adminAudit)) as { ok: boolean };
    if (!audit.ok) violations.push(`${op.operatorId}: the ledger audit fails: ${JSON.stringify(audit)}`);
    const rows = (await admin(op, OperatorPaths.adminBalances)) as AccountBalance[];
    balances.set(op.operatorId, new Map(rows.map((r) => [r.account, r])));
    for (const r of rows) {
      // A session's deposit is a pending transfer until its clearing posts it or its expiry voids
      // it; the balances list each one still pending as kind `deposit`.
      if (r.kind === 'deposit' && parseAmount(r.balance).value !== 0n) violations.push(`${op.operatorId}: deposit still held: ${r.account} ${r.balance}`);
    }
  }

  // Interoperator positions: what one side says it owes the other, the other says it is owed.
  const positions = new Map<string, Array<{ operatorId: string; position: string }>>();
  for (const op of world.operators) positions.set(op.operatorId, (await admin(op, OperatorPaths.adminPositions)) as Array<{ operatorId: string; position: string }>);
  for (const a of world.operators) {
    for (const p of positions.get(a.operatorId)!) {
      const mine = parseAmount(p.position);
      if (p.operatorId === a.operatorId) {
        if (mine.value !== 0n) violations.push(`${a.operatorId}: position with itself is ${p.position}, not zero`);
        continue;
      }
      const theirs = positions.get(p.operatorId)?.find((q) => q.operatorId === a.operatorId && parseAmount(q.position).currency === mine.currency);
      const other = theirs ? parseAmount(theirs.position).value : 0n;
      if (mine.value + other !== 0n) violations.push(`positions disagree in ${mine.currency}: ${a.operatorId} says ${p.position} toward ${p.operatorId}, which says ${theirs?.position ?? 'nothing'}`);
    }
  }

  // Shoppers: the balance change is what the charged receipts add up to, at each transaction's pinned rate.
  const merchantProven = new Map<string, Amount>();
  for (const shopper of shoppers) {
    const own = balances.get(shopper.spec.operatorUrl === world.operators[0]!.url ? world.operators[0]!.operatorId : world.operators[1]!.operatorId)!;
    const account = own.get(`customer:${shopper.customerId}`);
    if (!account) {
      violations.push(`${shopper.spec.name}: no account customer:${shopper.customerId}`);
      continue;
    }
    let expected = zero(shopper.spec.currency);
    const seen = new Map<string, number>();
    for (const tx of await shopper.agent.listTransactions()) {
      if (!tx.transactionId) continue;
      const charged = (await shopper.agent.receipts(tx.transactionId)).filter((r) => r.status !== 'not-charged');
      const undetermined = charged.filter((r) => r.status === 'awaiting-key');
      if (undetermined.length > 0) violations.push(`${shopper.spec.name}: ${undetermined.length} receipt(s) of ${tx.transactionId} still awaiting the key after recovery`);
      for (const r of charged) {
        const key = `${r.merchantId} ${r.productId}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      if (charged.length === 0) continue;
      let paidMerchant = zero(parseAmount(charged[0]!.price).currency);
      for (const r of charged) paidMerchant = add(paidMerchant, parseAmount(r.price));
      merchantProven.set(tx.merchantId, add(merchantProven.get(tx.merchantId) ?? zero(paidMerchant.currency), paidMerchant));
      if (!tx.rate) {
        violations.push(`${shopper.spec.name}: transaction ${tx.transactionId} has charged receipts but no pinned rate`);
        continue;
      }
      // The rate pinned at initiation converts the customer's currency into the merchant's; the
      // purchases are paid back at its inverse, never more than the deposit.
      const rate = parseRate(tx.rate);
      const deposit = parseAmount(tx.depositCustomer);
      const paid = min(convert(paidMerchant, deposit.currency, { num: rate.den, den: rate.num }, 'half-even').amount, deposit);
      expected = add(expected, paid);
    }
    for (const [key, n] of seen) if (n > 1) violations.push(`${shopper.spec.name}: ${key} charged ${n} times`);
    for (const c of shopper.completed) {
      if (!seen.has(`${c.merchantId} ${c.productId}`)) violations.push(`${shopper.spec.name}: completed purchase ${c.merchantId} ${c.productId} has no charged receipt`);
    }
    const change = sub(parseAmount(funds.get(shopper)!), parseAmount(account.balance));
    if (compare(change, expected) !== 0) {
      const diff = sub(change, expected).value;
      moneyLost += diff < 0n ? -diff : diff;
      violations.push(`${shopper.spec.name}: paid ${formatAmount(change)} by its balance, its receipts say ${formatAmount(expected)}`);
    }
  }

  // Merchants: credited exactly what the accepts (the shoppers' charged receipts) prove.
  for (const shop of world.shops) {
    const account = balances.get(shop.operatorId)!.get(`merchant:${shop.merchantId}`);
    const got = account ? parseAmount(account.balance) : zero(shop.currency);
    const proven = merchantProven.get(shop.merchantId) ?? zero(shop.currency);
    if (compare(got, proven) !== 0) {
      const diff = sub(got, proven).value;
      moneyLost += diff < 0n ? -diff : diff;
      violations.push(`${shop.merchantId}: credited ${formatAmount(got)}, accepts prove ${formatAmount(proven)}`);
    }
  }
  return { violations, moneyLost, billingRecords: 0, operatorSessions: 0 };
}

/**
 * Checks on each operator's database and billing file; the servers must be stopped (a PGlite
 * folder has one user at a time). Every transaction ended; every clearing movement billed exactly
 * once (one withdrawal record per customer-side clearing, one deposit record per merchant-side
 * clearing, no record id twice in a file, none left in the outbox).
 */
/**
 * Entries still waiting in each operator's outbox (servers stopped): billing records for the
 * sinks, clearing and refund information for the customer's operator.
 */
export async function undeliveredOutbox(world: CrashWorld): Promise<number> {
  let n = 0;
  for (const op of world.operators) {
    const db = await openDb(op.databaseUrl ? { databaseUrl: op.databaseUrl } : { dataDir: op.dataDir });
    try {
      n += (await db.query('SELECT key FROM outbox WHERE done_at IS NULL')).length;
    } finally {
      await db.close();
    }
  }
  return n;
}

export async function checkStoredInvariants(
  world: CrashWorld,
): Promise<{ violations: string[]; notes: string[]; billingRecords: number; operatorSessions: number }> {
  const violations: string[] = [];
  const notes: string[] = [];
  let billingRecords = 0;
  let operatorSessions = 0;
  for (const op of world.operators) {
    const db: Db = await openDb(op.databaseUrl ? { databaseUrl: op.databaseUrl } : { dataDir: op.dataDir });
    try {
      const am = await db.query<{ id: string; state: string }>('SELECT id, state FROM am_transactions');
      operatorSessions += am.filter((t) => t.state !== 'failed').length;
      for (const t of am) if (t.state !== 'cleared' && t.state !== 'failed') violations.push(`${op.operatorId}: transaction ${t.id} ended ${t.state}`);
      // Clearing information travels through the one outbox (topic `clearing`, key = the
      // transaction): an entry still open means it never reached the customer's operator.
      const acq = await db.query<{ id: string; state: string; unsent: boolean }>(
        `SELECT t.id, t.state, EXISTS (SELECT 1 FROM outbox o WHERE o.topic = 'clearing' AND o.key = t.id AND o.done_at IS NULL) AS unsent
         FROM acq_transactions t`,
      );
      for (const t of acq) {
        if (t.state !== 'cleared' && t.state !== 'failed') violations.push(`${op.operatorId}: acquired transaction ${t.id} ended ${t.state}`);
        if (t.state === 'cleared' && t.unsent) violations.push(`${op.operatorId}: clearing of ${t.id} never reached the customer's operator`);
      }
      // Why a merchant may be credited less than the accepts prove, by the protocol's rule: its
      // record reached the acquirer only after the clearing deadline (it is kept, but too late).
      const late = await db.query<{ id: string }>(
        `SELECT id FROM acq_transactions WHERE merchant_record IS NOT NULL AND clearing->'body'->>'outcome' = 'merchant-deadline'`,
      );
      for (const t of late) notes.push(`${op.operatorId}: ${t.id} settled as merchant-deadline; the merchant's record came after the deadline`);
      // A clearing posts the session's reserved deposit: movement `post:deposit:<id>` at the
      // account manager (billed as withdrawal w.<id>), `post:acq-deposit:<id>` at the acquirer
      // (billed as deposit d.<id>); posting 0 still books the movement, and is still billed.
      const movements = await db.query<{ id: string; kind: string }>(
        `SELECT id, kind FROM movements WHERE kind IN ('post:deposit', 'post:acquirer-deposit')`,
      );
      const due = new Set(
        movements.map((m) =>
          m.kind === 'post:deposit' ? `w.${m.id.slice('post:deposit:'.length)}` : `d.${m.id.slice('post:acq-deposit:'.length)}`,
        ),
      );
      const undelivered = await db.query<{ key: string }>(`SELECT key FROM outbox WHERE topic LIKE 'billing:%' AND done_at IS NULL`);
      for (const r of undelivered) violations.push(`${op.operatorId}: billing record ${r.key} never delivered`);

      const text = await readFile(op.billingFile, 'utf8').catch(() => '');
      const ids = text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => (JSON.parse(l) as { body: { recordId: string } }).body.recordId);
      billingRecords += ids.length;
      const inFile = new Set<string>();
      for (const id of ids) {
        if (inFile.has(id)) violations.push(`${op.operatorId}: billing record ${id} written twice`);
        inFile.add(id);
        if (!due.has(id)) violations.push(`${op.operatorId}: billing record ${id} bills no clearing movement`);
      }
      for (const id of due) if (!inFile.has(id)) violations.push(`${op.operatorId}: clearing ${id} has no billing record in ${op.billingFile}`);
    } finally {
      await db.close();
    }
  }
  return { violations, notes, billingRecords, operatorSessions };
}
