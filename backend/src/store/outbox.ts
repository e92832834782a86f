/**
 * The one durable outbox of the backend (issue 12 item 2): whatever must reach another party at
 * least once — billing records to the sinks, clearing information to the customer's operator,
 * merchant records to the acquirer — is written as an entry (topic, key, payload) in the same
 * database transaction as the work it reports, and delivered afterwards by an `OutboxDispatcher`,
 * retried with the one back-off (protocol/src/backoff.ts) until the receiver has it.
 *
 * - The key is the receiver's deduplication key: a resend (after a crash between sending and
 *   marking sent, or after a lease lapsed) carries the same key and payload.
 * - An answer that says the entry never will be accepted (a terminal refusal, see `isFinal`) ends
 *   it: it is kept with the entry, logged, and never sent again.
 * - Several processes may share one database. An entry is claimed by one conditional UPDATE that
 *   moves its `next_attempt_at` to the end of a lease; only entries whose time has come can be
 *   claimed, so while one process delivers an entry no other takes it. PostgreSQL re-checks that
 *   condition on the latest row version after waiting for a competitor's lock, so two claims
 *   cannot both win; no advisory locks or SKIP LOCKED, which keeps the SQL runnable on
 *   CockroachDB. If a process dies past its lease, another delivers the entry again: a rare
 *   duplicate, which receivers drop by key.
 *
 * Times are milliseconds from the injected clock (not now()), so tests can move time.
 */
import { type BackoffOptions, backoffDelay } from '@obol/protocol/backoff';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Db, Queryable } from './db.ts';

/** Topics name a kind of entry and its receiver: lower case, digits, "_.:-". */
export const TOPIC_PATTERN = /^[a-z0-9][a-z0-9_.:-]{0,79}$/;
const MAX_KEY = 200;
const MAX_ERROR_TEXT = 1000;
/** See OutboxDispatcherOptions.leaseMs. */
export const DEFAULT_LEASE_MS = 60_000;

export interface OutboxEntry<P = unknown> {
  topic: string;
  key: string;
  payload: P;
  /** Attempts made before this one. */
  attempts: number;
}

/** An entry not yet done, for operators, the CLI and tests. */
export interface PendingEntry<P = unknown> extends OutboxEntry<P> {
  /** When it is next tried (ms); while a dispatcher holds it, that dispatcher's lease expiry. */
  nextAttemptAt: number;
  lastError: string | null;
  enqueuedAt: number;
}

/** How an entry ended, or that it has not. */
export interface EntryState {
  attempts: number;
  done: boolean;
  /** The receiver's terminal refusal (a catalogue error), when that is how it ended. */
  refusal: { name: string; message?: string } | null;
  lastError: string | null;
  nextAttemptAt: number;
}

/**
 * Write an entry, in the caller's transaction (so it exists exactly when the work commits).
 * Writing the same entry again is a no-op; the same key with another payload is a CONFLICT (a
 * bug upstream: keys must be derived so a replayed operation reproduces its entries). Returns
 * true when a new entry was written.
 */
export async function enqueue(tx: Queryable, topic: string, key: string, payload: unknown, now: number): Promise<boolean> {
  const [written] = await enqueueAll(tx, [{ topic, key, payload }], now);
  return written === true;
}

/** An entry to write: its topic, its receiver's deduplication key and what it carries. */
export interface NewEntry {
  topic: string;
  key: string;
  payload: unknown;
}

/**
 * Write several entries in one statement (what one piece of work reports, e.g. a clearing's
 * billing records and its clearing information), with `enqueue`'s rules for each. Returns, in
 * order, whether each was new.
 */
