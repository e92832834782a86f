import { canonicalJson } from '@obol/protocol/canonicalJson';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { sha256, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../store/db.ts';
import { httpStatusOf } from './errors.ts';

/**
 * `Idempotency-Key` on administration calls (issue 15 item 6, after the IETF draft
 * "The Idempotency-Key HTTP Header Field" and Stripe's practice): a client that did not hear the
 * answer to a call sends it again under the same key and gets the first answer, with no second
 * effect (a second funding, a second product). The same key with another body is a CONFLICT (409);
 * the same key while the first request is still being handled is a CONFLICT too (try again).
 * Keys are kept per route in the `idempotency_keys` table (operator migration 013, merchant 007)
 * for KEY_RETENTION_MS. A call without the header is handled as before.
 */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on a replayed answer, so a client can tell the call did nothing this time. */
export const IDEMPOTENT_REPLAY_HEADER = 'idempotent-replayed';
/** How long a key is remembered: a day, like Stripe's. */
export const KEY_RETENTION_MS = 24 * 3_600_000;
/**
 * A key whose request has had no answer for this long belongs to a request that died (a crash
 * between taking the key and storing its answer): a new request may take it over.
 */
const ABANDONED_AFTER_MS = 60_000;
/** Visible ASCII, at most 255 characters (a UUID is the usual key). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Errors that another try may not repeat: the key is released instead of keeping them. */
const PASSING = new Set(['UNAVAILABLE', 'TIMEOUT', 'INTERNAL', 'CONFLICT', 'RATE_LIMITED']);

type StoredAnswer = { ok: unknown } | { error: ReturnType<ObolError['toJSON']> };

export class IdempotencyKeys {
  constructor(
    private readonly db: Queryable,
    private readonly clock: Clock,
  ) {}

  /**
   * Handle one call: without the header, `handle()`; with it, the stored answer to a request
   * already handled under this key (same route and body), or `handle()` once with its answer (or
   * its catalogue error) stored. Runs after the caller's authorization: a stranger cannot probe keys.
   */
  async run<T>(request: FastifyRequest, reply: FastifyReply, handle: () => Promise<T>): Promise<T> {
    const key = keyOf(request.headers[IDEMPOTENCY_HEADER]);
    if (key === undefined) return handle();
    const scope = `${request.method} ${request.routeOptions.url ?? request.url}`;
    const digest = toBase64Url(await sha256(utf8.encode(canonicalJson(request.body ?? null))));
    const now = this.clock.now();
    await this.db.query('DELETE FROM idempotency_keys WHERE created_at < $1', [now - KEY_RETENTION_MS]);
    const taken = await this.db.query(
      `INSERT INTO idempotency_keys (scope, key, request_digest, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (scope, key) DO NOTHING RETURNING key`,
      [scope, key, digest, now],
    );
    if (taken.length === 0) {
      const [row] = await this.db.query<{ request_digest: string; answer: StoredAnswer | null }>(
        'SELECT request_digest, answer FROM idempotency_keys WHERE scope = $1 AND key = $2',
        [scope, key],
      );
      if (row && row.request_digest !== digest) {
        throw new ObolError('CONFLICT', `Idempotency-Key ${key} was already used for another request to ${scope}`);
      }
      if (row?.answer) {
        void reply.header(IDEMPOTENT_REPLAY_HEADER, 'true');
        if ('error' in row.answer) throw ObolError.fromJSON(row.answer.error);
        return row.answer.ok as T;
      }
      // Still running — or abandoned by a request that died: take it over only then.
      const takenOver = await this.db.query(
        `UPDATE idempotency_keys SET created_at = $3 WHERE scope = $1 AND key = $2 AND answer IS NULL AND created_at < $4 RETURNING key`,
        [scope, key, now, now - ABANDONED_AFTER_MS],
      );
      if (takenOver.length === 0) throw new ObolError('CONFLICT', `a request under Idempotency-Key ${key} is still being handled: try again shortly`);
    }
    let result: T;
    try {
      result = await handle();
    } catch (e) {
      if (e instanceof ObolError && !PASSING.has(e.name)) {
        await this.store(scope, key, { error: e.toJSON() }, httpStatusOf(e));
      } else {
        await this.db.query('DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND answer IS NULL', [scope, key]);
      }
      throw e;
    }
    await this.store(scope, key, { ok: result }, 200);
    return result;
  }

  private async store(scope: string, key: string, answer: StoredAnswer, status: number): Promise<void> {
    await this.db.query('UPDATE idempotency_keys SET answer = $3::text::jsonb, status = $4 WHERE scope = $1 AND key = $2', [
      scope,
      key,
      JSON.stringify(answer),
      status,
    ]);
  }
}

function keyOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
    throw new ObolError('MALFORMED', 'Idempotency-Key must be one value of 1 to 255 visible ASCII characters');
  }
  return header;
}
