/**
 * Delivers the billing outbox to the sinks: at least once per (sink, record), retried with
 * exponential back-off until the sink accepts it.
 *
 * Several processes of one operator may run a dispatcher on one database. A row is claimed by one
 * conditional UPDATE that moves its `next_attempt_at` to the end of a lease, and only rows whose
 * `next_attempt_at` has passed can be claimed, so while one process delivers a row no other takes
 * it. PostgreSQL re-checks that condition on the latest row version after waiting for a
 * competitor's lock, so two claims cannot both win; no advisory locks or SELECT … FOR UPDATE SKIP
 * LOCKED needed, which keeps the SQL runnable on CockroachDB. If a process dies or stalls past its
 * lease, another delivers the row again: a rare duplicate, which receivers drop by record id.
 *
 * Within one process, rounds never overlap, so a row is never delivered twice at once here.
 */
import { type BackoffOptions, backoffDelay } from '@obol/protocol/backoff';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Db } from '../store/db.ts';
import { type PendingBillingRecord, pendingBillingRecords } from './outbox.ts';
import { type BillingRecord, type BillingSink, checkSinkName } from './record.ts';

/** The part of a pino logger the dispatcher uses. */
export interface BillingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BillingDispatcherOptions {
  db: Db;
  sinks: readonly BillingSink[];
  clock: Clock;
  logger?: BillingLogger;
  backoff?: BackoffOptions;
  /**
   * How long a claimed row stays reserved for this process. It must comfortably exceed one
   * delivery (the webhook timeout): once it lapses another process may deliver the row too.
   * Default 5 minutes.
   */
  leaseMs?: number;
  /** Most rows claimed per round. Default 100. */
  batchSize?: number;
}

export interface DispatchResult {
  delivered: number;
  failed: number;
  /** Claimed but handed back untried (their sink failed earlier in the round, or the lease ran short). */
  released: number;
}

interface ClaimedRow {
  sink: string;
  record_id: string;
  record: BillingRecord;
  attempts: number;
  /** next_attempt_at before the claim, to hand the row back unchanged if it is not tried. */
  due: bigint | number;
}

const MAX_ERROR_TEXT = 1000;

export class BillingDispatcher {
  private readonly db: Db;
  private readonly sinks: Map<string, BillingSink>;
  private readonly clock: Clock;
  private readonly logger: BillingLogger | undefined;
  private readonly backoff: BackoffOptions;
  private readonly leaseMs: number;
  private readonly batchSize: number;

  /** The round running now, and at most one queued behind it. */
  private running: Promise<DispatchResult> | undefined;
  private queued: Promise<DispatchResult> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  /** Bumped by start() and stop(), so a tick of an earlier start() never reschedules itself. */
  private generation = 0;

  constructor(options: BillingDispatcherOptions) {
    this.db = options.db;
    this.clock = options.clock;
    this.logger = options.logger;
    this.backoff = options.backoff ?? {};
    this.leaseMs = options.leaseMs ?? 5 * 60_000;
    this.batchSize = options.batchSize ?? 100;
    if (!(this.leaseMs > 0) || !Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new ObolError('INTERNAL', 'billing dispatcher needs a positive leaseMs and batchSize');
    }
    this.sinks = new Map();
    for (const sink of options.sinks) {
      checkSinkName(sink.name);
      if (this.sinks.has(sink.name)) throw new ObolError('INTERNAL', `two billing sinks are named ${sink.name}`);
      this.sinks.set(sink.name, sink);
    }
  }

