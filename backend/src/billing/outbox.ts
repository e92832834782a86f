/**
 * The billing outbox: the durable hand-off between clearing and the billing sinks.
 *
 * Calling a sink from inside the clearing transaction would be wrong both ways: a sink that is
 * down would block clearing, and a transaction that rolls back (or is retried after a
 * serialization failure) after the sink was called would bill something that never cleared, or
 * bill it twice. Instead clearing inserts one outbox row per sink in its own transaction, and
 * `BillingDispatcher` delivers committed rows afterwards, at least once, retrying until the sink
 * has them. Receivers deduplicate on the record id.
 */
import { ObolError } from '@obol/protocol/errors';
import type { Queryable } from '../store/db.ts';
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
  checkBillingRecord(signedRecord);
  // A record enqueued for no sink would be billed nowhere, silently; refuse so the clearing
  // fails loudly and the operator fixes the configuration.
  if (sinks.length === 0) throw new ObolError('INTERNAL', 'no billing sink is configured to receive billing records');
  for (const sink of sinks) checkSinkName(sink);
  if (!Number.isSafeInteger(now) || now < 0) throw new ObolError('INTERNAL', `not a time in milliseconds: ${now}`);
  const names = [...new Set(sinks)];
  const recordId = signedRecord.body.recordId;
  const json = JSON.stringify(signedRecord);

  const inserted = await tx.query<{ sink: string }>(
    `INSERT INTO billing_outbox (sink, record_id, record, attempts, next_attempt_at, enqueued_at)
     SELECT s, $2, $3::jsonb, 0, $4, $4 FROM unnest($1::text[]) AS s
     ON CONFLICT (sink, record_id) DO NOTHING
     RETURNING sink`,
    [names, recordId, json, now],
  );
  if (inserted.length < names.length) {
    // jsonb equality ignores key order and whitespace, so this compares records, not texts.
    const differing = await tx.query<{ sink: string }>(
      `SELECT sink FROM billing_outbox
        WHERE record_id = $1 AND sink = ANY($2::text[]) AND record <> $3::jsonb`,
      [recordId, names, json],
    );
    if (differing.length > 0) {
      throw new ObolError(
        'CONFLICT',
        `billing record ${recordId} was already enqueued with different contents (sink ${differing[0]!.sink})`,
      );
    }
  }
  return inserted.map((r) => r.sink);
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
  sink: string;
  record_id: string;
  record: BillingRecord;
  attempts: number;
  next_attempt_at: bigint | number;
  last_error: string | null;
  enqueued_at: bigint | number;
}

/** Undelivered rows, the ones due soonest first. */
export async function pendingBillingRecords(db: Queryable, limit = 1000): Promise<PendingBillingRecord[]> {
  const rows = await db.query<OutboxRow>(
    `SELECT sink, record_id, record, attempts, next_attempt_at, last_error, enqueued_at
       FROM billing_outbox
      WHERE delivered_at IS NULL
      ORDER BY next_attempt_at, enqueued_at, sink, record_id
      LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    sink: r.sink,
    recordId: r.record_id,
    type: r.record.type,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error,
    enqueuedAt: Number(r.enqueued_at),
    record: r.record,
  }));
}