export async function enqueueAll(tx: Queryable, entries: readonly NewEntry[], now: number): Promise<boolean[]> {
  const seen = new Set<string>();
  for (const { topic, key } of entries) {
    checkTopic(topic);
    if (typeof key !== 'string' || key === '' || key.length > MAX_KEY) {
      throw new ObolError('INTERNAL', `an outbox key is 1 to ${MAX_KEY} characters`);
    }
    // Two entries of one key in one statement could not each say whether it was new.
    const id = JSON.stringify([topic, key]);
    if (seen.has(id)) throw new ObolError('INTERNAL', `outbox entry ${topic} ${key} twice in one write`);
    seen.add(id);
  }
  if (!Number.isSafeInteger(now) || now < 0) throw new ObolError('INTERNAL', `not a time in milliseconds: ${now}`);
  if (entries.length === 0) return [];
  // One statement: the inserts, and for each key that was taken whether the payload there
  // differs (jsonb equality ignores key order and whitespace, so this compares payloads, not
  // texts). The existing rows are read in the statement's snapshot, which has none of the inserts.
  const rows = await tx.query<{ n: number; inserted: boolean; differs: boolean }>(
    `WITH v AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS v(topic, key, payload, n)),
     ins AS (
       INSERT INTO outbox (topic, key, payload, attempts, next_attempt_at, enqueued_at)
       SELECT topic, key, payload::jsonb, 0, $4, $4 FROM v ORDER BY n
       ON CONFLICT (topic, key) DO NOTHING RETURNING topic, key)
     SELECT v.n::integer AS n,
            EXISTS (SELECT 1 FROM ins WHERE ins.topic = v.topic AND ins.key = v.key) AS inserted,
            EXISTS (SELECT 1 FROM outbox o WHERE o.topic = v.topic AND o.key = v.key AND o.payload <> v.payload::jsonb) AS differs
       FROM v ORDER BY v.n`,
    [entries.map((e) => e.topic), entries.map((e) => e.key), entries.map((e) => JSON.stringify(e.payload)), now],
  );
  return entries.map(({ topic, key }, i) => {
    const r = rows[i];
    if (r?.inserted) return true;
    if (r?.differs) throw new ObolError('CONFLICT', `outbox entry ${topic} ${key} was already written with another payload`);
    return false;
  });
}

/** Entries not yet done, of the given topics (all when omitted), soonest due first. */
export async function pendingEntries<P = unknown>(db: Queryable, topics?: readonly string[], limit = 1000): Promise<PendingEntry<P>[]> {
  const rows = await db.query<OutboxRow<P> & { next_attempt_at: bigint | number; last_error: string | null; enqueued_at: bigint | number }>(
    `SELECT topic, key, payload, attempts, next_attempt_at, last_error, enqueued_at FROM outbox
      WHERE done_at IS NULL AND ($1::text[] IS NULL OR topic = ANY($1::text[]))
      ORDER BY next_attempt_at, enqueued_at, topic, key
      LIMIT $2`,
    [topics ? [...topics] : null, limit],
  );
  return rows.map((r) => ({
    topic: r.topic,
    key: r.key,
    payload: r.payload,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error,
    enqueuedAt: Number(r.enqueued_at),
  }));
}

/** Where one entry stands, or undefined when there is none. */
export async function entryState(db: Queryable, topic: string, key: string): Promise<EntryState | undefined> {
  const [r] = await db.query<{
    attempts: number;
    done_at: bigint | number | null;
    refusal: { name: string; message?: string } | null;
    last_error: string | null;
    next_attempt_at: bigint | number;
  }>('SELECT attempts, done_at, refusal, last_error, next_attempt_at FROM outbox WHERE topic = $1 AND key = $2', [topic, key]);
  if (!r) return undefined;
  return {
    attempts: Number(r.attempts),
    done: r.done_at !== null,
    refusal: r.refusal,
    lastError: r.last_error,
    nextAttemptAt: Number(r.next_attempt_at),
  };
}

/** Delivers one entry; what it returns is kept as the receiver's answer (JSON, may be undefined). */
export type Deliver<P = unknown> = (entry: OutboxEntry<P>) => Promise<unknown>;

/**
 * Delivers several entries of one topic to one receiver in one message. It answers per entry, in
 * order: `{ ok }` (delivered; kept as that entry's answer) or `{ error }` (that entry's own
 * refusal or failure, judged by `isFinal` like a single delivery's). Throwing means the message as
 * a whole was not taken; its entries are then delivered one by one.
 */
export type DeliverMany<P = unknown> = (entries: OutboxEntry<P>[]) => Promise<Array<{ ok: unknown } | { error: unknown }>>;

/** How a topic's entries travel many to a message: to whom each goes, and how a batch is sent. */
export interface BatchDelivery<P = unknown> {
  /** The receiver an entry goes to: only entries of one receiver share a message. */
  receiverOf: (payload: P) => string;
  deliver: DeliverMany<P>;
  /** Most entries in one message. */
  max: number;
}

