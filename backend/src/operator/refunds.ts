import type { CustomerRefund } from '@obol/protocol/api';
import { refundRecordId } from '@obol/protocol/billingIds';
import { canonicalJson } from '@obol/protocol/canonicalJson';
import { ObolError } from '@obol/protocol/errors';
import { parseRate, refundInCustomerCurrency } from '@obol/protocol/exchangeTable';
import { type Amount, amount, compare, formatAmount, parseAmount } from '@obol/protocol/money';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId, sha256, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import { enqueueBillingRecord } from '../billing/outbox.ts';
import type { Queryable } from '../store/db.ts';
import { enqueue } from '../store/outbox.ts';
import { kidOf } from './accountManager.ts';
import { clearingOutbox } from './acquirer.ts';
import { accounts, type OperatorContext } from './context.ts';

/**
 * Refunds after clearing (issue 14 item 2). The merchant asks its own operator (the acquirer),
 * signed with its key, to give back part or all of what a cleared transaction paid it. The
 * acquirer books it once per refund id — the merchant's account to the customer operator's
 * inter-operator account, never more in total than the transaction paid — writes a refund record
 * for its billing, and sends a signed `acquirer.refund` through the outbox to the customer's
 * account manager, which credits the shopper in her currency at the transaction's pinned rate
 * (`refundInCustomerCurrency`), writes its own refund record, and shows it to the wallet.
 *
 * The steps are methods of the two agents: AcquirerAgent.merchantRefund, AccountManagerAgent.refund
 * and AccountManagerAgent.refunds.
 */

/** The outbox topic of refunds to customers' operators (delivered with the clearing information's dispatcher). */
export const REFUND_TOPIC = 'refund';

export interface RefundDelivery {
  customerOperator: string;
  refund: Signed<'acquirer.refund'>;
}

// ── the acquirer: the merchant's refund ──────────────────────────────────────────────────────

interface AcqRefundTarget {
  id: string;
  merchant_id: string;
  customer_operator: string;
  state: string;
  clearing: Signed<'acquirer.clearing'> | null;
}

/**
 * A merchant's signed refund. The same refund id with the same transaction and amount is the same
 * refund: its stored answer comes back and nothing moves again. Refused with nothing moved: a
 * refund id already used for another refund (REPLAYED), a transaction that is not this
 * merchant's or not known (both UNKNOWN_TRANSACTION: another merchant's transaction is not
 * confirmed to exist), one not cleared yet (CONFLICT: refund it inside the session), more than what it paid less
 * what was refunded (AMOUNT_EXCEEDS_SIGNED), more than the merchant's account holds
 * (INSUFFICIENT_FUNDS).
 */
