import { ObolError } from '@obol/protocol/errors';
import { Agent, request } from 'undici';
import { errorFromBody } from './errors.ts';

/**
 * JSON over HTTP between services, on undici keep-alive connections (measured about 4× faster
 * than the built-in fetch between our services). Errors come back as ObolErrors: the peer's
 * catalogue error, UNAVAILABLE when it cannot be reached, TIMEOUT when it does not answer.
 */
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

export interface JsonClientOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export async function getJson(url: string, options: JsonClientOptions = {}): Promise<unknown> {
  return call('GET', url, undefined, options);
}

export async function postJson(url: string, body: unknown, options: JsonClientOptions = {}): Promise<unknown> {
  return call('POST', url, body, options);
}

async function call(method: 'GET' | 'POST', url: string, body: unknown, options: JsonClientOptions): Promise<unknown> {
  const timeout = options.timeoutMs ?? 10_000;
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, {
      method,
      dispatcher: agent,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (code.includes('TIMEOUT')) throw new ObolError('TIMEOUT', `${url} did not answer in time`);
    throw new ObolError('UNAVAILABLE', `${url} cannot be reached (${code || (e as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = await res.body.json();
  } catch {
    parsed = undefined;
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return parsed;
  throw errorFromBody(res.statusCode, parsed);
}

/** The protocol's `Http` seam over undici, for the Node customer agent (tests, CLI). */
export const undiciHttp = {
  get: (url: string, headers?: Record<string, string>) => getJson(url, headers ? { headers } : {}),
  post: (url: string, body: unknown, headers?: Record<string, string>) => postJson(url, body, headers ? { headers } : {}),
};
