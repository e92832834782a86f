/**
 * What the billing sinks receive (DESIGN.md FIG 3 step 11): the operator-signed withdrawal record
 * (customer side) or deposit record (merchant side), exactly as signed, so a billing system can
 * verify it against the operator's key and deduplicate on its `recordId`.
 */
import { ObolError } from '@obol/protocol/errors';
import { checkMessageBody } from '@obol/protocol/messages';
import type { Signed } from '@obol/protocol/signed';

/** Withdrawal and deposit records of clearing; refund records of a refund after it (one per side). */
export type BillingRecord = Signed<'am.withdrawal'> | Signed<'am.deposit'> | Signed<'am.refund'>;
export type BillingRecordType = BillingRecord['type'];

/** A place billing records go: a file, a webhook, the operator's own billing system. */
export interface BillingSink {
  /**
   * Stable name, stored in the outbox next to each row: renaming a sink orphans its pending rows,
   * so pick it once (lower case, digits, `_.-`, up to 64 characters).
   */
  readonly name: string;
  /**
   * Hand over one record; resolve only once the sink has it durably, throw otherwise. It may be
   * called again for a record it already has (a crash between delivery and marking it delivered,
   * or a lease that ran out), so it must accept a repeat without producing a second record.
   */
  deliver(record: BillingRecord): Promise<void>;
  /** Release files or connections. */
  close?(): Promise<void>;
}

export const SINK_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function checkSinkName(name: string): void {
  if (typeof name !== 'string' || !SINK_NAME_PATTERN.test(name)) {
    throw new ObolError(
      'INTERNAL',
      `billing sink name ${JSON.stringify(name)} is not valid (lower case letters, digits, "_.-", at most 64)`,
    );
  }
}

/**
 * Check that a value is a billing record by shape and schema (not signature: the outbox only holds
 * records this operator signed itself). Throws MALFORMED or WRONG_MESSAGE_TYPE.
 */
export function checkBillingRecord(value: unknown): asserts value is BillingRecord {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ObolError('MALFORMED', 'a billing record must be a signed message object');
  }
  const m = value as Record<string, unknown>;
  if (m.type !== 'am.withdrawal' && m.type !== 'am.deposit' && m.type !== 'am.refund') {
    throw new ObolError('WRONG_MESSAGE_TYPE', `a billing record is an am.withdrawal, am.deposit or am.refund, not ${String(m.type).slice(0, 40)}`);
  }
  if (m.v !== 1 || typeof m.kid !== 'string' || typeof m.sig !== 'string') {
    throw new ObolError('MALFORMED', 'a billing record must be a signed message (v, type, kid, body, sig)');
  }
  checkMessageBody(m.type, m.body);
}