export async function merchantRefund(ctx: OperatorContext, body: unknown): Promise<Signed<'acquirer.refund'>> {
  const kid = kidOf(body);
  const [merchant] = await ctx.db.query<{ id: string; public_key: string }>('SELECT id, public_key FROM merchants WHERE key_id = $1', [kid]);
  if (!merchant) throw new ObolError('UNKNOWN_KEY', 'not a merchant of this operator');
  await ctx.keys.addSpki(merchant.public_key);
  const msg = await verifyMessage(body, 'merchant.refund', (k) => (k === kid ? ctx.keys.get(k) : undefined), ctx.crypto);
  const r = msg.body;
  if (r.merchantId !== merchant.id) throw new ObolError('UNAUTHORIZED', `the refund names merchant ${r.merchantId}, signed by ${merchant.id}`);
  const refundAmount = parseAmount(r.amount);
  if (refundAmount.value <= 0n) throw new ObolError('INVALID_AMOUNT', 'a refund is more than zero');
  // What makes a resend the same refund: the transaction and the amount (not its time or signature).
  const digest = toBase64Url(await sha256(utf8.encode(canonicalJson({ transactionId: r.transactionId, amount: formatAmount(refundAmount) }))));
  const earlier = await previousRefund(ctx.db, merchant.id, r.refundId, digest);
  if (earlier) return earlier;

  const [row] = await ctx.db.query<AcqRefundTarget>('SELECT id, merchant_id, customer_operator, state, clearing FROM acq_transactions WHERE id = $1', [
    r.transactionId,
  ]);
  // Another merchant's transaction is as unknown to this merchant as one that does not exist.
  if (!row || row.merchant_id !== merchant.id) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${r.transactionId} of ${merchant.id}`);
  if (row.state !== 'cleared' || !row.clearing) {
    throw new ObolError('CONFLICT', `transaction ${r.transactionId} has not cleared: a refund through the operators comes after clearing`);
  }
  const charged = parseAmount(row.clearing.body.charged);
  if (refundAmount.currency !== charged.currency) throw new ObolError('CURRENCY_MISMATCH', `transaction ${r.transactionId} was paid in ${charged.currency}`);
  const now = ctx.clock.now();

  const answer = await ctx.db.transaction(
    async (tx) => {
      // Raise the running total only if it stays within what was paid: one guarded UPDATE, so two
      // refunds at once cannot both pass the check (the row lock orders them).
      const [raised] = await tx.query<{ refunded: string | bigint; refund_count: number }>(
        `UPDATE acq_transactions SET refunded = refunded + $2, refund_count = refund_count + 1
          WHERE id = $1 AND state = 'cleared' AND refunded + $2 <= $3 RETURNING refunded, refund_count`,
        [row.id, refundAmount.value.toString(), charged.value.toString()],
      );
      if (!raised) {
        // Perhaps a copy of this very refund just committed: its answer, not a refusal.
        const copy = await previousRefund(tx, merchant.id, r.refundId, digest);
        if (copy) return copy;
        const [t] = await tx.query<{ refunded: string | bigint }>('SELECT refunded FROM acq_transactions WHERE id = $1', [row.id]);
        const left = amount(charged.currency, charged.value - BigInt(t?.refunded ?? 0));
        throw new ObolError(
          'AMOUNT_EXCEEDS_SIGNED',
          `a refund of ${formatAmount(refundAmount)} is more than is left to refund of transaction ${row.id} (${formatAmount(left)} of ${formatAmount(charged)})`,
        );
      }
      const n = Number(raised.refund_count);
      const refundedTotal = amount(charged.currency, BigInt(raised.refunded));
      const refund = await signMessage(
        'acquirer.refund',
        { msgId: randomId(), transactionId: row.id, n, refundId: r.refundId, amount: formatAmount(refundAmount), refundedTotal: formatAmount(refundedTotal), time: now },
        ctx.identity.key.signer,
      );
      const inserted = await tx.query(
        `INSERT INTO acq_refunds (merchant_id, refund_id, transaction_id, n, amount, request_digest, refund, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8) ON CONFLICT (merchant_id, refund_id) DO NOTHING RETURNING n`,
        [merchant.id, r.refundId, row.id, n, formatAmount(refundAmount), digest, JSON.stringify(refund), now],
      );
      // A copy of this refund id committed first: undo nothing by hand, the whole transaction rolls back.
      if (inserted.length === 0) throw new RefundRaced();
      // The merchant gives back what it was paid: to the customer operator's account, which the
      // deposit came from (limit 0: a merchant cannot refund money it no longer holds).
      const peerAccount = accounts.peer(row.customer_operator, charged.currency);
      await ctx.ledger.ensureAccountIn(tx, { id: peerAccount, kind: 'inter_operator', currency: charged.currency });
      await ctx.ledger.payIn(tx, {
        id: `refund:${row.id}:${n}`,
        kind: 'refund',
        from: accounts.merchant(merchant.id),
        to: peerAccount,
        amount: refundAmount,
        memo: { transactionId: row.id, n, refundId: r.refundId },
      });
      const record = await signMessage(
        'am.refund',
        {
          recordId: refundRecordId(row.id, n),
          operatorId: ctx.config.operatorId,
          side: 'merchant',
          transactionId: row.id,
          handle: row.id,
          n,
          merchantId: merchant.id,
          counterpartOperatorId: row.customer_operator,
          amount: formatAmount(refundAmount),
          amountMerchant: formatAmount(refundAmount),
          time: now,
        },
        ctx.identity.key.signer,
      );
      await enqueueBillingRecord(tx, ctx.billingSinks, record, now);
      const delivery: RefundDelivery = { customerOperator: row.customer_operator, refund };
      await enqueue(tx, REFUND_TOPIC, `${row.id}.${n}`, delivery, now);
      return refund;
    },
    { isolation: 'read committed' },
  ).catch(async (e: unknown) => {
    if (!(e instanceof RefundRaced)) throw e;
    const copy = await previousRefund(ctx.db, merchant.id, r.refundId, digest);
    if (!copy) throw new ObolError('CONFLICT', `refund ${r.refundId} is being handled; send it again shortly for its answer`);
    return copy;
  });
  // Deliver now when we can; the outbox (settleDeadlines' dispatchDue) tries again otherwise.
  await clearingOutbox(ctx)
    .dispatchOne(REFUND_TOPIC, `${answer.body.transactionId}.${answer.body.n}`)
    .catch((err: unknown) => ctx.log.warn({ transactionId: answer.body.transactionId, err }, 'a refund could not be delivered yet; will retry'));
  return answer;
}

/** Two copies of one refund id raced: the loser rolls back and answers with the winner's refund. */
class RefundRaced extends Error {}

async function previousRefund(db: Queryable, merchantId: string, refundId: string, digest: string): Promise<Signed<'acquirer.refund'> | undefined> {
  const [row] = await db.query<{ request_digest: string; refund: Signed<'acquirer.refund'> }>(
    'SELECT request_digest, refund FROM acq_refunds WHERE merchant_id = $1 AND refund_id = $2',
    [merchantId, refundId],
  );
  if (!row) return undefined;
  if (row.request_digest !== digest) throw new ObolError('REPLAYED', `refund id ${refundId} was already used for another refund`);
  return row.refund;
}

// ── the customer's account manager: the refund comes in ─────────────────────────────────────

interface AmRefundTarget {
  id: string;
  trade_handle: string;
  customer_id: string;
  merchant_operator: string;
  deposit_customer: string;
  rate: string;
  state: string;
  charged_customer: string | null;
  clearing: Signed<'acquirer.clearing'> | null;
}

/**
 * The acquirer's refund: the customer is credited what the refunds so far come to at the
 * transaction's pinned rate, less what they came to before this one. Ledger, refund row and
 * refund record commit together, once per (transaction, n); a copy changes nothing.
 */
export async function applyRefund(ctx: OperatorContext, msg: Signed<'acquirer.refund'>, fromOperator: string): Promise<{ transactionId: string; n: number; amount: string }> {
  const b = msg.body;
  const [row] = await ctx.db.query<AmRefundTarget>(
    `SELECT id, trade_handle, customer_id, merchant_operator, deposit_customer, rate, state, charged_customer, clearing
       FROM am_transactions WHERE trade_handle = $1`,
    [b.transactionId],
  );
  if (!row) throw new ObolError('UNKNOWN_TRANSACTION', `no transaction ${b.transactionId}`);
  if (row.merchant_operator !== fromOperator) throw new ObolError('UNAUTHORIZED', 'a refund from an operator that is not the acquirer');
  const [done] = await ctx.db.query<{ amount: string }>('SELECT amount FROM am_refunds WHERE transaction_id = $1 AND n = $2', [row.id, b.n]);
  if (done) return { transactionId: b.transactionId, n: b.n, amount: done.amount };
  // The clearing is on its way through the same outbox: until it is here, try again later
  // (CONFLICT: an answer that may change, so the acquirer's outbox sends it again).
  if (row.state !== 'cleared' || !row.clearing || !row.charged_customer) {
    throw new ObolError('CONFLICT', `transaction ${b.transactionId} has not cleared here yet; send the refund again shortly`);
  }
  const chargedMerchant = parseAmount(row.clearing.body.charged);
  const refundMerchant = parseAmount(b.amount);
  const refundedTotal = parseAmount(b.refundedTotal);
  if (refundMerchant.currency !== chargedMerchant.currency || refundedTotal.currency !== chargedMerchant.currency) {
    throw new ObolError('CURRENCY_MISMATCH', `transaction ${b.transactionId} was paid in ${chargedMerchant.currency}`);
  }
  if (compare(refundedTotal, chargedMerchant) > 0) {
    throw new ObolError('AMOUNT_EXCEEDS_SIGNED', `refunds of ${b.refundedTotal} are more than the ${row.clearing.body.charged} transaction ${b.transactionId} paid`);
  }
  const chargedCustomer = parseAmount(row.charged_customer);
  const credit = refundInCustomerCurrency(chargedCustomer, refundedTotal, refundMerchant, parseRate(row.rate));
  const now = ctx.clock.now();
  const record = await signMessage(
    'am.refund',
    {
      recordId: refundRecordId(row.id, b.n),
      operatorId: ctx.config.operatorId,
      side: 'customer',
      transactionId: row.id,
      handle: b.transactionId,
      n: b.n,
      customerId: row.customer_id,
      counterpartOperatorId: fromOperator,
      amount: formatAmount(credit),
      amountMerchant: formatAmount(refundMerchant),
      rate: row.rate,
      time: now,
    },
    ctx.identity.key.signer,
  );
  await ctx.db.transaction(
    async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO am_refunds (transaction_id, n, customer_id, amount, amount_merchant, refund, created_at)
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7) ON CONFLICT (transaction_id, n) DO NOTHING RETURNING n`,
        [row.id, b.n, row.customer_id, formatAmount(credit), formatAmount(refundMerchant), JSON.stringify(msg), now],
      );
      if (inserted.length === 0) return; // a copy of this refund came first
      await bookRefund(ctx, tx, { transactionId: row.id, n: b.n, customerId: row.customer_id, fromOperator, refundMerchant, credit });
      await enqueueBillingRecord(tx, ctx.billingSinks, record, now);
    },
    { isolation: 'read committed' },
  );
  return { transactionId: b.transactionId, n: b.n, amount: formatAmount(credit) };
}