/** The part of a pino logger the dispatcher uses (Fastify's `app.log` is one). */
export interface OutboxLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OutboxDispatcherOptions {
  db: Db;
  clock: Clock;
  /** The receiver of each topic this dispatcher delivers. */
  topics: ReadonlyMap<string, Deliver>;
  /** Topics whose receivers also take many entries in one message (dispatchMany); each is in `topics` too. */
  batches?: ReadonlyMap<string, BatchDelivery>;
  /** Whether a failure is the receiver's final word (never will succeed): it ends the entry. Default: none is. */
  isFinal?: (e: unknown) => boolean;
  logger?: OutboxLogger;
  /** What each log line about an entry also says (say, the transaction it is about). */
  logContext?: (entry: OutboxEntry) => object;
  backoff?: BackoffOptions;
  /**
   * How long a claimed entry stays reserved for this process. It must comfortably exceed one
   * delivery (a receiver's timeout): once it lapses another process may deliver the entry too.
   * It is also how long the entries of a process killed mid-round wait before another (or the
   * restarted one) delivers them — a shop's records must still reach its acquirer before the
   * clearing deadline. Default 60 s: six times the 10 s timeout of every receiver we call, and
   * a round hands back what it has not started by half the lease.
   */
  leaseMs?: number;
  /** Most entries claimed per round. Default 100. */
  batchSize?: number;
}

export interface DispatchResult {
  delivered: number;
  failed: number;
  /** Ended by a terminal refusal. */
  refused: number;
  /** Claimed but handed back untried (their topic failed earlier in the round, or the lease ran short). */
  released: number;
}

interface OutboxRow<P = unknown> {
  topic: string;
  key: string;
  payload: P;
  attempts: number;
}

interface ClaimedRow extends OutboxRow {
  /** next_attempt_at before the claim, to hand the entry back unchanged if it is not tried. */
  due: bigint | number;
}

export class OutboxDispatcher {
  private readonly db: Db;
  private readonly clock: Clock;
  private readonly topics: ReadonlyMap<string, Deliver>;
  private readonly batches: ReadonlyMap<string, BatchDelivery>;
  private readonly isFinal: (e: unknown) => boolean;
  private readonly logger: OutboxLogger | undefined;
  private readonly logContext: (entry: OutboxEntry) => object;
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

  constructor(options: OutboxDispatcherOptions) {
    this.db = options.db;
    this.clock = options.clock;
    this.topics = options.topics;
    this.batches = options.batches ?? new Map();
    for (const [topic, batch] of this.batches) {
      if (!this.topics.has(topic)) throw new ObolError('INTERNAL', `outbox topic ${topic} is batched but has no single receiver`);
      if (!Number.isInteger(batch.max) || batch.max < 1) throw new ObolError('INTERNAL', 'an outbox batch holds at least one entry');
    }
    this.isFinal = options.isFinal ?? (() => false);
    this.logger = options.logger;
    this.logContext = options.logContext ?? (() => ({}));
    this.backoff = options.backoff ?? {};
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.batchSize = options.batchSize ?? 100;
    if (!(this.leaseMs > 0) || !Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new ObolError('INTERNAL', 'an outbox dispatcher needs a positive leaseMs and batchSize');
    }
    for (const topic of this.topics.keys()) checkTopic(topic);
  }

  /**
   * Deliver every entry of our topics that is due now. Calls while a round runs queue one more
   * round after it (so whatever became due before the call is tried), and share it. Per-entry
   * failures are recorded in the outbox, not thrown; a failing database throws.
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

  /**
   * Deliver one entry now if it is due (just written, say), outside the rounds: what the work's
   * caller waits for. An entry another process holds, or one not yet due, is left alone.
   */
  async dispatchOne(topic: string, key: string): Promise<'delivered' | 'failed' | 'refused' | 'not-due'> {
    const deliver = this.topics.get(topic);
    if (!deliver) throw new ObolError('INTERNAL', `no receiver for outbox topic ${topic}`);
    const now = this.clock.now();
    const leaseUntil = now + this.leaseMs;
    const [row] = await this.db.query<ClaimedRow>(
      `UPDATE outbox SET next_attempt_at = $4
        WHERE topic = $1 AND key = $2 AND done_at IS NULL AND next_attempt_at <= $3
       RETURNING topic, key, payload, attempts, 0 AS due`,
      [topic, key, now, leaseUntil],
    );
    if (!row) return 'not-due';
    return this.deliverOne(deliver, row, leaseUntil);
  }

