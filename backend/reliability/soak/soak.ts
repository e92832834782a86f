import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { ObolError, errorName } from '@obol/protocol/errors';
import type { Http } from '@obol/protocol/http';
import { certToBase64 } from '@obol/protocol/pki';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { GENERIC_PAYLOADS } from '../../test/support/hostile/generic.ts';
import { JsonlFileSink } from '../../src/billing/index.ts';
import { downloadsCatalogue, newsCatalogue } from '../../src/demo/catalogues.ts';
import { undiciHttp } from '../../src/http/client.ts';
import { type Db, openDb } from '../../src/store/db.ts';
import { type TestPostgres, startTestPostgres } from '../../test/support/testPostgres.ts';
import { type Shop, startShop } from '../../src/world/shop.ts';
import { type World, startOperators } from '../../src/world/world.ts';
import { type Judgement, LatencySeries, type Limits, type MemorySample, type WindowFigures, formatTable, judge } from './figures.ts';

/**
 * A bounded soak (issue 11, item 5): two operators (SEK and EUR) and two shops (a EUR news shop
 * at the EUR operator, a SEK downloads shop at the SEK operator), real servers on 127.0.0.1 with
 * their timers running, on PGlite or PostgreSQL; N customer agents (the protocol's CustomerAgent
 * over undici) drive mixed traffic for a fixed time — registrations, logons, deposits opened,
 * purchases inside them, sessions ended, balance reads, and a sprinkling of hostile requests.
 * Every window (a minute by default) the heap (after a GC with --expose-gc) and RSS are sampled
 * and the HTTP latencies' p50/p95/p99 computed; the run is judged flat when the last window's
 * heap and p95 have not grown past the limits over the first window after warm-up, no hostile
 * request got a 5xx, no operation failed with INTERNAL, and both operators' ledger audits hold.
 */
