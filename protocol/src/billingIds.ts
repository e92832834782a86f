import { ObolError } from './errors.ts';

/**
 * Billing record ids (DESIGN.md FIG 3 step 11). A billing system deduplicates on `recordId`, so
 * two different records must never share one: the id is a kind prefix followed by the transaction
 * id unchanged, which is injective by construction (the inverse, `parseBillingRecordId`, gives
 * the transaction back). No padding, no truncation, no character replacement: those are what made
 * `op-sek.1.1`, `op-sek.1.10` and `op-sek.1.100` collide. Both operator roles build their ids
 * here and nowhere else.
 */

/** Longest transaction id a record id can carry (TransactionIdentity is at most 66; handles may be longer). */
export const BILLING_TRANSACTION_ID_MAX = 128;
/** Characters a transaction id (or an opaque handle standing for one) may use in a record id. */
const TRANSACTION_PART = new RegExp(`^[A-Za-z0-9._-]{1,${BILLING_TRANSACTION_ID_MAX}}$`);

export type BillingRecordKind = 'deposit' | 'withdrawal' | 'refund';
const PREFIX: Record<BillingRecordKind, string> = { deposit: 'd.', withdrawal: 'w.', refund: 'r.' };

/**
 * What the record id schema accepts: our prefixed ids and, for records from elsewhere (a billing
 * system that replays its own), any base64url id. Ours always contain a dot after one letter, so
 * they never meet a base64url id.
 */
export const BILLING_RECORD_ID_PATTERN = `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,${BILLING_TRANSACTION_ID_MAX + 1}}$`;

export function billingRecordId(kind: BillingRecordKind, transactionId: string): string {
  if (typeof transactionId !== 'string' || !TRANSACTION_PART.test(transactionId)) {
    throw new ObolError(
      'INVALID_IDENTITY',
      `a billing record id needs a transaction id of 1–${BILLING_TRANSACTION_ID_MAX} characters [A-Za-z0-9._-], not ${JSON.stringify(String(transactionId).slice(0, 40))}`,
    );
  }
  return `${PREFIX[kind]}${transactionId}`;
}

/** The deposit record of a transaction at its acquirer. */
export const depositRecordId = (transactionId: string): string => billingRecordId('deposit', transactionId);
/** The withdrawal record of a transaction at its account manager. */
export const withdrawalRecordId = (transactionId: string): string => billingRecordId('withdrawal', transactionId);

/**
 * The record of refund number `n` of a transaction (at the acquirer the trade handle, at the
 * account manager the TransactionIdentity): `r.<transaction>.<n>`. Injective: `n` has no dot, so
 * the last dot splits it off again.
 */
export function refundRecordId(transactionId: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) throw new ObolError('INVALID_IDENTITY', `a refund number is a whole number from 1, not ${n}`);
  return billingRecordId('refund', `${transactionId}.${n}`);
}

/** The inverse of `billingRecordId`: undefined for an id this module did not make. */
export function parseBillingRecordId(recordId: string): { kind: BillingRecordKind; transactionId: string } | undefined {
  // A refund's id carries `<transaction>.<n>` where the others carry the transaction alone.
  for (const kind of ['deposit', 'withdrawal', 'refund'] as const) {
    const prefix = PREFIX[kind];
    if (recordId.startsWith(prefix)) {
      const transactionId = recordId.slice(prefix.length);
      return TRANSACTION_PART.test(transactionId) ? { kind, transactionId } : undefined;
    }
  }
  return undefined;
}