/**
 * The ledger of a refund at the customer's operator, the mirror of clearing: the merchant's
 * operator's account gives back the refund in its currency; in one currency straight to the
 * customer, across currencies through FX (merchant currency in, customer currency out at the
 * pinned rate; the rounding stays with FX, as at clearing).
 */
async function bookRefund(
  ctx: OperatorContext,
  tx: Queryable,
  r: { transactionId: string; n: number; customerId: string; fromOperator: string; refundMerchant: Amount; credit: Amount },
): Promise<void> {
  const memo = { transactionId: r.transactionId, n: r.n };
  const peerAccount = { id: accounts.peer(r.fromOperator, r.refundMerchant.currency), kind: 'inter_operator', currency: r.refundMerchant.currency } as const;
  await ctx.ledger.ensureAccountIn(tx, peerAccount);
  if (r.refundMerchant.currency === r.credit.currency) {
    await ctx.ledger.payIn(tx, { id: `refund:${r.transactionId}:${r.n}`, kind: 'refund', from: peerAccount.id, to: accounts.customer(r.customerId), amount: r.credit, memo });
    return;
  }
  const fxMerchant = { id: accounts.fx(r.refundMerchant.currency), kind: 'fx', currency: r.refundMerchant.currency } as const;
  const fxCustomer = { id: accounts.fx(r.credit.currency), kind: 'fx', currency: r.credit.currency } as const;
  await ctx.ledger.ensureAccountIn(tx, fxMerchant);
  await ctx.ledger.ensureAccountIn(tx, fxCustomer);
  await ctx.ledger.payIn(tx, { id: `refund-exchange:${r.transactionId}:${r.n}`, kind: 'refund-exchange', from: peerAccount.id, to: fxMerchant.id, amount: r.refundMerchant, memo });
  if (r.credit.value > 0n) {
    await ctx.ledger.payIn(tx, { id: `refund:${r.transactionId}:${r.n}`, kind: 'refund', from: fxCustomer.id, to: accounts.customer(r.customerId), amount: r.credit, memo });
  }
}