export interface SoakOptions {
  /** How long the traffic runs (default 3). */
  minutes?: number;
  /** Concurrent customer agents (default 8). */
  agents?: number;
  /** PGlite in memory per server (default), or PostgreSQL: DATABASE_URL's server, or one started here. */
  db?: 'pglite' | 'postgres';
  /** Window length (default 60 s, shorter for runs under four minutes so there are at least four windows). */
  windowSec?: number;
  /** Windows left out of the judgement at the start (default 1). */
  warmupWindows?: number;
  limits?: Partial<Limits>;
  /** Share of the agents' steps that are hostile requests (default 0.05). */
  hostileShare?: number;
  /** Seed of the agents' choices (default 1). */
  seed?: number;
  /** Every refusal an agent meets, as a line (default: only internal errors). */
  verbose?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SoakResult {
  ok: boolean;
  reasons: string[];
  windows: WindowFigures[];
  judgement: Judgement;
  table: string;
  totals: { operations: number; httpCalls: number; hostile: number; hostile5xx: number; registrations: number; purchases: number; refusals: Record<string, number> };
}

const DEFAULT_LIMITS: Limits = { heapGrowth: 0.2, p95Growth: 0.5 };
/** The soak's clients all come from 127.0.0.1: the per-address limits are set far out of their way (rateLimit.test.ts tests them). */
const FAR = { limit: 1_000_000, windowSec: 1 };

/** A small seeded generator (mulberry32): the agents' choices replay for a seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Window {
  readonly http: LatencySeries;
  readonly byOperation = new Map<string, LatencySeries>();
  readonly errors = new Map<string, number>();
  operations = 0;
  constructor(
    readonly index: number,
    private readonly random: () => number,
  ) {
    this.http = new LatencySeries(random);
  }
  operation(kind: string, ms: number): void {
    this.operations++;
    let s = this.byOperation.get(kind);
    if (!s) {
      s = new LatencySeries(this.random);
      this.byOperation.set(kind, s);
    }
    s.add(ms);
  }
  error(name: string): void {
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }
}

function memory(): { sample: MemorySample; afterGc: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const m = process.memoryUsage();
  const mb = (n: number) => n / 1024 / 1024;
  return { sample: { heapUsedMb: mb(m.heapUsed), rssMb: mb(m.rss), externalMb: mb(m.external), arrayBuffersMb: mb(m.arrayBuffers) }, afterGc: gc !== undefined };
}

interface Servers {
  world: World;
  shops: Shop[];
  dbs: Db[];
  postgres?: TestPostgres;
  close(): Promise<void>;
}

async function startServers(db: 'pglite' | 'postgres'): Promise<Servers> {
  let postgres: TestPostgres | undefined;
  const dbs: Db[] = [];
  const newDb = async (): Promise<Db> => {
    let d: Db;
    if (db === 'pglite') d = await openDb();
    else {
      // DATABASE_URL names a server to use (fresh databases are made on it); otherwise one is started.
      if (!postgres && process.env.DATABASE_URL && !process.env.OBOL_TEST_DATABASE_URL) process.env.OBOL_TEST_DATABASE_URL = process.env.DATABASE_URL;
      postgres ??= await startTestPostgres();
      d = await openDb({ databaseUrl: await postgres.createDatabase() });
    }
    dbs.push(d);
    return d;
  };
  // Billing records go to JSONL files, as an operator's configuration would send them (none: an operator refuses to clear).
  const billingDir = await mkdtemp(join(tmpdir(), 'obol-soak-billing-'));
  const world = await startOperators(
    [
      {
        operatorId: 'op-sek',
        name: 'Svea Bank',
        currency: 'SEK',
        rates: { EUR: '0.0874', USD: '0.0951' },
        db: await newDb(),
        sinks: [new JsonlFileSink(join(billingDir, 'op-sek.jsonl'))],
      },
      {
        operatorId: 'op-eur',
        name: 'Banque Euro',
        currency: 'EUR',
        rates: { SEK: '11.44', USD: '1.088' },
        db: await newDb(),
        sinks: [new JsonlFileSink(join(billingDir, 'op-eur.jsonl'))],
      },
    ],
    {
      clock: systemClock,
      // Deadlines and billing run as in production; a short grace so clearings by deadline happen within the soak.
      timers: true,
      clearingGraceSec: 20,
      rateLimits: { registration: FAR, logon: FAR, topUp: FAR, admin: FAR, adminLockout: { failures: 1_000_000, windowSec: 1, lockoutSec: 1 } },
    },
  );
  const sek = world.operators['op-sek']!;
  const eur = world.operators['op-eur']!;
  const shops = [
    await startShop({
      merchantId: 'news.example',
      name: 'The Daily Obol',
      operatorUrl: eur.url,
      operatorId: 'op-eur',
      currency: 'EUR',
      adminToken: world.adminToken,
      catalogue: newsCatalogue('EUR'),
      clock: systemClock,
      db: await newDb(),
      sweepIntervalMs: 5_000,
    }),
    await startShop({
      merchantId: 'downloads.example',
      name: 'Obol Downloads',
      operatorUrl: sek.url,
      operatorId: 'op-sek',
      currency: 'SEK',
      adminToken: world.adminToken,
      catalogue: downloadsCatalogue('SEK'),
      clock: systemClock,
      db: await newDb(),
      sweepIntervalMs: 5_000,
    }),
  ];
  return {
    world,
    shops,
    dbs,
    ...(postgres ? { postgres } : {}),
    close: async () => {
      for (const s of shops) await s.close();
      await world.close();
      for (const d of dbs) await d.close();
      await postgres?.stop();
      await rm(billingDir, { recursive: true, force: true });
    },
  };
}

/** The wallet's open transactions, by the id its operator gave them (what endTransaction takes). */
function openTransactions(views: ReadonlyArray<{ state: string; transactionId?: string }>): string[] {
  return views.flatMap((t) => (t.state === 'open' && t.transactionId ? [t.transactionId] : []));
}

interface Product {
  merchantUrl: string;
  productId: string;
  price: string;
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const minutes = options.minutes ?? 3;
  const durationMs = minutes * 60_000;
  const windowMs = (options.windowSec ?? Math.min(60, (durationMs / 4_000) | 0)) * 1000;
  if (!(windowMs >= 1000)) throw new ObolError('MALFORMED', 'a soak window is at least one second: run longer or set windowSec');
  const agents = options.agents ?? 8;
  const hostileShare = options.hostileShare ?? 0.05;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? (() => {});
  const random = seeded(options.seed ?? 1);

