/**
 * Delivers billing records to the sinks: at least once per (sink, record), through the one
 * durable outbox (store/outbox.ts: topic `billing:<sink>`, key = record id), retried with the one
 * back-off until the sink accepts it. Several processes may run a dispatcher on one database; the
 * outbox's lease keeps an entry with one of them at a time.
 */
import type { BackoffOptions } from '@obol/protocol/backoff';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Db } from '../store/db.ts';
import { type Deliver, OutboxDispatcher, type OutboxLogger } from '../store/outbox.ts';
import { billingTopic, type PendingBillingRecord, pendingBillingRecords } from './outbox.ts';
import { type BillingRecord, type BillingSink, checkSinkName } from './record.ts';

/** The part of a pino logger the dispatcher uses. */
export type BillingLogger = OutboxLogger;

export interface BillingDispatcherOptions {
  db: Db;
  sinks: readonly BillingSink[];
  clock: Clock;
  logger?: BillingLogger;
  backoff?: BackoffOptions;
  /**
   * How long a claimed row stays reserved for this process. It must comfortably exceed one
   * delivery (the webhook timeout): once it lapses another process may deliver the row too.
   * Default 60 s (store/outbox.ts).
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

export class BillingDispatcher {
  private readonly db: Db;
  private readonly outbox: OutboxDispatcher;

  constructor(options: BillingDispatcherOptions) {
    this.db = options.db;
    const topics = new Map<string, Deliver>();
    for (const sink of options.sinks) {
      checkSinkName(sink.name);
      const topic = billingTopic(sink.name);
      if (topics.has(topic)) throw new ObolError('INTERNAL', `two billing sinks are named ${sink.name}`);
      topics.set(topic, async (entry) => {
        await sink.deliver(entry.payload as BillingRecord);
      });
    }
    // A sink has no final refusal: a record it does not take now is tried again, for as long as it takes.
    this.outbox = new OutboxDispatcher({
      db: options.db,
      clock: options.clock,
      topics,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    });
  }

  /** Deliver every row of a configured sink that is due now (see OutboxDispatcher.dispatchDue). */
  async dispatchDue(): Promise<DispatchResult> {
    const { delivered, failed, released } = await this.outbox.dispatchDue();
    return { delivered, failed, released };
  }

  /** Run rounds every `intervalMs` (the first one now) until stop(). */
  start(intervalMs: number): void {
    this.outbox.start(intervalMs);
  }

  /** Stop the timer and wait for a round in progress (and one queued behind it) to finish. */
  stop(): Promise<void> {
    return this.outbox.stop();
  }

  /** Undelivered rows of every sink (configured here or not), soonest due first. */
  pending(limit?: number): Promise<PendingBillingRecord[]> {
    return pendingBillingRecords(this.db, limit);
  }
}
