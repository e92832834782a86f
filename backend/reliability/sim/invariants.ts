import { convert, parseRate } from '@obol/protocol/exchangeTable';
import { type Amount, add, compare, formatAmount, min, parseAmount, sub, zero } from '@obol/protocol/money';
import { pendingBillingRecords } from '../../src/billing/index.ts';
import { audit, balances, positions } from '../../src/operator/admin.ts';
import { accounts } from '../../src/operator/context.ts';
import type { World } from './world.ts';

/** A broken promise: what was found, at which step. */
export interface Violation {
  step: number;
  invariant: string;
  detail: string;
}

/**
 * Checked after every step: each operator's ledger sums to zero per currency, every movement
 * balances, stored balances match their entries, and no account is below its limit — the
 * operator's own audit (admin.ts), not a copy of its rules. An operator that handled nothing in
 * the step (no request, no timer) has not changed and is not audited again; `all` audits both.
 */
export async function checkLedgers(world: World, all = false): Promise<Violation[]> {
  const out: Violation[] = [];
  for (const op of world.operators.values()) {
    if (!op.server || !(all || world.touched.has(op.spec.id))) continue;
    const report = await audit(op.server.ctx);
    if (!report.ok) out.push({ step: world.step, invariant: 'ledger audit', detail: `${op.spec.id}: ${JSON.stringify(report)}` });
  }
  world.touched.clear();
  return out;
}

interface AcqRow {
  state: string;
  /** Refunds after clearing, in all (minor units). */
  refunded: string | number;
  clearing: { body: { charged: string; outcome: string } } | null;
  customer_record: { body: { total: string; time: number } } | null;
  merchant_record: { body: { total: string; time: number } } | null;
  deadline_at: string | number;
}

interface SessionRow {
  transaction_id: string;
  spent: string | bigint;
  currency: string;
  state: string;
}

/**
 * Checked at the end, after the faults stopped and the clock passed every deadline: everything
 * that must eventually hold.
 */