  /**
   * Deliver several just-written entries of a batched topic now, many to a message per receiver
   * (`batches`): what dispatchOne does for one, with one claim, one message per receiver and
   * `max` entries, and one write for all that were delivered. Each entry's outcome is its own: an
   * item the receiver refuses for good ends alone, one that failed is retried alone. When a
   * message as a whole fails (the receiver cannot be reached, or does not take batches), its
   * entries are delivered one by one at once, as dispatchOne would; after the first of those
   * that fails, the rest are handed back for the next round. Entries not due (held by another
   * process, or waiting for a retry) are left alone and reported 'not-due'.
   */
  async dispatchMany(topic: string, keys: readonly string[]): Promise<Map<string, 'delivered' | 'failed' | 'refused' | 'not-due'>> {
    const deliver = this.topics.get(topic);
    const batch = this.batches.get(topic);
    if (!deliver || !batch) throw new ObolError('INTERNAL', `no batch receiver for outbox topic ${topic}`);
    const outcomes = new Map<string, 'delivered' | 'failed' | 'refused' | 'not-due'>(keys.map((k) => [k, 'not-due']));
    if (keys.length === 0) return outcomes;
    const now = this.clock.now();
    const leaseUntil = now + this.leaseMs;
    const rows = await this.db.query<ClaimedRow>(
      `UPDATE outbox SET next_attempt_at = $4
        WHERE topic = $1 AND key = ANY($2::text[]) AND done_at IS NULL AND next_attempt_at <= $3
       RETURNING topic, key, payload, attempts, $3::bigint AS due`,
      [topic, [...new Set(keys)], now, leaseUntil],
    );
    const byReceiver = new Map<string, ClaimedRow[]>();
    for (const row of rows) {
      const receiver = batch.receiverOf(row.payload);
      const list = byReceiver.get(receiver) ?? [];
      list.push(row);
      byReceiver.set(receiver, list);
    }
    await Promise.all(
      [...byReceiver.values()].map(async (list) => {
        for (let i = 0; i < list.length; i += batch.max) {
          const part = list.slice(i, i + batch.max);
          for (const [key, outcome] of await this.deliverPart(deliver, batch, part, leaseUntil)) outcomes.set(key, outcome);
        }
      }),
    );
    return outcomes;
  }

  /** One message of claimed entries to one receiver, and each entry's outcome recorded. */
  private async deliverPart(
    deliver: Deliver,
    batch: BatchDelivery,
    rows: ClaimedRow[],
    leaseUntil: number,
  ): Promise<Map<string, 'delivered' | 'failed' | 'refused'>> {
    const outcomes = new Map<string, 'delivered' | 'failed' | 'refused'>();
    const entries = rows.map((row) => ({ topic: row.topic, key: row.key, payload: row.payload, attempts: Number(row.attempts) }));
    let answers: Array<{ ok: unknown } | { error: unknown }>;
    try {
      answers = await batch.deliver(entries);
      if (!Array.isArray(answers) || answers.length !== rows.length) {
        throw new ObolError('MALFORMED', `the receiver answered ${Array.isArray(answers) ? answers.length : 'no list of'} results for ${rows.length} entries`);
      }
    } catch (e) {
      // The message as a whole was not taken: nothing is known of any entry. Each goes on its own.
      this.logger?.warn({ topic: rows[0]?.topic, entries: rows.length, error: errorText(e) }, 'a batch was not taken; delivering its entries one by one');
      let failed = false;
      for (const row of rows) {
        if (failed) {
          await this.release(row, leaseUntil);
          outcomes.set(row.key, 'failed');
          continue;
        }
        const outcome = await this.deliverOne(deliver, row, leaseUntil);
        outcomes.set(row.key, outcome);
        failed = outcome === 'failed';
      }
      return outcomes;
    }
    const delivered: { row: ClaimedRow; answer: unknown }[] = [];
    for (const [i, row] of rows.entries()) {
      const answer = answers[i]!;
      const entry = entries[i]!;
      if (answer && typeof answer === 'object' && 'ok' in answer) {
        delivered.push({ row, answer: answer.ok });
        continue;
      }
      const e = answer && typeof answer === 'object' && 'error' in answer ? answer.error : new ObolError('MALFORMED', 'the receiver gave this entry no result');
      const log = { topic: row.topic, key: row.key, attempt: entry.attempts + 1, ...this.logContext(entry) };
      outcomes.set(row.key, this.isFinal(e) ? await this.refuse(row, e, log) : await this.recordFailure(row, e, leaseUntil, log));
    }
    if (delivered.length > 0) {
      try {
        // Whoever holds the leases now, the receiver has these: marked done regardless, in one statement.
        await this.db.query(
          `UPDATE outbox o SET attempts = o.attempts + 1, done_at = $2, last_error = NULL, answer = v.answer::jsonb
             FROM unnest($3::text[], $4::text[]) AS v(key, answer)
            WHERE o.topic = $1 AND o.key = v.key AND o.done_at IS NULL`,
          [
            rows[0]!.topic,
            this.clock.now(),
            delivered.map((d) => d.row.key),
            delivered.map((d) => (d.answer === undefined ? null : JSON.stringify(d.answer))),
          ],
        );
      } catch (dbError) {
        // Delivered but not marked: delivered again after the lease, and the receiver drops the repeat.
        this.logger?.error({ topic: rows[0]!.topic, entries: delivered.length, err: dbError }, 'delivered but not marked done');
      }
      for (const d of delivered) {
        outcomes.set(d.row.key, 'delivered');
        this.logger?.info({ topic: d.row.topic, key: d.row.key, attempt: Number(d.row.attempts) + 1, batch: rows.length, ...this.logContext(entries[rows.indexOf(d.row)]!) }, 'delivered');
      }
    }
    return outcomes;
  }

