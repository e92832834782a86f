import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';

/**
 * Rate limits per client, written for our servers (no dependency): a token bucket per remote
 * address, kept in a map with a hard cap on its size, on the injected clock (tests move time
 * instead of sleeping). A refused request is answered 429 RATE_LIMITED with `retry-after`, before
 * any handler, database or signature check runs.
 *
 * Bounded memory: an entry is dropped as soon as its bucket is full again (it is then the same as
 * no entry), and when the map holds `maxClients` entries the least recently seen one is dropped.
 * So an attacker with more addresses than `maxClients` can make us forget a count; memory never
 * grows past the cap whatever it does.
 */
export interface RateRule {
  /** Requests a client may make in a burst, and per `windowSec` on average. */
  limit: number;
  windowSec: number;
}

/** Wrong admin tokens: `failures` within `windowSec` lock the address out for `lockoutSec`. */
export interface LockoutRule {
  failures: number;
  windowSec: number;
  lockoutSec: number;
}

/** Administration calls per client, right token or not, unless configured otherwise. */
export const DEFAULT_ADMIN_CALLS: RateRule = { limit: 120, windowSec: 60 };
/** Ten wrong admin tokens in ten minutes lock the address out for a quarter of an hour. */
export const DEFAULT_ADMIN_LOCKOUT: LockoutRule = { failures: 10, windowSec: 600, lockoutSec: 900 };

/** Default size of each limiter's map: about 100 bytes an entry, so ~1 MB each at the cap. */
export const DEFAULT_MAX_CLIENTS = 10_000;

/**
 * The client a request counts against: its remote address as the socket reports it (Fastify's
 * `request.ip` without `trustProxy`, so a header cannot choose it). IPv4 mapped into IPv6 is the
 * IPv4 address; an IPv6 address counts by its /64, since one host is given a whole /64 and could
 * otherwise take a fresh address for every request.
 */
export function clientKey(ip: string | undefined): string {
  const address = ip ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** A map with a cap: insertion order is recency (an entry is re-inserted on use), oldest goes first. */
class CappedMap<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly max: number) {}
  get size(): number {
    return this.entries.size;
  }
  get(key: string): V | undefined {
    return this.entries.get(key);
  }
  /** Store as the most recent entry, dropping the least recent one when full. */
  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, value);
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** One rule, one map: e.g. all registrations of one server. */
export class RateLimiter {
  private readonly buckets: CappedMap<Bucket>;
  private readonly perMs: number;
  private readonly msPerToken: number;
  constructor(
    private readonly rule: RateRule,
    private readonly clock: Clock,
    maxClients: number = DEFAULT_MAX_CLIENTS,
  ) {
    if (!(rule.limit >= 1 && rule.windowSec > 0 && maxClients >= 1)) throw new ObolError('MALFORMED', 'a rate limit needs limit >= 1, windowSec > 0, maxClients >= 1');
    this.buckets = new CappedMap(maxClients);
    this.perMs = rule.limit / (rule.windowSec * 1000);
    this.msPerToken = (rule.windowSec * 1000) / rule.limit;
  }

  /** Clients with a partly used budget (what the map holds). */
  get tracked(): number {
    return this.buckets.size;
  }

  /** Take one token for `key`: 0 if granted, otherwise the milliseconds until one is back. */
  take(key: string): number {
    const now = this.clock.now();
    const b = this.buckets.get(key);
    // Time moving backwards (a clock set back) refills nothing and takes nothing away.
    const tokens = b ? Math.min(this.rule.limit, b.tokens + Math.max(0, now - b.atMs) * this.perMs) : this.rule.limit;
    if (tokens < 1) {
      this.buckets.set(key, { tokens, atMs: Math.max(now, b?.atMs ?? now) });
      // Less a hair, so float noise (1/3 of a token) does not add a millisecond.
      return Math.max(1, Math.ceil((1 - tokens) * this.msPerToken - 1e-6));
    }
    if (tokens - 1 >= this.rule.limit) this.buckets.delete(key);
    else this.buckets.set(key, { tokens: tokens - 1, atMs: Math.max(now, b?.atMs ?? now) });
    return 0;
  }

