// One role of the bench world per process, driven by the bench over IPC: `operators` (op-sek, the
// shopper's bank, and op-eur, the merchant's), `shop` (news.example at op-eur) and `shoppers`
// (customer agents). Separate processes so each role's CPU time is its own (process.cpuUsage).
import { createServer, type Server } from 'node:http';
import { OperatorPaths } from '@obol/protocol/api';
import { canonicalJson } from '@obol/protocol/canonicalJson';
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { SIGN_ALG } from '@obol/protocol/keys';
import { certToBase64 } from '@obol/protocol/pki';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { fromBase64Url, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlFileSink } from '../src/billing/index.ts';
import { newsCatalogue } from '../src/demo/catalogues.ts';
import { postJson, undiciHttp } from '../src/http/client.ts';
import { type Db, type Queryable, openDb } from '../src/store/db.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { type World, startOperators } from '../src/world/world.ts';
import { cpuMs } from './support.ts';

const FAR = { limit: 1_000_000_000, windowSec: 1 };
const NO_LIMITS = { registration: FAR, logon: FAR, topUp: FAR, admin: FAR, adminLockout: { failures: 1_000_000_000, windowSec: 1, lockoutSec: 1 } };
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

type Handler = (args: never) => Promise<unknown>;
const handlers: Record<string, Handler> = {};
const counted: Server[] = [];
let served = 0;

function countRequests(server: Server): void {
  counted.push(server);
  server.on('request', () => served++);
}

handlers.cpu = async () => {
  // With BENCH_CPU_PROF, each CPU sample marks its time (µs, the profile's clock) on stderr, so a
  // profile can be cut to one figure's window (between the two samples around it).
  if (process.env.BENCH_CPU_PROF) process.stderr.write(`cpu-prof-mark ${process.pid} ${process.hrtime.bigint() / 1000n}\n`);
  return { cpuMs: cpuMs(), served };
};

// ── the floor: three signed hops (sign, send, verify at each) ──────────────────────────────