  /** Run rounds every `intervalMs` (the first one now) until stop(). */
  start(intervalMs: number): void {
    if (this.started) return;
    if (!(intervalMs > 0)) throw new ObolError('INTERNAL', 'outbox dispatch interval must be positive');
    this.started = true;
    const generation = ++this.generation;
    const tick = async () => {
      try {
        await this.dispatchDue();
      } catch (e) {
        this.logger?.error({ err: e }, 'outbox dispatch round failed');
      }
      if (generation !== this.generation) return;
      // Scheduled after the round ends, so a slow round delays the next instead of piling up.
      this.timer = setTimeout(tick, intervalMs);
      // Entries are durable; the timer alone should not keep the process alive.
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

  private startRound(): Promise<DispatchResult> {
    const round = this.round().finally(() => {
      if (this.running === round) this.running = undefined;
    });
    this.running = round;
    return round;
  }

  private async round(): Promise<DispatchResult> {
    const result: DispatchResult = { delivered: 0, failed: 0, refused: 0, released: 0 };
    if (this.topics.size === 0) return result;
    const now = this.clock.now();
    const leaseUntil = now + this.leaseMs;
    const rows = await this.claim(now, leaseUntil);
    if (rows.length === 0) return result;

    // One queue per topic, in due order: a slow receiver does not hold up the others.
    const byTopic = new Map<string, ClaimedRow[]>();
    for (const row of rows) {
      const list = byTopic.get(row.topic) ?? [];
      list.push(row);
      byTopic.set(row.topic, list);
    }
    await Promise.all(
      [...byTopic].map(async ([topic, list]) => {
        const deliver = this.topics.get(topic)!;
        let topicFailed = false;
        for (const row of list) {
          // After a failure the receiver is probably down: hand the rest back rather than wait
          // for each to fail in turn (they are tried next round). Likewise when half the lease
          // is gone, so no delivery starts that could outlive it and be duplicated elsewhere.
          if (topicFailed || this.clock.now() >= now + this.leaseMs / 2) {
            if (await this.release(row, leaseUntil)) result.released++;
            continue;
          }
          const outcome = await this.deliverOne(deliver, row, leaseUntil);
          if (outcome === 'delivered') result.delivered++;
          else if (outcome === 'refused') result.refused++;
          else {
            result.failed++;
            topicFailed = true;
          }
        }
      }),
    );
    return result;
  }

  /**
   * Take up to batchSize due entries of our topics by moving them to the end of a lease. The
   * outer `next_attempt_at <= now` is what makes the claim exclusive: an entry another process
   * claimed after our subquery looked no longer matches once we get its lock.
   */
  private claim(now: number, leaseUntil: number): Promise<ClaimedRow[]> {
    return this.db.query<ClaimedRow>(
      `UPDATE outbox AS o
          SET next_attempt_at = $2
         FROM (SELECT topic, key, next_attempt_at AS due
                 FROM outbox
                WHERE done_at IS NULL AND next_attempt_at <= $1 AND topic = ANY($3::text[])
                ORDER BY next_attempt_at, enqueued_at
                LIMIT $4) AS d
        WHERE o.topic = d.topic AND o.key = d.key
          AND o.done_at IS NULL AND o.next_attempt_at <= $1
       RETURNING o.topic, o.key, o.payload, o.attempts, d.due`,
      [now, leaseUntil, [...this.topics.keys()], this.batchSize],
    );
  }

  /** Deliver one claimed entry and record the outcome. */
  private async deliverOne(deliver: Deliver, row: ClaimedRow, leaseUntil: number): Promise<'delivered' | 'failed' | 'refused'> {
    const entry = { topic: row.topic, key: row.key, payload: row.payload, attempts: Number(row.attempts) };
    const log = { topic: row.topic, key: row.key, attempt: entry.attempts + 1, ...this.logContext(entry) };
    let answer: unknown;
    try {
      answer = await deliver(entry);
    } catch (e) {
      if (this.isFinal(e)) return this.refuse(row, e, log);
      return this.recordFailure(row, e, leaseUntil, log);
    }
    try {
      // Whoever holds the lease now, the receiver has it: mark it done regardless.
      await this.db.query(
        `UPDATE outbox SET attempts = attempts + 1, done_at = $3, last_error = NULL, answer = $4::text::jsonb
          WHERE topic = $1 AND key = $2 AND done_at IS NULL`,
        [row.topic, row.key, this.clock.now(), answer === undefined ? null : JSON.stringify(answer)],
      );
    } catch (dbError) {
      // Delivered but not marked: it is delivered again after the lease, and the receiver drops
      // the repeat by its key.
      this.logger?.error({ ...log, err: dbError }, 'delivered but not marked done');
      return 'delivered';
    }
    this.logger?.info(log, 'delivered');
    return 'delivered';
  }

  /** A failed delivery: tried again after the back-off. */
  private async recordFailure(row: ClaimedRow, e: unknown, leaseUntil: number, log: object): Promise<'failed'> {
    const failures = Number(row.attempts) + 1;
    const next = this.clock.now() + backoffDelay(failures, this.backoff);
    const message = errorText(e);
    try {
      // Only while our lease holds: if it lapsed and another process took the entry over, its
      // outcome is the one that counts.
      await this.db.query(
        `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4
          WHERE topic = $1 AND key = $2 AND done_at IS NULL AND next_attempt_at = $5`,
        [row.topic, row.key, next, message, leaseUntil],
      );
    } catch (dbError) {
      // The entry stays leased and is tried again when the lease ends.
      this.logger?.error({ ...log, err: dbError }, 'could not record a failed delivery');
    }
    this.logger?.warn({ ...log, retryAt: next, error: message }, 'delivery failed; will retry');
    return 'failed';
  }

  /** A terminal refusal ends the entry: kept with it, logged, never sent again. */
  private async refuse(row: ClaimedRow, e: unknown, log: object): Promise<'refused'> {
    const refusal = e instanceof ObolError ? e.toJSON() : { name: 'INTERNAL', message: errorText(e) };
    await this.db
      .query(
        `UPDATE outbox SET attempts = attempts + 1, done_at = $3, refusal = $4::text::jsonb, last_error = $5
          WHERE topic = $1 AND key = $2 AND done_at IS NULL`,
        [row.topic, row.key, this.clock.now(), JSON.stringify(refusal), errorText(e)],
      )
      .catch((dbError: unknown) => this.logger?.error({ ...log, err: dbError }, 'could not record a refusal; it will be sent again'));
    this.logger?.error({ ...log, refusal }, 'the receiver refused this for good; not sending it again');
    return 'refused';
  }

  /** Hand a claimed, untried entry back as it was, if we still hold it. */
  private async release(row: ClaimedRow, leaseUntil: number): Promise<boolean> {
    try {
      const rows = await this.db.query(
        `UPDATE outbox SET next_attempt_at = $3
          WHERE topic = $1 AND key = $2 AND done_at IS NULL AND next_attempt_at = $4
         RETURNING key`,
        [row.topic, row.key, Number(row.due), leaseUntil],
      );
      return rows.length > 0;
    } catch (e) {
      // Not fatal: the entry comes back by itself when the lease ends.
      this.logger?.error({ topic: row.topic, key: row.key, err: e }, 'could not release an outbox entry');
      return false;
    }
  }
}

function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || !TOPIC_PATTERN.test(topic)) {
    throw new ObolError('INTERNAL', `outbox topic ${JSON.stringify(topic)} is not valid (lower case letters, digits, "_.:-", at most 80)`);
  }
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT - 1)}…` : text;
}