  log(`starting 2 operators and 2 shops on ${options.db ?? 'pglite'}…`);
  const servers = await startServers(options.db ?? 'pglite');
  const windows: WindowFigures[] = [];
  const totals: SoakResult['totals'] = { operations: 0, httpCalls: 0, hostile: 0, hostile5xx: 0, registrations: 0, purchases: 0, refusals: {} };
  const reasons: string[] = [];
  try {
    const { world, shops } = servers;
    const operators = [world.operators['op-sek']!, world.operators['op-eur']!];
    const trustedRoots = [certToBase64(world.root.cert)];
    const products: Product[] = [];
    for (const shop of shops) {
      for (const p of await shop.agent.products()) products.push({ merchantUrl: shop.moduleUrl, productId: p.productId, price: p.price });
    }
    // Routes for the hostile sprinkling: the operator's (its /openapi.json) and the merchant module's POSTs.
    const doc = (await undiciHttp.get(`${operators[0]!.url}${OperatorPaths.openapi}`)) as { paths: Record<string, Record<string, unknown>> };
    const hostileTargets = [
      ...Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.keys(methods)
          .filter((m) => m === 'post')
          .flatMap((m) => operators.map((op) => ({ method: m.toUpperCase(), url: `${op.url}${path}` }))),
      ),
      ...shops.flatMap((s) => ['/info', '/order', '/accept', '/stop'].map((p) => ({ method: 'POST', url: `${s.moduleUrl}${p}` }))),
    ];

    const started = Date.now();
    let current = new Window(0, random);
    let stopping = false;

    /** The agents' Http, timed: every call's latency goes into the current window. */
    const timedHttp: Http = {
      get: async (url, headers) => {
        const t0 = performance.now();
        try {
          return await undiciHttp.get(url, headers);
        } finally {
          current.http.add(performance.now() - t0);
          totals.httpCalls++;
        }
      },
      post: async (url, body, headers) => {
        const t0 = performance.now();
        try {
          return await undiciHttp.post(url, body, headers);
        } finally {
          current.http.add(performance.now() - t0);
          totals.httpCalls++;
        }
      },
    };

    async function step<T>(kind: string, run: () => Promise<T>): Promise<T | undefined> {
      const t0 = performance.now();
      try {
        const out = await run();
        current.operation(kind, performance.now() - t0);
        totals.operations++;
        return out;
      } catch (e) {
        const name = e instanceof ObolError ? e.name : 'NOT_AN_OBOL_ERROR';
        current.operation(kind, performance.now() - t0);
        totals.operations++;
        const key = `${kind}:${name}`;
        current.error(key);
        totals.refusals[key] = (totals.refusals[key] ?? 0) + 1;
        if (name === 'INTERNAL' || name === 'NOT_AN_OBOL_ERROR' || options.verbose) log(`${kind} failed: ${name} ${(e as Error).message}`);
        return undefined;
      }
    }

    /** One hostile request from the generic set to a random POST route, straight over undici. */
    async function hostile(): Promise<void> {
      const target = hostileTargets[Math.floor(random() * hostileTargets.length)]!;
      const payload = GENERIC_PAYLOADS[Math.floor(random() * GENERIC_PAYLOADS.length)]!;
      const t0 = performance.now();
      const res = await request(target.url, {
        method: 'POST',
        headers: payload.contentType ? { 'content-type': payload.contentType } : {},
        body: payload.body,
      }).catch(() => undefined);
      totals.hostile++;
      if (!res) return;
      const text = await res.body.text();
      current.operation('hostile', performance.now() - t0);
      totals.operations++;
      if (res.statusCode >= 500) {
        totals.hostile5xx++;
        log(`hostile ${payload.kind} to ${target.url} → ${res.statusCode} ${text.slice(0, 200)}`);
      } else if (res.statusCode >= 400) {
        const code = (() => {
          try {
            return (JSON.parse(text) as { error?: { code?: number } }).error?.code;
          } catch {
            return undefined;
          }
        })();
        if (!errorName(Number(code))) {
          totals.hostile5xx++;
          log(`hostile ${payload.kind} to ${target.url} → ${res.statusCode} without a catalogue code: ${text.slice(0, 200)}`);
        }
      }
    }

