/**
 * How the merchant agent talks to its operator: one JSON POST. Injected so tests and other
 * transports can replace it; the default is the backend's one HTTP client (undici keep-alive,
 * one mapping of answers to the error catalogue) with a pool of its own, so a shop can trust its
 * operator's TLS chain.
 */
import { jsonClient } from '../http/client.ts';

/**
 * POST `body` as JSON to `url` and resolve with the parsed JSON answer when the status is 2xx.
 * Anything else must throw (an ObolError when the peer answered with one).
 */
export type HttpPost = (url: string, body: unknown) => Promise<unknown>;

export interface UndiciPost {
  post: HttpPost;
  close(): Promise<void>;
}

export function undiciPost(options: { timeoutMs?: number; ca?: readonly string[] } = {}): UndiciPost {
  const client = jsonClient(options);
  return { post: (url, body) => client.post(url, body), close: () => client.close() };
}
