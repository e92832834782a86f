/**
 * A billing sink that POSTs each record to an HTTP endpoint of the operator's billing system.
 *
 * The body is the signed record as JSON, sent the Standard Webhooks way
 * (https://www.standardwebhooks.com/), so a billing system checks it with any Standard Webhooks
 * library or with `verifyWebhook` here, without knowing Obol's PKI:
 * - `webhook-id`: the record id. Delivery is at least once and every retry carries the same id,
 *   so the receiver deduplicates on it.
 * - `webhook-timestamp`: when this attempt was sent (unix seconds); it bounds replays.
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. The key is
 *   the secret: a `whsec_<base64>` secret (the standard's form) is the base64-decoded bytes, any
 *   other secret its UTF-8 bytes.
 *
 * Only a 2xx answer counts as delivered. Redirects are not followed: a billing record is not sent
 * somewhere the operator did not configure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { Agent, request } from 'undici';
import { type BillingRecord, type BillingSink, checkBillingRecord, checkSinkName } from './record.ts';

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';
/** How far a receiver should let the signature time be from its own clock, by default. */
export const DEFAULT_TOLERANCE_SEC = 300;

export interface WebhookSinkOptions {
  url: string;
  /** Shared with the receiver: `whsec_<base64>` (Standard Webhooks), or any other text used as UTF-8. */
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
          ...webhookHeaders(this.secret, record.body.recordId, t, body),
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

/** The three Standard Webhooks headers for `body`, sent as message `id` at `t` (unix seconds). */
export function webhookHeaders(secret: string, id: string, t: number, body: string | Uint8Array): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(t),
    [WEBHOOK_SIGNATURE_HEADER]: `v1,${hmacBase64(secret, id, String(t), body)}`,
  };
}

/** The headers a receiver got, by lower-case name (Node's `req.headers`, a fetch `Headers`, or a plain object). */
export type ReceivedHeaders = Headers | Record<string, string | string[] | undefined>;

/**
 * For receivers: do the Standard Webhooks headers sign exactly `body` (the raw request body, as
 * received, before any JSON parsing) with `secret`, at a time within `toleranceSec` of `nowSec`?
 * Several space-separated signatures are allowed (a sender rotating secrets); one match suffices,
 * and every candidate is compared in constant time. Returns the message id (the billing record
 * id, to deduplicate on: a delivery can be repeated) or undefined when it does not verify.
 */
export function verifyWebhook(
  secret: string,
  headers: ReceivedHeaders,
  body: string | Uint8Array,
  nowSec: number,
  toleranceSec: number = DEFAULT_TOLERANCE_SEC,
): string | undefined {
  const id = headerOf(headers, WEBHOOK_ID_HEADER);
  const timestamp = headerOf(headers, WEBHOOK_TIMESTAMP_HEADER);
  const signature = headerOf(headers, WEBHOOK_SIGNATURE_HEADER);
  if (!secret || id === undefined || timestamp === undefined || signature === undefined) return undefined;
  if (id.length === 0 || id.length > 256 || signature.length > 4096 || !/^[0-9]{1,12}$/.test(timestamp)) return undefined;
  if (!(Math.abs(nowSec - Number(timestamp)) <= toleranceSec)) return undefined;
  const expected = Buffer.from(hmacBase64(secret, id, timestamp, body), 'base64');
  let ok = false;
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    if (entry.slice(0, comma) !== 'v1') continue;
    const candidate = Buffer.from(entry.slice(comma + 1), 'base64');
    // Check every candidate, so the time taken does not tell which one matched.
    if (candidate.length === expected.length) ok = timingSafeEqual(candidate, expected) || ok;
  }
  return ok ? id : undefined;
}

function headerOf(headers: ReceivedHeaders, name: string): string | undefined {
  const value = typeof (headers as Headers).get === 'function' ? (headers as Headers).get(name) : (headers as Record<string, string | string[] | undefined>)[name];
  if (typeof value === 'string') return value;
  return undefined; // missing, or repeated (an array): not a delivery we sent
}

/** The HMAC key of a secret: Standard Webhooks' `whsec_<base64>` form decoded, any other text as UTF-8. */
function secretKey(secret: string): Buffer {
  if (secret.startsWith('whsec_')) {
    const decoded = Buffer.from(secret.slice('whsec_'.length), 'base64');
    if (decoded.length > 0) return decoded;
  }
  return Buffer.from(secret, 'utf8');
}

function hmacBase64(secret: string, id: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.`).update(body).digest('base64');
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