interface ChainKey {
  jwk: JsonWebKey;
  spki: string;
}
let chainKeys: { privateKey: CryptoKey; publicKey: CryptoKey } | undefined;
async function importChainKey(k: ChainKey) {
  chainKeys ??= {
    privateKey: await crypto.subtle.importKey('jwk', k.jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
    publicKey: await crypto.subtle.importKey('spki', fromBase64Url(k.spki), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']),
  };
  return chainKeys;
}

interface Hop {
  body: Record<string, unknown>;
  sig: string;
}
async function signHop(body: Record<string, unknown>): Promise<Hop> {
  const sig = await crypto.subtle.sign(SIGN_ALG, chainKeys!.privateKey, utf8.encode(canonicalJson(body)));
  return { body, sig: toBase64Url(new Uint8Array(sig)) };
}
async function verifyHop(hop: Hop): Promise<void> {
  if (!(await crypto.subtle.verify(SIGN_ALG, chainKeys!.publicKey, fromBase64Url(hop.sig), utf8.encode(canonicalJson(hop.body))))) throw new Error('bad hop');
}

/** A hop: verifies what arrives, signs its own message and sends it on (or answers, at the end). */
handlers.chainHop = async (args: { key: ChainKey; next?: string }) => {
  await importChainKey(args.key);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const hop = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Hop;
        await verifyHop(hop);
        const mine = await signHop({ ...hop.body, by: server.address() && String((server.address() as { port: number }).port) });
        const answer = args.next ? await postJson(args.next, mine) : mine;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer));
      } catch (e) {
        res.statusCode = 500;
        res.end(String(e));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hop` };
};

// ── operators ────────────────────────────────────────────────────────────────────────────

let world: World | undefined;
const dbs: Db[] = [];

// BENCH_SQL_COUNT=1: every statement the operators (or the shop) send is counted by its text (the `sql`
// command returns the counts), to see what a path costs in statements.
const statements = new Map<string, number>();
function counting(db: Db): Db {
  if (!process.env.BENCH_SQL_COUNT) return db;
  const count = (sql: string) => {
    const key = sql.replace(/\s+/g, ' ').slice(0, 140);
    statements.set(key, (statements.get(key) ?? 0) + 1);
  };
  const on = (q: Queryable): Queryable => ({
    query: (sql, params) => {
      count(sql);
      return q.query(sql, params);
    },
    exec: (sql) => {
      count(sql);
      return q.exec(sql);
    },
  });
  return {
    engine: db.engine,
    ...on(db),
    transaction: (fn, options) =>
      db.transaction((tx) => {
        count('BEGIN…COMMIT');
        return fn(on(tx));
      }, options),
    close: () => db.close(),
  };
}
// With BENCH_SQL_COUNT the WebCrypto calls of this role are counted too (`crypto.importKey`, …),
// whoever makes them (our code or @peculiar/x509): key imports per open are one of issue 13's counts.
if (process.env.BENCH_SQL_COUNT) {
  const subtle = globalThis.crypto.subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const op of ['importKey', 'exportKey', 'generateKey', 'sign', 'verify', 'digest', 'wrapKey', 'encrypt', 'decrypt']) {
    const real = subtle[op]!.bind(subtle);
    subtle[op] = (...a: unknown[]) => {
      statements.set(`crypto.${op}`, (statements.get(`crypto.${op}`) ?? 0) + 1);
      return real(...a);
    };
  }
}
handlers.sql = async () => {
  const counts = Object.fromEntries([...statements].sort((a, b) => b[1] - a[1]));
  statements.clear();
  return counts;
};
handlers.operators = async (args: { sekDb?: string; eurDb?: string }) => {
  const db = async (url?: string) => {
    const d = await openDb(url ? { databaseUrl: url } : {});
    dbs.push(d);
    return counting(d);
  };
  const billing = mkdtempSync(join(tmpdir(), 'obol-bench-billing-'));
  const sinks = (id: string) => [new JsonlFileSink(join(billing, `${id}.jsonl`))];
  world = await startOperators(
    [
      { operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874', USD: '0.0951' }, db: await db(args.sekDb), sinks: sinks('op-sek') },
      { operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44', USD: '1.088' }, db: await db(args.eurDb), sinks: sinks('op-eur') },
    ],
    {
      clock: systemClock,
      adminToken: ADMIN_TOKEN,
      rateLimits: NO_LIMITS,
      timers: false,
      // Errors only, to stderr: a bench that hides a server's failure measures nothing.
      logStream: (id) => ({ write: (line: string) => void (/"name":"INTERNAL"/.test(line) && process.stderr.write(`${id}: ${line}`)) }),
    },
  );
  for (const op of Object.values(world.operators)) countRequests(op.app.server);
  return { sekUrl: world.operators['op-sek']!.url, eurUrl: world.operators['op-eur']!.url, root: certToBase64(world.root.cert) };
};

// ── the shop ─────────────────────────────────────────────────────────────────────────────

let shop: Shop | undefined;
handlers.shop = async (args: { db?: string; eurUrl: string }) => {
  const d = await openDb(args.db ? { databaseUrl: args.db } : {});
  dbs.push(d);
  shop = await startShop({
    merchantId: 'news.example',
    name: 'The Daily Obol',
    operatorUrl: args.eurUrl,
    operatorId: 'op-eur',
    currency: 'EUR',
    adminToken: ADMIN_TOKEN,
    catalogue: newsCatalogue('EUR'),
    clock: systemClock,
    db: counting(d),
    sweepIntervalMs: 0,
    adminLimits: { calls: FAR, lockout: NO_LIMITS.adminLockout },
  });
  countRequests(shop.app.server);
  const products = (await shop.agent.products()).map((p) => ({ productId: p.productId, price: p.price }));
  return { moduleUrl: shop.moduleUrl, origin: shop.url, products };
};

/** Every record sent to the acquirer in the background has been tried (clearing done). */
handlers.settled = async () => {
  await shop?.agent.settled();
  return null;
};

// ── shoppers ─────────────────────────────────────────────────────────────────────────────

interface Market {
  sekUrl: string;
  root: string;
  moduleUrl: string;
  origin: string;
  products: { productId: string; price: string }[];
}
let market: Market | undefined;
const agents: CustomerAgent[] = [];

handlers.shoppers = async (args: Market & { count: number }) => {
  market = args;
  while (agents.length < args.count) {
    const agent = new CustomerAgent({
      store: new MemoryWalletStore(),
      http: undiciHttp,
      clock: systemClock,
      // A deposit large enough for every purchase of a run: no operator message between them.
      depositPolicy: { minimum: 'SEK:400.00', timeoutSec: 3600 },
      trustedRoots: [args.root],
    });
    const account = await agent.register(args.sekUrl);
    await postJson(
      `${args.sekUrl}${OperatorPaths.adminFund}`,
      { customerId: account.customerId, amount: 'SEK:1000000.00' },
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
    );
    await agent.login();
    await agent.exchangeTable();
    agents.push(agent);
  }
  return null;
};

function buyOne(agent: CustomerAgent, i: number) {
  const p = market!.products[i % market!.products.length]!;
  return agent.buy({ merchantUrl: market!.moduleUrl, productId: p.productId, price: p.price, origin: market!.origin });
}

/** `shoppers` agents buy `each` purchases each, all at once; the first `warm` purchases of each are not timed. */
handlers.buy = async (args: { shoppers: number; each: number; warm?: number }) => {
  const some = agents.slice(0, args.shoppers);
  if (args.warm) await Promise.all(some.map(async (a) => { for (let i = 0; i < args.warm!; i++) await patiently(a, () => buyOne(a, i)); }));
  const latencies: number[] = [];
  const cpu0 = cpuMs();
  const t0 = performance.now();
  await Promise.all(
    some.map(async (a, j) => {
      for (let i = 0; i < args.each; i++) {
        const t = performance.now();
        await patiently(a, () => buyOne(a, i + j));
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { wallMs: performance.now() - t0, count: some.length * args.each, latencies, shopperCpuMs: cpuMs() - cpu0 };
};

/**
 * The first `shoppers` agents each open `each` deposits one after the other (FIG 2), the agents at
 * once; each open timed.
 */
handlers.open = async (args: { shoppers: number; each: number; keepOpen?: boolean }) => {
  const first = market!.products[0]!;
  const latencies: number[] = [];
  const opened: [CustomerAgent, string][] = [];
  const t0 = performance.now();
  await Promise.all(
    agents.slice(0, args.shoppers).map(async (agent) => {
      for (let i = 0; i < args.each; i++) {
        const t = performance.now();
        const tx = await patiently(agent, () => agent.openTransaction({ merchantUrl: market!.moduleUrl, firstPrice: first.price, origin: market!.origin }));
        latencies.push(performance.now() - t);
        if (tx.transactionId) opened.push([agent, tx.transactionId]);
      }
    }),
  );
  const wallMs = performance.now() - t0;
  // keepOpen: the bench ends them after it has read the open's own CPU and counts (endAll).
  if (!args.keepOpen) for (const [agent, id] of opened) await agent.endTransaction(id);
  return { latencies, wallMs, count: latencies.length };
};

/** Each of `shoppers` agents runs `deposits` deposits of `k` purchases each, ending each deposit. */
handlers.cycle = async (args: { shoppers: number; deposits: number; k: number }) => {
  const t0 = performance.now();
  await Promise.all(
    agents.slice(0, args.shoppers).map(async (a) => {
      for (let d = 0; d < args.deposits; d++) {
        let id: string | undefined;
        for (let i = 0; i < args.k; i++) id = (await patiently(a, () => buyOne(a, i))).receipt.transactionId;
        await patiently(a, () => a.endTransaction(id!));
      }
    }),
  );
  return { wallMs: performance.now() - t0, purchases: args.shoppers * args.deposits * args.k };
};

/**
 * `step`, again after an UNAVAILABLE (an answer that took longer than the wallet waits, on a busy
 * machine: the operator asks to send it again shortly), with the agent's own recovery between.
 */
let retries = 0;
async function patiently<T>(agent: CustomerAgent, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (e) {
      if (attempt >= 10 || !(e instanceof Error) || e.name !== 'UNAVAILABLE') throw e;
      retries++;
      await new Promise((r) => setTimeout(r, 200 * attempt));
      await agent.recover().catch(() => undefined);
    }
  }
}

/** Each of `shoppers` agents opens `deposits` deposits with one purchase each, left open. */
handlers.prepareClearing = async (args: { shoppers: number; deposits: number }) => {
  const first = market!.products[0]!;
  await Promise.all(
    agents.slice(0, args.shoppers).map(async (a) => {
      for (let d = 0; d < args.deposits; d++) {
        await patiently(a, () => a.openTransaction({ merchantUrl: market!.moduleUrl, firstPrice: first.price, origin: market!.origin }));
        await patiently(a, () => a.buy({ merchantUrl: market!.moduleUrl, productId: first.productId, price: first.price, origin: market!.origin }));
      }
    }),
  );
  return null;
};

/** Every open deposit of the first `shoppers` agents ended at once (FIG 3), shoppers in parallel. */
handlers.endAll = async (args: { shoppers: number }) => {
  const t0 = performance.now();
  const retried = retries;
  let count = 0;
  await Promise.all(
    agents.slice(0, args.shoppers).map(async (a) => {
      for (const tx of await a.listTransactions()) {
        if (tx.transactionId && tx.state === 'open') {
          await patiently(a, () => a.endTransaction(tx.transactionId!));
          count++;
        }
      }
    }),
  );
  // retries: ends sent again after an UNAVAILABLE (each after a pause): time the rate includes.
  return { wallMs: performance.now() - t0, count, retries: retries - retried };
};

/** The floor of a session open: `count` signed requests through the three hops, each timed. */
handlers.chain = async (args: { key: ChainKey; url: string; count: number }) => {
  await importChainKey(args.key);
  const latencies: number[] = [];
  for (let i = 0; i < args.count + 5; i++) {
    const t = performance.now();
    const answer = (await postJson(args.url, await signHop({ n: i, what: 'initiate', pad: 'x'.repeat(200) }))) as Hop;
    await verifyHop(answer);
    if (i >= 5) latencies.push(performance.now() - t);
  }
  return { latencies };
};

handlers.close = async () => {
  await shop?.close();
  await world?.close();
  for (const d of dbs) await d.close();
  for (const s of counted) s.closeAllConnections?.();
  setTimeout(() => process.exit(0), 50);
  return null;
};

process.on('message', async (m: { id: number; cmd: string; args: unknown }) => {
  try {
    const result = await handlers[m.cmd]!(m.args as never);
    process.send!({ id: m.id, result });
  } catch (e) {
    process.send!({ id: m.id, error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e) });
  }
});
process.send!({ ready: true });