export async function checkFinal(world: World): Promise<Violation[]> {
  const v: Violation[] = [];
  const fail = (invariant: string, detail: string) => v.push({ step: world.step, invariant, detail });
  v.push(...(await checkLedgers(world, true)));

  const balanceOf = new Map<string, Map<string, Amount>>();
  for (const op of world.operators.values()) {
    const ctx = op.server!.ctx;
    const rows = await balances(ctx);
    balanceOf.set(op.spec.id, new Map(rows.map((r) => [r.account, parseAmount(r.balance)])));
    // No deposit stays held, on either side: every pending transfer (a deposit, ledger.ts) was
    // posted, voided or expired.
    const held = await ctx.db.query<{ id: string; currency: string; amount: unknown }>(`SELECT id, currency, amount FROM pending_transfers WHERE state = 'pending'`);
    for (const p of held) fail('no deposit stays held', `${op.spec.id} pending transfer ${p.id}: ${p.currency} ${String(p.amount)} minor units`);
    // Every transaction ends settled or refunded.
    const am = await ctx.db.query<{ id: string; state: string }>(`SELECT id, state FROM am_transactions WHERE state NOT IN ('cleared', 'failed')`);
    for (const t of am) fail('every transaction ends', `${op.spec.id} account manager: ${t.id} is ${t.state}`);
    const acq = await ctx.db.query<{ id: string; state: string }>(`SELECT id, state FROM acq_transactions WHERE state NOT IN ('cleared', 'failed')`);
    for (const t of acq) fail('every transaction ends', `${op.spec.id} acquirer: ${t.id} is ${t.state}`);

    // Billing: every record delivered, exactly one per clearing, equal to the ledger.
    const pending = await pendingBillingRecords(ctx.db);
    if (pending.length > 0) fail('billing delivered', `${op.spec.id}: ${pending.length} records still in the outbox`);
    if (op.sink.conflicting.length > 0) fail('billing exactly once', `${op.spec.id}: records delivered twice with other contents: ${op.sink.conflicting.join(', ')}`);
    const withdrawals = new Map<string, number>();
    const depositsBy = new Map<string, number>();
    const withdrawnBy = new Map<string, Amount>();
    const depositedTo = new Map<string, Amount>();
    for (const rec of op.sink.records.values()) {
      if (rec.type === 'am.withdrawal') {
        withdrawals.set(rec.body.transactionId, (withdrawals.get(rec.body.transactionId) ?? 0) + 1);
        const a = parseAmount(rec.body.amount);
        withdrawnBy.set(rec.body.customerId, add(withdrawnBy.get(rec.body.customerId) ?? zero(a.currency), a));
      } else if (rec.type === 'am.deposit') {
        depositsBy.set(rec.body.transactionId, (depositsBy.get(rec.body.transactionId) ?? 0) + 1);
        const a = parseAmount(rec.body.amount);
        depositedTo.set(rec.body.merchantId, add(depositedTo.get(rec.body.merchantId) ?? zero(a.currency), a));
      } else {
        // A refund after clearing takes back, on its side, what the clearing's record booked.
        const a = parseAmount(rec.body.amount);
        const back = { currency: a.currency, value: -a.value };
        if (rec.body.side === 'customer' && rec.body.customerId) withdrawnBy.set(rec.body.customerId, add(withdrawnBy.get(rec.body.customerId) ?? zero(a.currency), back));
        if (rec.body.side === 'merchant' && rec.body.merchantId) depositedTo.set(rec.body.merchantId, add(depositedTo.get(rec.body.merchantId) ?? zero(a.currency), back));
      }
    }
    const clearedAm = await ctx.db.query<{ id: string }>(`SELECT id FROM am_transactions WHERE state = 'cleared'`);
    for (const t of clearedAm) if (withdrawals.get(t.id) !== 1) fail('billing exactly once', `${op.spec.id}: ${withdrawals.get(t.id) ?? 0} withdrawal records for ${t.id}`);
    if (withdrawals.size !== clearedAm.length) fail('billing exactly once', `${op.spec.id}: ${withdrawals.size} withdrawal records for ${clearedAm.length} cleared transactions`);
    const clearedAcq = await ctx.db.query<{ id: string }>(`SELECT id FROM acq_transactions WHERE state = 'cleared'`);
    for (const t of clearedAcq) if (depositsBy.get(t.id) !== 1) fail('billing exactly once', `${op.spec.id}: ${depositsBy.get(t.id) ?? 0} deposit records for ${t.id}`);
    if (depositsBy.size !== clearedAcq.length) fail('billing exactly once', `${op.spec.id}: ${depositsBy.size} deposit records for ${clearedAcq.length} cleared deposits`);

    const bal = balanceOf.get(op.spec.id)!;
    for (const w of world.wallets.filter((x) => x.operatorId === op.spec.id)) {
      const paid = sub(w.funded, bal.get(accounts.customer(w.customerId)) ?? zero(w.currency));
      const billed = withdrawnBy.get(w.customerId) ?? zero(w.currency);
      if (compare(paid, billed) !== 0) fail('billing equals the ledger', `${w.name}: paid ${formatAmount(paid)}, withdrawal records ${formatAmount(billed)}`);
    }
    for (const shop of world.shops.values()) {
      if (shop.spec.operatorId !== op.spec.id) continue;
      const received = bal.get(accounts.merchant(shop.spec.merchantId)) ?? zero(shop.spec.currency);
      const billed = depositedTo.get(shop.spec.merchantId) ?? zero(shop.spec.currency);
      if (compare(received, billed) !== 0) fail('billing equals the ledger', `${shop.spec.merchantId}: received ${formatAmount(received)}, deposit records ${formatAmount(billed)}`);
    }
  }

  // The interoperator positions agree on both sides (what one says it owes, the other says it is owed).
  const pos = new Map<string, Amount>();
  for (const op of world.operators.values()) {
    for (const p of await positions(op.server!.ctx)) pos.set(`${op.spec.id}|${p.operatorId}|${parseAmount(p.position).currency}`, parseAmount(p.position));
  }
  for (const [key, a] of pos) {
    const [self, other, currency] = key.split('|') as [string, string, string];
    const b = self === other ? zero(currency) : (pos.get(`${other}|${self}|${currency}`) ?? zero(currency));
    const sum = self === other ? a : add(a, b);
    if (sum.value !== 0n) fail('positions agree', `${self} says ${formatAmount(a)} toward ${other}; ${other} says ${formatAmount(b)}`);
  }

  // The merchant's proof per trading session (its latest accept), from the merchant's own books.
  const sessions = new Map<string, { shop: string; spent: Amount; state: string }>();
  const chargedByHandle = new Map<string, Amount>();
  const refundedByHandle = new Map<string, Amount>();
  for (const shop of world.shops.values()) {
    let refunded = zero(shop.spec.currency);
    const rows = await shop.db.query<SessionRow>('SELECT transaction_id, spent, currency, state FROM merchant_sessions');
    let proven = zero(shop.spec.currency);
    let forfeited = zero(shop.spec.currency);
    for (const r of rows) {
      const spent = { currency: r.currency, value: BigInt(r.spent) };
      sessions.set(r.transaction_id, { shop: shop.spec.merchantId, spent, state: r.state });
      proven = add(proven, spent);
      // 'reported': the acquirer has the record (it clears on its own); the merchant is not told again.
      const acq = world.operators.get(shop.spec.operatorId)!;
      const [row] = await acq.db.query<AcqRow>('SELECT state, refunded, clearing, customer_record, merchant_record, deadline_at FROM acq_transactions WHERE id = $1', [r.transaction_id]);
      if (r.state !== 'cleared' && r.state !== 'reported') {
        const records = await shop.db.query<{ attempts: number; last_error: string | null }>(
          `SELECT COALESCE(o.attempts, 0) AS attempts, o.last_error FROM merchant_records r LEFT JOIN outbox o ON o.topic = 'merchant-record' AND o.key = r.msg_id WHERE r.transaction_id = $1`,
          [r.transaction_id],
        );
        fail(
          'every transaction ends',
          `${shop.spec.merchantId}: session ${r.transaction_id} is ${r.state} (acquirer: ${row?.state ?? 'none'}; record tries: ${records.map((x) => `${x.attempts} ${x.last_error ?? ''}`).join('; ')})`,
        );
      }
      const charged = row?.clearing ? parseAmount(row.clearing.body.charged) : zero(shop.spec.currency);
      chargedByHandle.set(r.transaction_id, charged);
      const refundedHere = { currency: shop.spec.currency, value: BigInt(row?.refunded ?? 0) };
      refundedByHandle.set(r.transaction_id, refundedHere);
      refunded = add(refunded, refundedHere);
      if (compare(refundedHere, charged) > 0) fail('refunds within what was paid', `${shop.spec.merchantId} ${r.transaction_id}: refunded ${formatAmount(refundedHere)} of ${formatAmount(charged)}`);
      if (compare(charged, spent) === 0) continue;
      // The stated rule: a merchant that does not report by the deadline lets the deposit go back.
      // Allowed only when this merchant was away during [timer, deadline] of the session.
      const deadline = Number(row?.deadline_at ?? 0);
      const expires = deadline - 300_000;
      const wasAway = shop.away.some(([from, to]) => from <= deadline && to >= expires);
      if (row?.clearing?.body.outcome === 'merchant-deadline' && wasAway && compare(charged, spent) < 0) {
        world.stats.forfeited++;
        forfeited = add(forfeited, sub(spent, charged));
        continue;
      }
      fail(
        'merchant paid what accepts prove',
        `${shop.spec.merchantId} ${r.transaction_id}: accepts prove ${formatAmount(spent)}, acquirer ${row?.state ?? 'has no such transaction'} charged ${formatAmount(charged)}` +
          ` (outcome ${row?.clearing?.body.outcome ?? '-'}, wallet record ${row?.customer_record?.body.total ?? '-'} at ${row?.customer_record?.body.time ?? '-'},` +
          ` merchant record ${row?.merchant_record?.body.total ?? '-'} at ${row?.merchant_record?.body.time ?? '-'}, deadline ${row?.deadline_at ?? '-'})`,
      );
    }
    // The merchant received exactly what the accepts prove, less what it refunded.
    const bal = balanceOf.get(shop.spec.operatorId)!.get(accounts.merchant(shop.spec.merchantId)) ?? zero(shop.spec.currency);
    if (compare(add(add(bal, forfeited), refunded), proven) !== 0) {
      fail('merchant paid what accepts prove', `${shop.spec.merchantId}: holds ${formatAmount(bal)} after refunds of ${formatAmount(refunded)}, accepts prove ${formatAmount(proven)}`);
    }
  }

  // Each shopper paid exactly the accepted prices at its transactions' pinned rates.
  for (const w of world.wallets) {
    let expected = zero(w.currency);
    for (const tx of await w.store.listTransactions()) {
      if (!tx.handle || !tx.rate) continue;
      const session = sessions.get(tx.handle);
      const walletTotal = parseAmount(tx.cumulative);
      const proven = session?.spent ?? zero(walletTotal.currency);
      if (!w.abandoned || !tx.pending) {
        if (compare(walletTotal, proven) !== 0) {
          fail('shopper pays what it accepted', `${w.name} ${tx.handle}: wallet accepted ${tx.cumulative}, merchant proves ${formatAmount(proven)}`);
        }
      } else {
        // A wallet that stopped for good with an accept in flight: the merchant has it or not.
        const upper = add(walletTotal, parseAmount(tx.pending.price));
        if (compare(proven, walletTotal) < 0 || compare(proven, upper) > 0) {
          fail('shopper pays what it accepted', `${w.name} ${tx.handle}: wallet accepted ${tx.cumulative} (+${tx.pending.price} in flight), merchant proves ${formatAmount(proven)}`);
        }
      }
      const rate = parseRate(tx.rate);
      const back = { num: rate.den, den: rate.num };
      // What the acquirer charged: the merchant's proof (checked above), or less where the
      // merchant forfeited its claim by the stated rule.
      const charged = chargedByHandle.get(tx.handle) ?? zero(walletTotal.currency);
      const inCustomer = min(convert(charged, w.currency, back, 'half-even').amount, parseAmount(tx.depositCustomer));
      expected = add(expected, inCustomer);
      // Refunds after clearing come back as their total converted the same way, never more than was paid.
      const refunded = refundedByHandle.get(tx.handle);
      if (refunded && refunded.value > 0n) expected = sub(expected, min(convert(refunded, w.currency, back, 'half-even').amount, inCustomer));
    }
    const bal = balanceOf.get(w.operatorId)!.get(accounts.customer(w.customerId)) ?? zero(w.currency);
    const paid = sub(w.funded, bal);
    if (compare(paid, expected) !== 0) fail('shopper pays what it accepted', `${w.name}: paid ${formatAmount(paid)}, accepted prices at pinned rates ${formatAmount(expected)}`);
  }

  v.push(...(await checkPrivacy(world)));
  return v;
}

/** Nothing at either operator (database or billing record) names or matches what was bought. */
async function checkPrivacy(world: World): Promise<Violation[]> {
  const out: Violation[] = [];
  const needles: string[] = [];
  for (const shop of world.shops.values()) {
    for (const p of shop.products) needles.push(p.productId.toLowerCase(), p.title.toLowerCase(), p.description.toLowerCase());
  }
  for (const op of world.operators.values()) {
    const tables = await op.db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const texts: Array<[string, string]> = [];
    for (const t of tables) {
      const rows = await op.db.query(`SELECT * FROM "${t.table_name}"`);
      texts.push([t.table_name, JSON.stringify(rows, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)).toLowerCase()]);
    }
    texts.push(['billing records', JSON.stringify([...op.sink.records.values()]).toLowerCase()]);
    for (const [where, text] of texts) {
      for (const n of needles) {
        if (text.includes(n)) out.push({ step: world.step, invariant: 'operators learn nothing of the goods', detail: `${op.spec.id} ${where} contains "${n}"` });
      }
    }
  }
  return out;
}
