import { canonicalJson } from '@obol/protocol/canonicalJson';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { sha256, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import { serverCrypto } from '../crypto/nodeCrypto.ts';
import type { Queryable } from '../store/db.ts';

/**
 * Idempotency by message id: the answer to a message is stored with its id, so the same message
 * again gets the same answer and has no second effect; another message under a used id is a
 * CONFLICT. Errors are stored too, so a replay of a refused message is refused the same way.
 */
export type StoredAnswer = { ok: unknown } | { error: ReturnType<ObolError['toJSON']> };

export async function digestOf(message: unknown): Promise<string> {
  return toBase64Url(await sha256(utf8.encode(canonicalJson(message)), serverCrypto));
}

export async function previousAnswer(db: Queryable, msgId: string, digest: string): Promise<StoredAnswer | undefined> {
  const [row] = await db.query<{ digest: string; response: StoredAnswer }>(
    'SELECT digest, response FROM handled_messages WHERE msg_id = $1',
    [msgId],
  );
  return answerOf(row, msgId, digest);
}

/**
 * The stored answer in a `handled_messages` row a caller read itself (joined with what its
 * handler needs, to save a round trip); null columns (a LEFT JOIN that found nothing) mean none.
 * The same digest check as `previousAnswer`.
 */
export function answerOf(
  row: { digest: string | null; response: StoredAnswer | null } | undefined,
  msgId: string,
  digest: string,
): StoredAnswer | undefined {
  if (!row || row.digest === null || row.response === null) return undefined;
  if (row.digest !== digest) throw new ObolError('CONFLICT', `message id ${msgId} was already used for another message`);
  return row.response;
}

/**
 * A FROM clause giving one row: the `handled_messages` columns `digest` and `response` for the
 * message id in parameter `msgIdParam` (null when unseen), to be LEFT JOINed with what the handler
 * reads anyway, so the replay check costs no round trip of its own.
 */
export function handledJoin(msgIdParam: string): string {
  return `(SELECT 1 AS one) AS one_row LEFT JOIN handled_messages ON handled_messages.msg_id = ${msgIdParam}`;
}

export async function storeAnswer(
  db: Queryable,
  msgId: string,
  type: string,
  digest: string,
  answer: StoredAnswer,
  now: number,
): Promise<void> {
  await db.query(
    `INSERT INTO handled_messages (msg_id, type, digest, response, created_at) VALUES ($1, $2, $3, $4::text::jsonb, $5)
     ON CONFLICT (msg_id) DO NOTHING`,
    [msgId, type, digest, JSON.stringify(answer), now],
  );
}

/**
 * `storeAnswer` in the same statement as `guardSql` (a data-modifying statement ending in
 * RETURNING, on parameters $1…$n), and only when the guard returned a row: the effect and its
 * answer commit together in one round trip, with no BEGIN and COMMIT around them. Says whether the
 * guard returned a row.
 */
export async function storeAnswerIf(
  db: Queryable,
  guardSql: string,
  guardParams: unknown[],
  msgId: string,
  type: string,
  digest: string,
  answer: StoredAnswer,
  now: number,
): Promise<boolean> {
  const p = (i: number) => `$${guardParams.length + i}`;
  const rows = await db.query(
    `WITH guard AS (${guardSql}),
     stored AS (
       INSERT INTO handled_messages (msg_id, type, digest, response, created_at)
       SELECT ${p(1)}::text, ${p(2)}::text, ${p(3)}::text, ${p(4)}::text::jsonb, ${p(5)}::bigint FROM guard LIMIT 1
       ON CONFLICT (msg_id) DO NOTHING)
     SELECT 1 AS stored FROM guard`,
    [...guardParams, msgId, type, digest, JSON.stringify(answer), now],
  );
  return rows.length > 0;
}

/** Replay a stored answer: the same value, or the same error. */
export function replayAnswer(answer: StoredAnswer): unknown {
  if ('error' in answer) throw ObolError.fromJSON(answer.error);
  return answer.ok;
}

export interface OnceOptions {
  /** The message's `digestOf`, when the caller has already computed it. */
  digest?: string;
  /**
   * `fn` stores its own answer (`storeAnswer`/`storeAnswerIf`, with the commit that makes its
   * effect), so an answer is not stored a second time here. Refusals are still stored here.
   */
  storesItsAnswer?: boolean;
  /**
   * The caller has already looked the message id up (`answerOf` on a row it read with
   * `handledJoin`): this is what it found, and `once` does not read it again.
   */
  lookedUp?: { answer: StoredAnswer | undefined };
}

/**
 * Handle a message once: a stored answer is replayed; otherwise `fn` runs and its answer (or its
 * catalogue error) is stored. `fn` must itself be safe to run twice concurrently (its database
 * writes are keyed by the message id), which is what makes the race between two copies harmless.
 */
export async function once<T>(
  db: Queryable,
  msgId: string,
  type: string,
  message: unknown,
  clock: Clock,
  fn: () => Promise<T>,
  options: OnceOptions = {},
): Promise<T> {
  const digest = options.digest ?? (await digestOf(message));
  const previous = options.lookedUp ? options.lookedUp.answer : await previousAnswer(db, msgId, digest);
  if (previous) return replayAnswer(previous) as T;
  try {
    const result = await fn();
    if (!options.storesItsAnswer) await storeAnswer(db, msgId, type, digest, { ok: result }, clock.now());
    return result;
  } catch (e) {
    if (e instanceof ObolError && !['UNAVAILABLE', 'TIMEOUT', 'INTERNAL', 'CONFLICT'].includes(e.name)) {
      await storeAnswer(db, msgId, type, digest, { error: e.toJSON() }, clock.now());
    }
    throw e;
  }
}