    /** One customer's life: register, top up, then mixed steps; replaced after a while by a new customer. */
    async function customer(worker: number): Promise<void> {
      let life = 0;
      while (!stopping) {
        const op = operators[(worker + life++) % operators.length]!;
        const currency = op.ctx.config.currency;
        const agent = new CustomerAgent({ store: new MemoryWalletStore(), http: timedHttp, clock: systemClock, depositPolicy: { timeoutSec: 60 }, trustedRoots });
        if (!(await step('register', () => agent.register(op.url)))) continue;
        totals.registrations++;
        await step('topUp', () => agent.demoTopUp(`${currency}:200`));
        for (let i = 0; i < 40 && !stopping; i++) {
          const r = random();
          if (r < hostileShare) await hostile();
          else if (r < 0.6) {
            const p = products[Math.floor(random() * products.length)]!;
            if (await step('buy', () => agent.buy({ merchantUrl: p.merchantUrl, productId: p.productId, price: p.price }))) totals.purchases++;
          } else if (r < 0.75) await step('balance', () => agent.balance());
          else if (r < 0.83) {
            const open = openTransactions(await agent.listTransactions());
            const id = open[Math.floor(random() * open.length)];
            if (id) await step('end', () => agent.endTransaction(id));
          } else if (r < 0.88) await step('login', () => agent.login());
          else if (r < 0.93) {
            const shop = shops[Math.floor(random() * shops.length)]!;
            const p = products.find((x) => x.merchantUrl === shop.moduleUrl)!;
            await step('open', () => agent.openTransaction({ merchantUrl: shop.moduleUrl, firstPrice: p.price }));
          } else await step('topUp', () => agent.demoTopUp(`${currency}:20`));
        }
        // The customer leaves: its open sessions are ended (the rest clear by deadline).
        for (const id of openTransactions(await agent.listTransactions())) await step('end', () => agent.endTransaction(id));
      }
    }

    function closeWindow(): void {
      const { sample, afterGc } = memory();
      const w = current;
      const endSec = (Date.now() - started) / 1000;
      const byOperation: WindowFigures['byOperation'] = {};
      for (const [kind, s] of w.byOperation) byOperation[kind] = { count: s.count, p95: s.percentile(95) };
      const figures: WindowFigures = {
        index: w.index,
        endSec,
        operations: w.operations,
        operationsPerSec: w.operations / (windowMs / 1000),
        http: { count: w.http.count, p50: w.http.percentile(50), p95: w.http.percentile(95), p99: w.http.percentile(99) },
        byOperation,
        errors: Object.fromEntries(w.errors),
        memory: sample,
        afterGc,
      };
      windows.push(figures);
      log(formatTable([figures]).split('\n')[1] ?? '');
      current = new Window(w.index + 1, random);
    }

    log(`soak: ${agents} agents for ${minutes} min, windows of ${windowMs / 1000} s${memory().afterGc ? ', heap sampled after GC' : ' (run node with --expose-gc for heap after GC)'}`);
    log(formatTable([]).split('\n')[0] ?? '');
    const runners = Array.from({ length: agents }, (_, i) => customer(i));
    // The traffic stops as the last window closes: the wind-down (agents finishing their step and
    // ending their sessions) is another mix of traffic and is not judged.
    const windowCount = Math.max(2, Math.round(durationMs / windowMs));
    await new Promise<void>((resolve) => {
      const ticker = setInterval(() => {
        closeWindow();
        if (windows.length < windowCount) return;
        clearInterval(ticker);
        resolve();
      }, windowMs);
    });
    stopping = true;
    const windDown = performance.now();
    await Promise.all(runners);
    log(`wound down in ${((performance.now() - windDown) / 1000).toFixed(1)} s (${current.operations} operations, not judged)`);

    // After the traffic: both operators' ledgers still balance.
    for (const op of operators) {
      const audit = (await undiciHttp
        .get(`${op.url}${OperatorPaths.adminAudit}`, { authorization: `Bearer ${world.adminToken}` })
        .catch((e: unknown) => ({ error: e instanceof ObolError ? e.toJSON() : String(e) }))) as { ok?: boolean };
      if (audit.ok !== true) reasons.push(`the ledger audit of ${op.ctx.config.operatorId} fails: ${JSON.stringify(audit).slice(0, 300)}`);
    }
  } finally {
    await servers.close();
  }

  const judgement = judge(windows, limits, options.warmupWindows ?? 1);
  reasons.unshift(...judgement.reasons);
  if (totals.hostile5xx > 0) reasons.push(`${totals.hostile5xx} hostile requests got a 5xx or an answer without a catalogue code`);
  const internal = Object.entries(totals.refusals)
    .filter(([key]) => key.endsWith(':INTERNAL') || key.endsWith(':NOT_AN_OBOL_ERROR'))
    .reduce((sum, [, n]) => sum + n, 0);
  if (internal > 0) reasons.push(`${internal} operations failed with an internal error`);
  if (totals.purchases === 0) reasons.push('no purchase succeeded');
  return { ok: reasons.length === 0, reasons, windows, judgement, table: formatTable(windows), totals };
}