/** A customer's refunds, newest first (at most 1,000). */
export async function customerRefunds(ctx: OperatorContext, customerId: string, transactionId?: string): Promise<CustomerRefund[]> {
  const rows = await ctx.db.query<{ transaction_id: string; n: number; amount: string; amount_merchant: string; created_at: string | bigint }>(
    `SELECT transaction_id, n, amount, amount_merchant, created_at FROM am_refunds
      WHERE customer_id = $1 AND ($2::text IS NULL OR transaction_id = $2) ORDER BY created_at DESC, transaction_id, n DESC LIMIT 1000`,
    [customerId, transactionId ?? null],
  );
  return rows.map((r) => ({ transactionId: r.transaction_id, n: Number(r.n), amount: r.amount, amountMerchant: r.amount_merchant, time: Number(r.created_at) }));
}

// ── the audit: refunds as the books show them ────────────────────────────────────────────────

/** What the audit finds wrong with refunds: each line names a transaction and what disagrees. */
export async function auditRefunds(ctx: OperatorContext): Promise<string[]> {
  const problems: string[] = [];
  // Acquirer: the running total is the sum of the refunds, within what was paid, each booked once.
  const acq = await ctx.db.query<{ id: string; refunded: string | bigint; refund_count: number; clearing: Signed<'acquirer.clearing'> | null }>(
    'SELECT id, refunded, refund_count, clearing FROM acq_transactions WHERE refund_count > 0 ORDER BY id',
  );
  for (const t of acq) {
    const refunds = await ctx.db.query<{ n: number; amount: string }>('SELECT n, amount FROM acq_refunds WHERE transaction_id = $1 ORDER BY n', [t.id]);
    const sum = refunds.reduce((s, r) => s + parseAmount(r.amount).value, 0n);
    if (sum !== BigInt(t.refunded) || refunds.length !== Number(t.refund_count)) problems.push(`${t.id}: refunds sum to ${sum} in ${refunds.length}, the transaction says ${t.refunded} in ${t.refund_count}`);
    if (!t.clearing || BigInt(t.refunded) > parseAmount(t.clearing.body.charged).value) problems.push(`${t.id}: refunded ${t.refunded}, more than it paid`);
    for (const r of refunds) problems.push(...(await movementDiffers(ctx, `refund:${t.id}:${r.n}`, parseAmount(r.amount))));
  }
  // Account manager: each refund credited once, in total no more than the shopper was charged.
  const am = await ctx.db.query<{ transaction_id: string; n: number; amount: string; charged_customer: string | null }>(
    `SELECT r.transaction_id, r.n, r.amount, t.charged_customer FROM am_refunds r JOIN am_transactions t ON t.id = r.transaction_id ORDER BY r.transaction_id, r.n`,
  );
  const creditedPerTransaction = new Map<string, { credited: bigint; charged: bigint }>();
  for (const r of am) {
    const credit = parseAmount(r.amount);
    if (credit.value > 0n) problems.push(...(await movementDiffers(ctx, `refund:${r.transaction_id}:${r.n}`, credit)));
    const seen = creditedPerTransaction.get(r.transaction_id) ?? { credited: 0n, charged: r.charged_customer ? parseAmount(r.charged_customer).value : 0n };
    seen.credited += credit.value;
    creditedPerTransaction.set(r.transaction_id, seen);
  }
  for (const [id, s] of creditedPerTransaction) if (s.credited > s.charged) problems.push(`${id}: refunds credited ${s.credited}, more than the ${s.charged} charged`);
  return problems;
}

/** The refund's movement must exist and move exactly its amount (the credited leg). */
async function movementDiffers(ctx: OperatorContext, movementId: string, expected: Amount): Promise<string[]> {
  const [m] = await ctx.db.query<{ moved: string | bigint | null }>(
    'SELECT SUM(amount) FILTER (WHERE amount > 0) AS moved FROM entries WHERE movement_id = $1 AND currency = $2',
    [movementId, expected.currency],
  );
  const moved = m?.moved === null || m?.moved === undefined ? undefined : BigInt(m.moved);
  return moved === expected.value ? [] : [`${movementId}: the ledger moved ${moved ?? 'nothing'}, the refund is ${formatAmount(expected)}`];
}
