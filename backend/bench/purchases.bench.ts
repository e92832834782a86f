// `npm run bench -w backend` (and part of the root `npm run bench`): issue 13's figures for the
// servers, each next to a floor measured in the same run. The operators, the shop and the shoppers
// run in three processes (roles.ts) on 127.0.0.1, so each role's CPU time is its own; on
// PostgreSQL the operators and the shop each have a throwaway server whose CPU time is counted
// with them. Writes bench-results/backend.json; scripts/bench-report.ts draws the table and chart.
import { type ChildProcess, fork } from 'node:child_process';
import { KeyObject, createCipheriv, sign, verify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '@obol/protocol/canonicalJson';
import { SIGN_ALG } from '@obol/protocol/keys';
import { toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import { ledgerClearingRates } from './clearing.bench.ts';
import { type TestPostgres, cpuMs, percentile, postgresCommitRate, postgresCpuMs, startTestPostgres } from './support.ts';

const ENGINES = (process.env.BENCH_ENGINES ?? 'PGlite,PostgreSQL').split(',') as Engine[];
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
// BENCH_FIGURES=clearing (or purchase, sessionOpen, perDeposit, comma-separated): only those
// figures, to profile one path quickly; the default is every figure.
const FIGURES = new Set((process.env.BENCH_FIGURES ?? 'purchase,sessionOpen,perDeposit,clearing').split(','));
// A partial run (BENCH_FIGURES, BENCH_ENGINES) must not replace the full run's figures.
const PARTIAL = process.env.BENCH_FIGURES !== undefined || process.env.BENCH_ENGINES !== undefined;
const OUT = fileURLToPath(new URL(`../../bench-results/${PARTIAL ? 'backend.partial.json' : 'backend.json'}`, import.meta.url));
type Engine = 'PGlite' | 'PostgreSQL';

// ── roles in child processes ─────────────────────────────────────────────────────────────

interface Role {
  name: string;
  child: ChildProcess;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
}

async function spawnRole(name: string): Promise<Role> {
  // BENCH_CPU_PROF=shop (or operators, shoppers, comma-separated): those roles write a V8 CPU profile to bench-results/profiles.
  const prof = (process.env.BENCH_CPU_PROF ?? '').split(',').includes(name) ? ['--cpu-prof', `--cpu-prof-dir=${fileURLToPath(new URL('../../bench-results/profiles', import.meta.url))}`] : [];
  const child = fork(fileURLToPath(new URL('./roles.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx', ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let next = 0;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench role ${name} exited (${code})`)));
    child.on('message', (m: { ready?: true; id?: number; result?: unknown; error?: string }) => {
      if (m.ready) return resolve();
      const w = waiting.get(m.id!);
      waiting.delete(m.id!);
      if (m.error) w?.reject(new Error(`${name}: ${m.error}`));
      else w?.resolve(m.result);
    });
  });
  child.removeAllListeners('exit');
  return {
    name,
    child,
    call: <T>(cmd: string, args?: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, cmd, args });
      }),
  };
}

// ── floors, measured here while the roles are idle ───────────────────────────────────────

/** Items per CPU-second of `op`, one at a time, for about `ms` of CPU. */
async function perCpuSecond(op: () => unknown, ms = 600): Promise<number> {
  for (let i = 0; i < 50; i++) await op();
  let n = 0;
  const c0 = cpuMs();
  while (cpuMs() - c0 < ms) {
    for (let i = 0; i < 50; i++) await op();
    n += 50;
  }
  return n / ((cpuMs() - c0) / 1000);
}

/** The same, for a synchronous `op`: nothing awaited, so nothing but the operation is counted. */
function perCpuSecondSync(op: () => unknown, ms = 600): number {
  for (let i = 0; i < 50; i++) op();
  let n = 0;
  const c0 = cpuMs();
  while (cpuMs() - c0 < ms) {
    for (let i = 0; i < 50; i++) op();
    n += 50;
  }
  return n / ((cpuMs() - c0) / 1000);
}

/**
 * The machine's best rates, each measured both ways Node offers: WebCrypto (`crypto.subtle`,
 * awaited one at a time) and node:crypto (synchronous, the key prepared once as a KeyObject).
 * The floor is the faster of the two, named in the output: a floor must be the real best.
 */
async function cryptoFloors() {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const body = utf8.encode(canonicalJson({ v: 1, type: 'wallet.order', kid: 'k'.repeat(22), body: { transactionId: 'op-sek.1.1', n: 1, pad: 'x'.repeat(150) } }));
  const sig = await crypto.subtle.sign(SIGN_ALG, pair.privateKey, body);
  const k1Bytes = crypto.getRandomValues(new Uint8Array(32));
  const k2Bytes = crypto.getRandomValues(new Uint8Array(32));
  const k1 = await crypto.subtle.importKey('raw', k1Bytes, { name: 'AES-KW' }, false, ['wrapKey']);
  const k2 = await crypto.subtle.importKey('raw', k2Bytes, { name: 'AES-GCM' }, true, ['encrypt']);
  const pub = KeyObject.from(pair.publicKey);
  const priv = KeyObject.from(pair.privateKey);
  const sigBytes = new Uint8Array(sig);
  const p1363 = { dsaEncoding: 'ieee-p1363' } as const;
  const nodeVerify = () => verify('sha256', body, { key: pub, ...p1363 }, sigBytes);
  const nodeSign = () => sign('sha256', body, { key: priv, ...p1363 });
  // RFC 3394 key wrap (AES-KW) as node:crypto does it, checked to give WebCrypto's bytes.
  const kwIv = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
  const nodeWrap = () => {
    const c = createCipheriv('id-aes256-wrap', k1Bytes, kwIv);
    return Buffer.concat([c.update(k2Bytes), c.final()]);
  };
  if (!nodeVerify() || !nodeWrap().equals(Buffer.from(await crypto.subtle.wrapKey('raw', k2, k1, 'AES-KW')))) throw new Error('node:crypto and WebCrypto disagree');
  const verifyRates = {
    webcrypto: await perCpuSecond(() => crypto.subtle.verify(SIGN_ALG, pair.publicKey, sig, body)),
    nodeCrypto: perCpuSecondSync(nodeVerify),
  };
  // A purchase at the merchant cannot cost less than its crypto: verify the order and the accept,
  // sign the wrapped key, wrap K2 with K1 (keys imported once).
  const purchaseRates = {
    webcrypto: await perCpuSecond(async () => {
      await crypto.subtle.verify(SIGN_ALG, pair.publicKey, sig, body);
      await crypto.subtle.verify(SIGN_ALG, pair.publicKey, sig, body);
      await crypto.subtle.sign(SIGN_ALG, pair.privateKey, body);
      await crypto.subtle.wrapKey('raw', k2, k1, 'AES-KW');
    }),
    nodeCrypto: perCpuSecondSync(() => {
      nodeVerify();
      nodeVerify();
      nodeSign();
      nodeWrap();
    }),
  };
  const best = (r: { webcrypto: number; nodeCrypto: number }) => (r.nodeCrypto >= r.webcrypto ? 'nodeCrypto' : 'webcrypto') as keyof typeof r;
  const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
  const spki = toBase64Url(new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey)));
  return {
    verifyPerCpuS: verifyRates[best(verifyRates)],
    verifyBy: best(verifyRates),
    verifyRates,
    purchaseFloorPerCpuS: purchaseRates[best(purchaseRates)],
    purchaseBy: best(purchaseRates),
    purchaseRates,
    chainKey: { jwk, spki },
  };
}

// ── one engine ───────────────────────────────────────────────────────────────────────────

interface Cpu {
  ops: number;
  shop: number;
  shoppers: number;
  opsDb: number;
  shopDb: number;
  opsServed: number;
  shopServed: number;
}
const minus = (a: Cpu, b: Cpu): Cpu => Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof Cpu] - b[k as keyof Cpu]])) as unknown as Cpu;

async function runEngine(engine: Engine, floors: Awaited<ReturnType<typeof cryptoFloors>>) {
  let opsPg: TestPostgres | undefined;
  let shopPg: TestPostgres | undefined;
  const figures: Record<string, unknown> = {};
  if (engine === 'PostgreSQL') {
    // Durable servers, as in production: every commit waits for its WAL flush.
    [opsPg, shopPg] = await Promise.all([startTestPostgres({ durable: true }), startTestPostgres({ durable: true })]);
    // The floor of every figure that commits: one-row transactions on the operators' server, idle.
    const scratch = await opsPg.createDatabase('commit_floor');
    const commitFloor: Record<string, number> = {};
    for (const c of [1, 8, 32]) commitFloor[`c${c}`] = await postgresCommitRate(scratch, c);
    figures.commitFloor = commitFloor;
    log(`${engine}: commit floor (one-row INSERTs, each committed): ${[1, 8, 32].map((c) => `${c} connection(s) ${fmt(commitFloor[`c${c}`]!)}/s`).join(', ')}`);
    // The acquirer's ledger booking of clearings alone: whether hot rows or commits would stop clearing.
    const ledger = await ledgerClearingRates(opsPg, [1, 8, 32], Math.max(200, Math.round(2000 * SCALE)));
    figures.ledgerClearing = ledger;
    log(`${engine}: clearings booked by the ledger alone: ${Object.values(ledger).map((l) => `${l.connections} connection(s) ${fmt(l.perSecond)}/s`).join(', ')}`);
  }
  const portOf = (pg?: TestPostgres) => (pg ? Number(new URL(pg.url).port) : undefined);
  const [ops, shop, shoppers] = await Promise.all([spawnRole('operators'), spawnRole('shop'), spawnRole('shoppers')]);
  const dbCpu = (pg?: TestPostgres) => (pg ? (postgresCpuMs(portOf(pg)!) ?? 0) : 0);
  const sample = async (): Promise<Cpu> => {
    const [o, s, c] = await Promise.all([ops.call<{ cpuMs: number; served: number }>('cpu'), shop.call<{ cpuMs: number; served: number }>('cpu'), shoppers.call<{ cpuMs: number }>('cpu')]);
    return { ops: o.cpuMs, shop: s.cpuMs, shoppers: c.cpuMs, opsDb: dbCpu(opsPg), shopDb: dbCpu(shopPg), opsServed: o.served, shopServed: s.served };
  };
  try {
    const o = await ops.call<{ sekUrl: string; eurUrl: string; root: string }>('operators', {
      ...(opsPg ? { sekDb: await opsPg.createDatabase(), eurDb: await opsPg.createDatabase() } : {}),
    });
    const s = await shop.call<{ moduleUrl: string; origin: string; products: { productId: string; price: string }[] }>('shop', {
      eurUrl: o.eurUrl,
      ...(shopPg ? { db: shopPg.url } : {}),
    });
    await shoppers.call('shoppers', { ...o, ...s, count: 32 });
    log(`${engine}: world up, 32 shoppers registered and funded`);

    // 1. Purchases inside an open deposit: the merchant's CPU (and its database's) per purchase.
    const purchase: Record<string, unknown> = {};
    for (const [c, each] of FIGURES.has('purchase') ? ([[1, 150], [8, 30], [32, 10]] as const) : []) {
      await shoppers.call('buy', { shoppers: c, each: 2, warm: 1 }); // opens the deposits, warms caches
      await shop.call('sql');
      const before = await sample();
      const r = await shoppers.call<{ wallMs: number; count: number; latencies: number[]; shopperCpuMs: number }>('buy', { shoppers: c, each: Math.ceil(each * SCALE) });
      const d = minus(await sample(), before);
      const merchantCpuMs = (d.shop + d.shopDb) / r.count;
      purchase[`c${c}`] = {
        shoppers: c,
        purchases: r.count,
        perSecond: r.count / (r.wallMs / 1000),
        merchantCpuMsPerPurchase: merchantCpuMs,
        merchantPerCpuSecond: 1000 / merchantCpuMs,
        // Split: the shop's Node process against its PostgreSQL server (0 on PGlite, inside the process).
        merchantProcessCpuMsPerPurchase: d.shop / r.count,
        merchantDbCpuMsPerPurchase: d.shopDb / r.count,
        walletCpuMsPerPurchase: d.shoppers / r.count,
        operatorRequests: d.opsServed,
        merchantRequestsPerPurchase: d.shopServed / r.count,
        p50Ms: percentile(r.latencies, 50),
        p95Ms: percentile(r.latencies, 95),
      };
      log(`${engine}: purchases, ${c} shopper(s): ${fmt(r.count / (r.wallMs / 1000))}/s, merchant ${merchantCpuMs.toFixed(2)} ms CPU each (process ${(d.shop / r.count).toFixed(2)}, database ${(d.shopDb / r.count).toFixed(2)}), wallet ${(d.shoppers / r.count).toFixed(2)}, ${d.opsServed} operator requests`);
      if (process.env.BENCH_SQL_COUNT) for (const [sql, n] of Object.entries(await shop.call<Record<string, number>>('sql'))) log(`  ${(n / r.count).toFixed(2)} × ${sql}`);
    }
    if (FIGURES.has('purchase')) figures.purchase = purchase;

    // 2. Session open (FIG 2 across the three processes) against three signed hops; then the same
    //    opens with 1, 8 and 32 shoppers at once (each shopper's opens one after the other).
    if (FIGURES.has('sessionOpen')) {
      const hop3 = await shop.call<{ url: string }>('chainHop', { key: floors.chainKey });
      const hop2 = await ops.call<{ url: string }>('chainHop', { key: floors.chainKey, next: hop3.url });
      const hop1 = await ops.call<{ url: string }>('chainHop', { key: floors.chainKey, next: hop2.url });
      const chain = await shoppers.call<{ latencies: number[] }>('chain', { key: floors.chainKey, url: hop1.url, count: 60 });
      await shoppers.call('open', { shoppers: 1, each: 3 }); // warm
      const byShoppers: Record<string, unknown> = {};
      let single: { latencies: number[]; cpu: Cpu } | undefined;
      for (const [c, each] of [[1, 30], [8, 4], [32, 2]] as const) {
        await Promise.all([ops.call('sql'), shop.call('sql'), shoppers.call('sql')]);
        const before = await sample();
        // Kept open until the CPU is read: ending a deposit is clearing's cost, not the open's.
        const opens = await shoppers.call<{ latencies: number[]; wallMs: number; count: number }>('open', { shoppers: c, each: Math.ceil(each * SCALE), keepOpen: true });
        const d = minus(await sample(), before);
        const n = opens.count;
        if (c === 1) single = { latencies: opens.latencies, cpu: d };
        if (process.env.BENCH_SQL_COUNT && c === 1) {
          for (const role of [ops, shop, shoppers]) {
            for (const [sql, k] of Object.entries(await role.call<Record<string, number>>('sql'))) log(`  ${role.name}: ${(k / n).toFixed(2)} × ${sql}`);
          }
        }
        byShoppers[`c${c}`] = {
          shoppers: c,
          opens: n,
          perSecond: n / (opens.wallMs / 1000),
          p50Ms: percentile(opens.latencies, 50),
          p95Ms: percentile(opens.latencies, 95),
          cpuMsPerOpen: (d.ops + d.shop + d.shoppers + d.opsDb + d.shopDb) / n,
          operatorCpuMsPerOpen: (d.ops + d.opsDb) / n,
          shopCpuMsPerOpen: (d.shop + d.shopDb) / n,
          walletCpuMsPerOpen: d.shoppers / n,
        };
        log(
          `${engine}: session opens, ${c} shopper(s): ${fmt(n / (opens.wallMs / 1000))}/s, p50 ${percentile(opens.latencies, 50).toFixed(1)} ms, p95 ${percentile(opens.latencies, 95).toFixed(1)} ms; ` +
            `CPU per open: operators ${((d.ops + d.opsDb) / n).toFixed(1)} ms, shop ${((d.shop + d.shopDb) / n).toFixed(1)} ms, wallet ${(d.shoppers / n).toFixed(1)} ms`,
        );
      }
      const one = single!;
      const n = one.latencies.length;
      figures.sessionOpen = {
        opens: n,
        p50Ms: percentile(one.latencies, 50),
        p95Ms: percentile(one.latencies, 95),
        chainP50Ms: percentile(chain.latencies, 50),
        cpuMsPerOpen: (one.cpu.ops + one.cpu.shop + one.cpu.shoppers + one.cpu.opsDb + one.cpu.shopDb) / n,
        operatorCpuMsPerOpen: (one.cpu.ops + one.cpu.opsDb) / n,
        byShoppers,
      };
      log(`${engine}: session open p50 ${percentile(one.latencies, 50).toFixed(1)} ms, three signed hops p50 ${percentile(chain.latencies, 50).toFixed(1)} ms`);
      await shoppers.call('endAll', { shoppers: 32 });
      await shop.call('settled');
    }

    // 3. Operator CPU per purchase with 1, 10, 20, 100 purchases per deposit (open + purchases + end + clearing),
    //    then the 20-per-deposit cycle with 1, 8 and 32 shoppers at once: its throughput.
    const perDeposit: Record<string, unknown> = {};
    // One uncounted cycle first, so the model (1 per deposit, measured first) is not the one that
    // pays for cold code and fresh connections; 20 per deposit, the target's figure, gets 8 sessions.
    if (FIGURES.has('perDeposit')) {
      await shoppers.call('cycle', { shoppers: 4, deposits: 1, k: 1 });
      await shop.call('settled');
    }
    for (const [k, deposits] of FIGURES.has('perDeposit') ? ([[1, 6], [10, 2], [20, 2], [100, 1]] as const) : []) {
      const before = await sample();
      const r = await shoppers.call<{ wallMs: number; purchases: number }>('cycle', { shoppers: 4, deposits: Math.max(1, Math.round(deposits * SCALE)), k });
      await shop.call('settled');
      const d = minus(await sample(), before);
      perDeposit[`k${k}`] = { k, purchases: r.purchases, operatorCpuMsPerPurchase: (d.ops + d.opsDb) / r.purchases, operatorRequestsPerPurchase: d.opsServed / r.purchases };
      log(`${engine}: ${k} purchase(s) per deposit: operators ${((d.ops + d.opsDb) / r.purchases).toFixed(2)} ms CPU per purchase`);
    }
    if (FIGURES.has('perDeposit')) {
      figures.perDeposit = perDeposit;
      const throughput: Record<string, unknown> = {};
      for (const [c, deposits] of [[1, 3], [8, 1], [32, 1]] as const) {
        const before = await sample();
        const r = await shoppers.call<{ wallMs: number; purchases: number }>('cycle', { shoppers: c, deposits: Math.max(1, Math.round(deposits * SCALE)), k: 20 });
        await shop.call('settled');
        const d = minus(await sample(), before);
        throughput[`c${c}`] = {
          shoppers: c,
          k: 20,
          purchases: r.purchases,
          perSecond: r.purchases / (r.wallMs / 1000),
          operatorCpuMsPerPurchase: (d.ops + d.opsDb) / r.purchases,
          merchantCpuMsPerPurchase: (d.shop + d.shopDb) / r.purchases,
        };
        log(`${engine}: 20 per deposit, ${c} shopper(s): ${fmt(r.purchases / (r.wallMs / 1000))} purchases/s (deposit, purchases, end, clearing), operators ${((d.ops + d.opsDb) / r.purchases).toFixed(2)} ms CPU per purchase`);
      }
      figures.perDepositThroughput = throughput;
    }

    // 4. Clearing: 1, 8 and 32 shoppers end their deposits at once; done when every record is cleared.
    if (FIGURES.has('clearing')) {
      const byShoppers: Record<string, Record<string, number>> = {};
      for (const [c, deposits] of [[1, 12], [8, 4], [32, 4]] as const) {
        await shoppers.call('prepareClearing', { shoppers: c, deposits: Math.max(1, Math.round(deposits * SCALE)) });
        await Promise.all([ops.call('sql'), shop.call('sql')]);
        const before = await sample();
        const t0 = performance.now();
        const ended = await shoppers.call<{ count: number; retries: number }>('endAll', { shoppers: c });
        await shop.call('settled');
        const clearMs = performance.now() - t0;
        const d = minus(await sample(), before);
        byShoppers[`c${c}`] = {
          shoppers: c,
          clearings: ended.count,
          perSecond: ended.count / (clearMs / 1000),
          // Two operators clear each session (the acquirer and the customer's account manager).
          perSecondPerOperator: ended.count / (clearMs / 1000),
          operatorCpuMsPerClearing: (d.ops + d.opsDb) / ended.count,
          // Split: the operators' Node process against their PostgreSQL server.
          operatorProcessCpuMsPerClearing: d.ops / ended.count,
          operatorDbCpuMsPerClearing: d.opsDb / ended.count,
          shopCpuMsPerClearing: (d.shop + d.shopDb) / ended.count,
          walletCpuMsPerClearing: d.shoppers / ended.count,
          retries: ended.retries,
        };
        log(`${engine}: clearing ${ended.count} sessions with ${c} shopper(s): ${fmt(ended.count / (clearMs / 1000))}/s, operators ${((d.ops + d.opsDb) / ended.count).toFixed(1)} ms CPU each, shop ${((d.shop + d.shopDb) / ended.count).toFixed(1)}, wallet ${(d.shoppers / ended.count).toFixed(1)}; ${ended.retries} ends sent again after UNAVAILABLE`);
        if (process.env.BENCH_SQL_COUNT) {
          for (const role of [ops, shop]) {
            for (const [sql, n] of Object.entries(await role.call<Record<string, number>>('sql'))) log(`  ${role.name}: ${(n / ended.count).toFixed(2)} × ${sql}`);
          }
        }
      }
      figures.clearing = { ...byShoppers.c32, byShoppers };
    }
  } finally {
    await Promise.all([ops, shop, shoppers].map((r) => r.call('close').catch(() => undefined)));
    await Promise.all([opsPg?.stop(), shopPg?.stop()]);
  }
  return figures;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}
function log(line: string): void {
  console.log(`  ${line}`);
}

const started = performance.now();
const { cpus, loadavg } = await import('node:os');
const loadAtStart = loadavg();
const floors = await cryptoFloors();
const rates = (r: { webcrypto: number; nodeCrypto: number }) => `node:crypto ${fmt(r.nodeCrypto)}, WebCrypto ${fmt(r.webcrypto)}`;
log(`floors: P-256 verify ${fmt(floors.verifyPerCpuS)}/CPU-s by ${floors.verifyBy} (${rates(floors.verifyRates)})`);
log(`        purchase crypto (2 verifies, 1 sign, 1 wrap) ${fmt(floors.purchaseFloorPerCpuS)}/CPU-s by ${floors.purchaseBy} (${rates(floors.purchaseRates)})`);
const engines: Record<string, unknown> = {};
for (const engine of ENGINES) engines[engine] = await runEngine(engine, floors);
const result = {
  node: process.version,
  cpus: cpus().length,
  load: { start: loadAtStart, end: loadavg() },
  at: new Date().toISOString(),
  seconds: (performance.now() - started) / 1000,
  floors: {
    verifyPerCpuSecond: floors.verifyPerCpuS,
    purchaseCryptoPerCpuSecond: floors.purchaseFloorPerCpuS,
    // Which of Node's two crypto APIs gave the floor, and both rates.
    verifyBy: floors.verifyBy,
    verifyRates: floors.verifyRates,
    purchaseCryptoBy: floors.purchaseBy,
    purchaseCryptoRates: floors.purchaseRates,
  },
  engines,
};
mkdirSync(fileURLToPath(new URL('../../bench-results/', import.meta.url)), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
log(`backend figures written to ${OUT} (${result.seconds.toFixed(0)} s)`);
