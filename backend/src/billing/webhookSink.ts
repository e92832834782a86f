/**
 * A billing sink that POSTs each record to an HTTP endpoint of the operator's billing system.
 *
 * The body is the signed record as JSON. Two headers help the receiver:
 * - `Obol-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the scheme
 *   Stripe uses): proves the request came from this operator with a shared secret, which a plain
 *   HTTP endpoint can check without knowing Obol's PKI, and the timestamp bounds replays.
 *   `verifyWebhookSignature` is the receiver's half.
 * - `Obol-Record-Id`: delivery is at least once, so the receiver deduplicates on this id.
 *
 * Only a 2xx answer counts as delivered. Redirects are not followed: a billing record is not sent
 * somewhere the operator did not configure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { Agent, request } from 'undici';
import { type BillingRecord, type BillingSink, checkBillingRecord, checkSinkName } from './record.ts';

export const SIGNATURE_HEADER = 'Obol-Signature';
export const RECORD_ID_HEADER = 'Obol-Record-Id';
/** How far a receiver should let the signature time be from its own clock, by default. */
export const DEFAULT_TOLERANCE_SEC = 300;

export interface WebhookSinkOptions {
  url: string;
  /** Shared with the receiver; used as the HMAC key (UTF-8). */
  secret: string;
  /** Longest a delivery may take, connecting included. Default 10 s. */
  timeoutMs?: number;
  /** Sink name in the outbox. Default 'webhook'. */
  name?: string;
  /** Source of the signature timestamp. Default: the system clock. */
  clock?: Clock;
}

export class WebhookSink implements BillingSink {
  readonly name: string;
  private readonly url: URL;
  private readonly secret: string;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  /** Our own connection pool: keep-alive across deliveries, and close() releases it. */
  private readonly agent: Agent;

  constructor(options: WebhookSinkOptions) {
    this.name = options.name ?? 'webhook';
    checkSinkName(this.name);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ObolError('INTERNAL', `billing webhook URL is not a URL: ${JSON.stringify(options.url)}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ObolError('INTERNAL', `billing webhook URL must be http or https, not ${url.protocol}`);
    }
    if (!options.secret) throw new ObolError('INTERNAL', 'billing webhook secret is empty');
    this.url = url;
    this.secret = options.secret;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.agent = new Agent({
      connect: { timeout: this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async deliver(record: BillingRecord): Promise<void> {
    checkBillingRecord(record);
    const body = JSON.stringify(record);
    const t = Math.floor(this.clock.now() / 1000);
    // Where, without query string or credentials (this text ends up in logs and last_error).
    const where = `${this.url.origin}${this.url.pathname}`;
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(this.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWebhookPayload(this.secret, body, t),
          [RECORD_ID_HEADER]: record.body.recordId,
        },
        body,
        // The agent's timeouts bound each phase; this bounds the whole request.
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw deliveryError(e, where, this.timeoutMs);
    }
    const { statusCode } = response;
    if (statusCode >= 200 && statusCode < 300) {
      // Read the answer to the end so the connection goes back to the pool for the next record.
      await response.body.dump().catch(() => {});
      return;
    }
    const excerpt = await readExcerpt(response.body, 200);
    throw new ObolError('UNAVAILABLE', `billing webhook ${where} answered ${statusCode}${excerpt ? `: ${excerpt}` : ''}`);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** The `Obol-Signature` header value for a body sent at `t` (unix seconds). */
export function signWebhookPayload(secret: string, body: string | Uint8Array, t: number): string {
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * For receivers: does `header` (the `Obol-Signature` value) sign exactly `body` (the raw request
 * body, as received, before any JSON parsing) with `secret`, at a time within `toleranceSec` of
 * `nowSec`? Several `v1=` entries are allowed (a sender rotating secrets); one match suffices.
 * Comparison is constant-time. Receivers must still deduplicate on the record id: a delivery
 * can be repeated within the tolerance.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined | null,
  body: string | Uint8Array,
  nowSec: number,
  toleranceSec: number = DEFAULT_TOLERANCE_SEC,
): boolean {
  if (!secret || typeof header !== 'string' || header.length > 1024) return false;
  let t: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^[0-9]{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (t === undefined || signatures.length === 0) return false;
  if (!(Math.abs(nowSec - t) <= toleranceSec)) return false;
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex');
  // Check every candidate, so the time taken does not tell which one matched.
  let ok = false;
  for (const s of signatures) ok = timingSafeEqual(s, expected) || ok;
  return ok;
}

function hmacHex(secret: string, t: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function deliveryError(e: unknown, where: string, timeoutMs: number): ObolError {
  const err = e as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
  const timedOut = err?.name === 'TimeoutError' || (typeof err?.code === 'string' && TIMEOUT_CODES.has(err.code));
  const out = timedOut
    ? new ObolError('TIMEOUT', `billing webhook ${where} did not answer within ${timeoutMs} ms`)
    : new ObolError('UNAVAILABLE', `billing webhook ${where} could not be reached: ${describe(e)}`);
  (out as Error & { cause?: unknown }).cause = e;
  return out;
}

/** The most useful words of a network error: undici wraps the socket error in `cause`. */
function describe(e: unknown): string {
  const err = e as { message?: unknown; code?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = err?.cause?.code ?? err?.code;
  const message = err?.cause?.message ?? err?.message;
  return [code, message].filter((x) => typeof x === 'string' && x !== '').join(' ') || String(e);
}

/** The start of an error answer, for last_error; the rest is discarded unread. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // An answer cut short still failed; what was read is enough.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .slice(0, limit)
    .replace(/[\r\n\t]+/g, ' ')
    .trim();
}