  /** The hook that refuses a request over the limit (for a route's `onRequest`). */
  hook(what: string): onRequestAsyncHookHandler {
    return async (request, reply) => {
      const waitMs = this.take(clientKey(request.ip));
      if (waitMs > 0) return refuse(reply, waitMs, `too many ${what} from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
    };
  }
}

interface Failures {
  count: number;
  firstMs: number;
  lockedUntilMs: number;
}

/** Counts wrong credentials per client; enough of them in a window lock the client out. */
export class Lockout {
  private readonly failures: CappedMap<Failures>;
  constructor(
    private readonly rule: LockoutRule,
    private readonly clock: Clock,
    maxClients: number = DEFAULT_MAX_CLIENTS,
  ) {
    if (!(rule.failures >= 1 && rule.windowSec > 0 && rule.lockoutSec > 0)) throw new ObolError('MALFORMED', 'a lockout needs failures >= 1, windowSec > 0, lockoutSec > 0');
    this.failures = new CappedMap(maxClients);
  }

  get tracked(): number {
    return this.failures.size;
  }

  /** 0 if `key` may try, otherwise the milliseconds left of its lockout. */
  lockedFor(key: string): number {
    const f = this.failures.get(key);
    if (!f) return 0;
    const now = this.clock.now();
    if (f.lockedUntilMs > now) return f.lockedUntilMs - now;
    // Expired: nothing left to remember.
    if (f.lockedUntilMs > 0 || now - f.firstMs >= this.rule.windowSec * 1000) this.failures.delete(key);
    return 0;
  }

  /** One wrong credential from `key`. */
  fail(key: string): void {
    const now = this.clock.now();
    const f = this.failures.get(key);
    const fresh = !f || f.lockedUntilMs > 0 || now - f.firstMs >= this.rule.windowSec * 1000;
    const next: Failures = fresh ? { count: 1, firstMs: now, lockedUntilMs: 0 } : { ...f, count: f.count + 1 };
    if (next.count >= this.rule.failures) next.lockedUntilMs = now + this.rule.lockoutSec * 1000;
    this.failures.set(key, next);
  }
}

/**
 * An administration route's guard: a rate limit on its calls, a lockout after wrong tokens, then
 * the token check itself, in one synchronous step so a burst of concurrent wrong tokens cannot
 * slip past the count.
 */
export class AdminGuard {
  readonly calls: RateLimiter;
  readonly lockout: Lockout;
  constructor(o: { calls: RateRule; lockout: LockoutRule; clock: Clock; maxClients?: number }) {
    this.calls = new RateLimiter(o.calls, o.clock, o.maxClients);
    this.lockout = new Lockout(o.lockout, o.clock, o.maxClients);
  }

  /**
   * Refuses (429) a locked-out or too busy client, then runs `check` (throws UNAUTHORIZED on a
   * wrong token); a wrong token counts toward the lockout.
   */
  async guard(request: FastifyRequest, reply: FastifyReply, check: () => void): Promise<FastifyReply | undefined> {
    const key = clientKey(request.ip);
    const lockedMs = this.lockout.lockedFor(key);
    if (lockedMs > 0) return refuse(reply, lockedMs, `too many wrong admin tokens from this address: locked out for ${Math.ceil(lockedMs / 1000)} s`);
    const waitMs = this.calls.take(key);
    if (waitMs > 0) return refuse(reply, waitMs, `too many administration calls from this address: try again in ${Math.ceil(waitMs / 1000)} s`);
    try {
      check();
    } catch (e) {
      if (e instanceof ObolError && e.name === 'UNAUTHORIZED') this.lockout.fail(key);
      throw e;
    }
    return undefined;
  }
}

/** 429 with the catalogue body and `retry-after` in whole seconds (at least 1). */
function refuse(reply: FastifyReply, waitMs: number, message: string): FastifyReply {
  return reply
    .code(429)
    .header('retry-after', String(Math.max(1, Math.ceil(waitMs / 1000))))
    .send({ error: new ObolError('RATE_LIMITED', message).toJSON() });
}
