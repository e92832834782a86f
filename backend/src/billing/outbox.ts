/**
 * The billing outbox: the durable hand-off between clearing and the billing sinks.
 *
 * Calling a sink from inside the clearing transaction would be wrong both ways: a sink that is
 * down would block clearing, and a transaction that rolls back (or is retried after a
 * serialization failure) after the sink was called would bill something that never cleared, or
 * bill it twice. Instead clearing writes one entry of the outbox (store/outbox.ts) per sink in its
 * own transaction, and `BillingDispatcher` delivers committed entries afterwards, at least once,
 * retrying until the sink has them. Receivers deduplicate on the record id.
 */
import { ObolError } from '@obol/protocol/errors';
import type { Queryable } from '../store/db.ts';
import { type NewEntry, enqueueAll } from '../store/outbox.ts';
import { type BillingRecord, checkBillingRecord, checkSinkName } from './record.ts';

/**
 * Queue a signed withdrawal or deposit record for each named sink. Call it with the transaction
 * that clears the record's transaction (never with the bare Db), so the record is written exactly
 * when the clearing commits.
 *
 * Enqueuing the same record again is a no-op; the same record id with a different record is a
 * CONFLICT (a bug upstream: record ids must be derived so a replayed clearing reproduces them).
 * Returns the sinks a new row was written for.
 */
export async function enqueueBillingRecord(
  tx: Queryable,
  sinks: readonly string[],
  signedRecord: BillingRecord,
  now: number,
): Promise<string[]> {
  const written = await enqueueAll(tx, billingEntries(sinks, signedRecord), now);
  return [...new Set(sinks)].filter((_, i) => written[i]);
}

/**
 * The outbox entries of a signed record, one per sink, checked — for a caller that writes them in
 * one statement with its own entries (`enqueueAll`), in the transaction that clears the record's
 * transaction; `enqueueBillingRecord`'s rules apply.
 */
export function billingEntries(sinks: readonly string[], signedRecord: BillingRecord): NewEntry[] {
  checkBillingRecord(signedRecord);
  // A record enqueued for no sink would be billed nowhere, silently; refuse so the clearing
  // fails loudly and the operator fixes the configuration.
  if (sinks.length === 0) throw new ObolError('INTERNAL', 'no billing sink is configured to receive billing records');
  for (const sink of sinks) checkSinkName(sink);
  return [...new Set(sinks)].map((sink) => ({ topic: billingTopic(sink), key: signedRecord.body.recordId, payload: signedRecord }));
}

/** The outbox topic of a sink's records. */
export function billingTopic(sink: string): string {
  return `billing:${sink}`;
}

/** A row of the outbox not yet delivered, for operators and the CLI. */
export interface PendingBillingRecord {
  sink: string;
  recordId: string;
  type: BillingRecord['type'];
  attempts: number;
  /** When it is next tried (ms); while a dispatcher holds it, that dispatcher's lease expiry. */
  nextAttemptAt: number;
  lastError: string | null;
  enqueuedAt: number;
  record: BillingRecord;
}

interface OutboxRow {
  topic: string;
  key: string;
  payload: BillingRecord;
  attempts: number;
  next_attempt_at: bigint | number;
  last_error: string | null;
  enqueued_at: bigint | number;
}

/** Undelivered rows, the ones due soonest first. */
export async function pendingBillingRecords(db: Queryable, limit = 1000): Promise<PendingBillingRecord[]> {
  const rows = await db.query<OutboxRow>(
    `SELECT topic, key, payload, attempts, next_attempt_at, last_error, enqueued_at
       FROM outbox
      WHERE done_at IS NULL AND topic LIKE 'billing:%'
      ORDER BY next_attempt_at, enqueued_at, topic, key
      LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    sink: r.topic.slice('billing:'.length),
    recordId: r.key,
    type: r.payload.type,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error,
    enqueuedAt: Number(r.enqueued_at),
    record: r.payload,
  }));
}
