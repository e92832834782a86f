/**
 * How the merchant agent talks to its operator: one JSON POST. Injected so tests and other
 * transports can replace it; the default is undici with a keep-alive connection pool.
 */
import { ObolError } from '@obol/protocol/errors';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { errorFromBody } from '../http/errors.ts';

/**
 * POST `body` as JSON to `url` and resolve with the parsed JSON answer when the status is 2xx.
 * Anything else must throw (an ObolError when the peer answered with one).
 */
export type HttpPost = (url: string, body: unknown) => Promise<unknown>;

export interface UndiciPost {
  post: HttpPost;
  close(): Promise<void>;
}

/** Largest answer read from the operator; a RecordResponse with a clearing is a few KiB. */
const MAX_RESPONSE_BYTES = 256 * 1024;

export function undiciPost(options: { timeoutMs?: number; ca?: readonly string[] } = {}): UndiciPost {
  const timeout = options.timeoutMs ?? 10_000;
  const dispatcher = new Agent({
    keepAliveTimeout: 30_000,
    // `ca`: the operator's chain (PEM) when it serves TLS under a certificate from its own PKI,
    // trusted besides Node's public roots.
    connect: { timeout, ...(options.ca?.length ? { ca: [...rootCertificates, ...options.ca] } : {}) },
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  return {
    async post(url, body) {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        dispatcher,
      });
      const text = await res.body.text();
      if (text.length > MAX_RESPONSE_BYTES) throw new ObolError('MALFORMED', `the answer from ${url} is too large`);
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) throw errorFromBody(res.statusCode, json, url);
      return json;
    },
    close: () => dispatcher.close(),
  };
}