  /**
   * Deliver every row of a configured sink that is due now. Calls while a round runs queue one
   * more round after it (so whatever became due before the call is tried), and share it.
   * Per-row failures are recorded in the outbox, not thrown; a failing database throws.
   */
  dispatchDue(): Promise<DispatchResult> {
    if (!this.running) return this.startRound();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.startRound();
      });
    return this.queued;
  }

  /** Run rounds every `intervalMs` (the first one now) until stop(). */
  start(intervalMs: number): void {
    if (this.started) return;
    if (!(intervalMs > 0)) throw new ObolError('INTERNAL', 'billing dispatch interval must be positive');
    this.started = true;
    const generation = ++this.generation;
    const tick = async () => {
      try {
        await this.dispatchDue();
      } catch (e) {
        this.logger?.error({ err: e }, 'billing dispatch round failed');
      }
      if (generation !== this.generation) return;
      // Scheduled after the round ends, so a slow round delays the next instead of piling up.
      this.timer = setTimeout(tick, intervalMs);
      // Pending records are durable; the timer alone should not keep the process alive.
      this.timer.unref();
    };
    void tick();
  }

  /** Stop the timer and wait for a round in progress (and one queued behind it) to finish. */
  async stop(): Promise<void> {
    this.started = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([this.running, this.queued]);
  }

  /** Undelivered rows of every sink (configured here or not), soonest due first. */
  pending(limit?: number): Promise<PendingBillingRecord[]> {
    return pendingBillingRecords(this.db, limit);
  }

  private startRound(): Promise<DispatchResult> {
    const round = this.round().finally(() => {
      if (this.running === round) this.running = undefined;
    });
    this.running = round;
    return round;
  }

  private async round(): Promise<DispatchResult> {
    const result: DispatchResult = { delivered: 0, failed: 0, released: 0 };
    if (this.sinks.size === 0) return result;
    const now = this.clock.now();
    const leaseUntil = now + this.leaseMs;
    const rows = await this.claim(now, leaseUntil);
    if (rows.length === 0) return result;

    // One queue per sink, in due order: a slow sink does not hold up the others.
    const bySink = new Map<string, ClaimedRow[]>();
    for (const row of rows) {
      const list = bySink.get(row.sink) ?? [];
      list.push(row);
      bySink.set(row.sink, list);
    }
    await Promise.all(
      [...bySink].map(async ([name, list]) => {
        const sink = this.sinks.get(name)!;
        let sinkFailed = false;
        for (const row of list) {
          // After a failure the sink is probably down: hand the rest back rather than wait for
          // each to fail in turn (they are tried next round). Likewise when half the lease is
          // gone, so no delivery starts that could outlive it and be duplicated by another process.
          if (sinkFailed || this.clock.now() >= now + this.leaseMs / 2) {
            if (await this.release(row, leaseUntil)) result.released++;
            continue;
          }
          if (await this.deliverOne(sink, row, leaseUntil)) result.delivered++;
          else {
            result.failed++;
            sinkFailed = true;
          }
        }
      }),
    );
    return result;
  }

  /**
   * Take up to batchSize due rows of our sinks by moving them to the end of a lease. The outer
   * `next_attempt_at <= now` is what makes the claim exclusive: a row another process claimed
   * after our subquery looked no longer matches once we get its lock.
   */
  private claim(now: number, leaseUntil: number): Promise<ClaimedRow[]> {
    return this.db.query<ClaimedRow>(
      `UPDATE billing_outbox AS o
          SET next_attempt_at = $2
         FROM (SELECT sink, record_id, next_attempt_at AS due
                 FROM billing_outbox
                WHERE delivered_at IS NULL AND next_attempt_at <= $1 AND sink = ANY($3::text[])
                ORDER BY next_attempt_at, enqueued_at
                LIMIT $4) AS d
        WHERE o.sink = d.sink AND o.record_id = d.record_id
          AND o.delivered_at IS NULL AND o.next_attempt_at <= $1
       RETURNING o.sink, o.record_id, o.record, o.attempts, d.due`,
      [now, leaseUntil, [...this.sinks.keys()], this.batchSize],
    );
  }

  /** Deliver one claimed row and record the outcome; true when the sink accepted it. */
  private async deliverOne(sink: BillingSink, row: ClaimedRow, leaseUntil: number): Promise<boolean> {
    const log = { sink: row.sink, recordId: row.record_id, attempt: Number(row.attempts) + 1 };
    try {
      await sink.deliver(row.record);
    } catch (e) {
      const failures = Number(row.attempts) + 1;
      const next = this.clock.now() + backoffDelay(failures, this.backoff);
      const message = errorText(e);
      try {
        // Only while our lease holds: if it lapsed and another process took the row over, its
        // outcome is the one that counts.
        await this.db.query(
          `UPDATE billing_outbox SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4
            WHERE sink = $1 AND record_id = $2 AND delivered_at IS NULL AND next_attempt_at = $5`,
          [row.sink, row.record_id, next, message, leaseUntil],
        );
      } catch (dbError) {
        // The row stays leased and is tried again when the lease ends.
        this.logger?.error({ ...log, err: dbError }, 'could not record a failed billing delivery');
      }
      this.logger?.warn({ ...log, retryAt: next, error: message }, 'billing delivery failed; will retry');
      return false;
    }
    try {
      // Whoever holds the lease now, the sink has the record: mark it delivered regardless.
      await this.db.query(
        `UPDATE billing_outbox SET attempts = attempts + 1, delivered_at = $3, last_error = NULL
          WHERE sink = $1 AND record_id = $2 AND delivered_at IS NULL`,
        [row.sink, row.record_id, this.clock.now()],
      );
    } catch (dbError) {
      // Delivered but not marked: it will be delivered again after the lease, and the sink
      // (or the receiver, by record id) drops the repeat.
      this.logger?.error({ ...log, err: dbError }, 'billing record delivered but not marked delivered');
      return true;
    }
    this.logger?.info(log, 'billing record delivered');
    return true;
  }

  /** Hand a claimed, untried row back as it was, if we still hold it. */
  private async release(row: ClaimedRow, leaseUntil: number): Promise<boolean> {
    try {
      const rows = await this.db.query(
        `UPDATE billing_outbox SET next_attempt_at = $3
          WHERE sink = $1 AND record_id = $2 AND delivered_at IS NULL AND next_attempt_at = $4
         RETURNING record_id`,
        [row.sink, row.record_id, Number(row.due), leaseUntil],
      );
      return rows.length > 0;
    } catch (e) {
      // Not fatal: the row comes back by itself when the lease ends.
      this.logger?.error({ sink: row.sink, recordId: row.record_id, err: e }, 'could not release a billing row');
      return false;
    }
  }
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT - 1)}…` : text;
}
