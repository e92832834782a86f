import { ObolError } from './errors.ts';

/**
 * The one seam through which protocol logic talks to the network: JSON in, JSON out. The wallet
 * core never calls `fetch` itself; the service worker, the CLI and the Node tests each inject an
 * `Http` (tests the real client with faults injected in front of the real servers).
 *
 * Errors are ObolErrors, so callers decide on a code, never on transport details:
 * - a non-2xx answer whose body is `{ error: { code, name, message } }` throws that error
 *   (`ObolError.fromJSON`; unknown codes become INTERNAL);
 * - a non-2xx answer without such a body throws by status (401 UNAUTHORIZED, 502–504 UNAVAILABLE,
 *   otherwise INTERNAL);
 * - no answer at all (connection refused, DNS, reset) throws UNAVAILABLE, and no answer in time
 *   throws TIMEOUT: for both the request may or may not have arrived, which is why every message
 *   that commits to something carries an id and can be sent again.
 */
export interface Http {
  get(url: string, headers?: Record<string, string>): Promise<unknown>;
  post(url: string, body: unknown, headers?: Record<string, string>): Promise<unknown>;
}

export interface FetchHttpOptions {
  /** Give up on a request after this long (TIMEOUT). Default 15 s; 0 waits forever. */
  timeoutMs?: number;
}

type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * `Http` over the platform's `fetch` (browsers, service workers, Node 20). The function is always
 * called unbound, as `fetchFn(url, init)`: a browser `fetch` called as a method of another object
 * throws "Illegal invocation".
 */
export function fetchHttp(fetchFn?: FetchFn, options: FetchHttpOptions = {}): Http {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const doFetch: FetchFn = (input, init) => {
    const f = fetchFn ?? (globalThis as { fetch?: FetchFn }).fetch;
    if (!f) throw new ObolError('UNAVAILABLE', 'this runtime has no fetch');
    return f(input, init);
  };

  async function request(method: 'GET' | 'POST', url: string, body: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const init: RequestInit = {
      method,
      headers: { accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
    };
    if (method === 'POST') init.body = JSON.stringify(body ?? {});
    if (timeoutMs > 0 && typeof AbortSignal !== 'undefined' && 'timeout' in AbortSignal) init.signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await doFetch(url, init);
    } catch (e) {
      if (e instanceof ObolError) throw e;
      const name = (e as { name?: unknown } | null)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') throw new ObolError('TIMEOUT', `no answer from ${where(url)} within ${timeoutMs} ms`);
      throw new ObolError('UNAVAILABLE', `cannot reach ${where(url)}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      throw new ObolError('UNAVAILABLE', `the answer from ${where(url)} was cut off`);
    }
    let json: unknown;
    let parsed = false;
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
        parsed = true;
      } catch {
        parsed = false;
      }
    }
    if (!response.ok) throw errorFromAnswer(response.status, parsed ? json : undefined, url);
    if (text.trim() === '') return undefined;
    if (!parsed) throw new ObolError('MALFORMED', `the answer from ${where(url)} is not JSON`);
    return json;
  }

  return {
    get: (url, headers) => request('GET', url, undefined, headers),
    post: (url, body, headers) => request('POST', url, body, headers),
  };
}

/**
 * The one mapping from a non-2xx answer to the error catalogue, for every client (browser, CLI,
 * operators, merchant module): the catalogue error its body carries (unknown codes become
 * INTERNAL), or else by status — 401/403 UNAUTHORIZED, 408 TIMEOUT, 502–504 UNAVAILABLE (a proxy
 * or load balancer: the service was not reached), anything else INTERNAL (reached, but the
 * answer is not known: a stored message is kept for a resend).
 */
export function errorFromAnswer(status: number, body: unknown, url?: string): ObolError {
  const error = isRecord(body) ? body.error : undefined;
  if (isRecord(error) && typeof error.code === 'number') return ObolError.fromJSON(error);
  const who = url === undefined ? 'the server' : where(url);
  if (status === 401 || status === 403) return new ObolError('UNAUTHORIZED', `${who} refused the request (HTTP ${status})`);
  if (status === 502 || status === 503 || status === 504) return new ObolError('UNAVAILABLE', `${who} is unavailable (HTTP ${status})`);
  if (status === 408) return new ObolError('TIMEOUT', `${who} timed out (HTTP 408)`);
  return new ObolError('INTERNAL', `${who} answered HTTP ${status}`);
}

/** The origin and path of a URL for messages: never its query, which may hold a token. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the server';
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The bearer header of a logged-on wallet. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
