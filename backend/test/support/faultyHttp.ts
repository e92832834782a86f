import { type ErrorName, ObolError } from '@obol/protocol/errors';
import type { Http } from '@obol/protocol/http';
import { undiciHttp } from '../../src/http/client.ts';

/**
 * One rule of a faulty network, for the next `times` calls whose URL ends with `path` (and, if
 * given, with this method). The peers behind it are the real servers: a fault changes what
 * travels between them and the wallet, never what they decide.
 */
export interface Fault {
  path: string;
  method?: 'GET' | 'POST';
  times: number;
  /** request: it never arrives (UNAVAILABLE); answer: the peer handled it, but its answer is lost. */
  lose?: 'request' | 'answer';
  /** The request never arrives and this refusal comes back instead (a refusal made on the way). */
  refuse?: ErrorName;
  /** The request's headers changed on the way (e.g. a bearer token garbled): the peer answers what it gets. */
  headers?: (headers: Record<string, string>) => Record<string, string>;
  /** The peer's real answer changed on the way (cut, swapped, re-signed by someone else). */
  answer?: (body: Record<string, unknown>) => unknown;
}

export interface Exchange {
  method: 'GET' | 'POST';
  url: string;
  body: unknown;
  /** The peer's answer as it left the peer (before any `answer` fault), if it gave one. */
  answer?: unknown;
}

export interface FaultyHttp {
  http: Http;
  faults: Fault[];
  /** Every call made, in order, with what the peer really answered. */
  log: Exchange[];
  /** The bodies POSTed to URLs ending with `path`, as they were sent. */
  posts(path: string): unknown[];
  /** How many GETs went to URLs ending with `path`. */
  gets(path: string): number;
  /** The peers' real answers to calls whose URL ends with `path`. */
  answers(path: string): unknown[];
}

/** The real HTTP client (undici, real sockets) with faults injected in front of it, and a log of what was sent. */
export function faultyHttp(faults: Fault[] = [], inner: Http = undiciHttp): FaultyHttp {
  const log: Exchange[] = [];
  const call = async (method: 'GET' | 'POST', url: string, body: unknown, headers: Record<string, string> | undefined) => {
    const exchange: Exchange = { method, url, body: body === undefined ? undefined : structuredClone(body) };
    log.push(exchange);
    const fault = faults.find((f) => url.endsWith(f.path) && (f.method === undefined || f.method === method) && f.times > 0);
    if (fault) fault.times--;
    if (fault?.lose === 'request') throw new ObolError('UNAVAILABLE', 'injected: the request was lost');
    if (fault?.refuse) throw new ObolError(fault.refuse, `injected: ${fault.refuse} on the way`);
    const sentHeaders = fault?.headers ? fault.headers({ ...headers }) : headers;
    const answer = method === 'GET' ? await inner.get(url, sentHeaders) : await inner.post(url, body, sentHeaders);
    exchange.answer = answer === undefined ? undefined : structuredClone(answer);
    if (fault?.lose === 'answer') throw new ObolError('UNAVAILABLE', 'injected: the answer was lost');
    return fault?.answer ? fault.answer(structuredClone(answer) as Record<string, unknown>) : answer;
  };
  const ending = (path: string) => log.filter((c) => c.url.endsWith(path));
  return {
    faults,
    log,
    posts: (path) => ending(path).filter((c) => c.method === 'POST').map((c) => c.body),
    gets: (path) => ending(path).filter((c) => c.method === 'GET').length,
    answers: (path) => ending(path).filter((c) => 'answer' in c).map((c) => c.answer),
    http: {
      get: (url, headers) => call('GET', url, undefined, headers),
      post: (url, body, headers) => call('POST', url, body, headers),
    },
  };
}
