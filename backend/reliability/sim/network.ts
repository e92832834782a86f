import { ObolError } from '@obol/protocol/errors';
import type { Http } from '@obol/protocol/http';
import type { ManualClock } from '@obol/protocol/clock';
import type { FastifyInstance } from 'fastify';
import { errorFromBody } from '../../src/http/errors.ts';
import { type FaultRates, NO_FAULTS, type RunStats, countFault } from './faults.ts';
import type { Prng } from './prng.ts';
import type { Trace } from './trace.ts';

/** A request on the simulated wire. */
export interface WireRequest {
  from: string;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** What the network needs of the world: who serves a host now, and how a party crashes. */
export interface NetworkHosts {
  /** The party at this host and its server as it runs now, or undefined when it is down or unknown. */
  serverOf(host: string): { party: string; app: FastifyInstance } | undefined;
  /** The party at this host (whether up or not). */
  partyOf(host: string): string | undefined;
  /** Crash a party that has just handled a request (it restarts on its store). */
  crash(party: string): Promise<void>;
  /** Crash a wallet while it waits for an answer. */
  crashWallet(party: string): void;
  isWallet(party: string): boolean;
  /**
   * Wait for work the party started in the background while handling a request (a merchant's
   * report after a stop): it finishes before the answer goes back, so one request's consequences
   * never interleave with the caller's next request by chance of timing (replay stays exact).
   */
  settle(party: string): Promise<void>;
  /** Note that a party handled something this step (its ledger is audited after the step). */
  touch(party: string): void;
}

/**
 * The network between every pair of parties: each request is handed to the receiver's Fastify
 * app with `inject()` (light-my-request), one at a time, with faults drawn from the run's PRNG —
 * drop, hold back and deliver later (reorder), duplicate, delay (the clock moves), lose the answer
 * after the receiver committed, crash the receiver after it committed, crash the sending wallet.
 */
export class SimNetwork {
  rates: FaultRates = NO_FAULTS;
  /** Requests held back (reordered) or copied (duplicated), delivered at a later step. */
  readonly held: WireRequest[] = [];
  /** Parties handling a request now (nested calls): such a party is not crashed under itself. */
  private readonly busy = new Map<string, number>();

  constructor(
    private readonly prng: Prng,
    private readonly clock: ManualClock,
    private readonly hosts: NetworkHosts,
    private readonly stats: RunStats,
    private readonly trace: Trace,
  ) {}

  /** The `Http` a party calls the others with. */
  httpFor(from: string): Http {
    return {
      get: (url, headers) => this.send({ from, method: 'GET', url, headers: headers ?? {}, body: undefined }),
      post: (url, body, headers) => this.send({ from, method: 'POST', url, headers: headers ?? {}, body }),
    };
  }

  private async send(req: WireRequest): Promise<unknown> {
    const host = new URL(req.url).host;
    const to = this.hosts.partyOf(host);
    if (!to) throw new ObolError('UNAVAILABLE', `${host} cannot be reached (no such host)`);
    const r = this.rates;
    const what = `${req.from}→${to} ${req.method} ${new URL(req.url).pathname}`;
    if (this.prng.chance(r.drop)) return this.fault('drop', what, new ObolError('UNAVAILABLE', `${host} cannot be reached`));
    if (req.method === 'POST' && this.prng.chance(r.reorder)) {
      this.held.push(req);
      return this.fault('reorder', what, new ObolError('TIMEOUT', `${host} did not answer in time`));
    }
    if (this.prng.chance(r.delay)) {
      const ms = this.prng.int(1, r.maxDelayMs);
      this.clock.advance(ms);
      this.count('delay', `${what} +${ms}ms`);
    }
    if (req.method === 'POST' && this.prng.chance(r.duplicate)) {
      this.held.push(req);
      this.count('duplicate', what);
    }
    const walletCrash = this.hosts.isWallet(req.from) && this.prng.chance(r.walletCrashInFlight);
    const deliverFirst = !walletCrash || this.prng.chance(0.5);
    const loseAnswer = this.prng.chance(r.loseResponse);
    const crashAfter = !this.hosts.isWallet(to) && this.prng.chance(r.crashAfterCommit);

    let answer: { status: number; body: unknown } | undefined;
    if (deliverFirst) answer = await this.deliver(req, to, host);
    if (walletCrash) {
      this.hosts.crashWallet(req.from);
      return this.fault('wallet-crash-in-flight', `${what} (delivered: ${deliverFirst})`, new ObolError('UNAVAILABLE', 'the wallet stopped'));
    }
    if (!answer) throw new ObolError('UNAVAILABLE', `${host} cannot be reached`);
    if (crashAfter && (this.busy.get(to) ?? 0) === 0 && answer.status !== 0) {
      await this.hosts.crash(to);
      return this.fault('crash-after-commit', what, new ObolError('UNAVAILABLE', `${host} closed the connection`));
    }
    if (loseAnswer) return this.fault('lose-response', what, new ObolError('TIMEOUT', `${host} did not answer in time`));
    if (answer.status === 0) throw new ObolError('UNAVAILABLE', `${host} cannot be reached`);
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    throw errorFromBody(answer.status, answer.body, req.url);
  }

  /** Hand a request to the receiver's app; status 0 = nobody is serving that host. */
  private async deliver(req: WireRequest, to: string, host: string): Promise<{ status: number; body: unknown }> {
    const server = this.hosts.serverOf(host);
    if (!server) return { status: 0, body: undefined };
    const u = new URL(req.url);
    this.stats.messages++;
    this.hosts.touch(to);
    this.busy.set(to, (this.busy.get(to) ?? 0) + 1);
    try {
      const res = await server.app.inject({
        method: req.method,
        url: `${u.pathname}${u.search}`,
        headers: { ...req.headers, ...(req.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(req.body === undefined ? {} : { payload: JSON.stringify(req.body) }),
      });
      let body: unknown;
      try {
        body = res.body === '' ? undefined : JSON.parse(res.body);
      } catch {
        body = undefined;
      }
      return { status: res.statusCode, body };
    } finally {
      this.busy.set(to, (this.busy.get(to) ?? 1) - 1);
      await this.hosts.settle(to);
    }
  }

  /** Deliver one held-back or copied request now (its answer goes nowhere: the caller gave up). */
  async deliverHeld(): Promise<string | undefined> {
    if (this.held.length === 0) return undefined;
    const i = this.prng.int(0, this.held.length - 1);
    const [req] = this.held.splice(i, 1);
    const host = new URL(req!.url).host;
    const to = this.hosts.partyOf(host)!;
    const answer = await this.deliver(req!, to, host);
    const outcome = answer.status === 0 ? 'nobody there' : answer.status < 300 ? 'ok' : errorName(answer.body) ?? `HTTP ${answer.status}`;
    return `${req!.from}→${to} POST ${new URL(req!.url).pathname}: ${outcome}`;
  }

  private count(kind: Parameters<typeof countFault>[1], what: string): void {
    countFault(this.stats, kind);
    this.trace.fault(kind, what);
  }

  private fault(kind: Parameters<typeof countFault>[1], what: string, error: ObolError): never {
    this.count(kind, what);
    throw error;
  }
}

function errorName(body: unknown): string | undefined {
  const e = (body as { error?: { name?: unknown } } | undefined)?.error;
  return typeof e?.name === 'string' ? e.name : undefined;
}
