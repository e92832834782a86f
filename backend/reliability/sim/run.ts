import { createHash } from 'node:crypto';
import { ManualClock } from '@obol/protocol/clock';
import { settleDeadlines } from '../../src/operator/acquirer.ts';
import { releaseStalledInitiations } from '../../src/operator/accountManager.ts';
import { FAULTS, NO_FAULTS, type RunStats, newStats } from './faults.ts';
import { type Violation, checkFinal, checkLedgers } from './invariants.ts';
import { SimNetwork } from './network.ts';
import { Prng, seedPlatformRandom } from './prng.ts';
import { Trace } from './trace.ts';
import { ACTION_WEIGHTS, describe, ensureRecovered } from './workload.ts';
import { type KeyMaterial, SIM_START, World } from './world.ts';
import { runAction } from './workload.ts';

export interface RunOptions {
  steps: number;
  shoppers: number;
  /** Inject faults (off: the same workload on a perfect network, for comparison). */
  faults: boolean;
}

export interface RunResult {
  seed: number;
  options: RunOptions;
  stats: RunStats;
  violations: Violation[];
  trace: string[];
  /** Transactions (deposits) opened at the account managers. */
  deposits: number;
  /** CPU time the run took in its process (all threads: crypto runs on libuv's pool), milliseconds. */
  cpuMs: number;
  /** A digest of the whole trace: two runs of one seed with one build print the same (replay is exact). */
  digest: string;
}

/**
 * One seed, one whole history: the world starts, `steps` actions run one at a time with faults,
 * the ledgers are audited after every step; then the faults stop, every party comes back, the
 * clock passes every deadline with the timers' work done as steps, and the final invariants are
 * checked. Stops at the first violation.
 */
export async function runSeed(keys: KeyMaterial, seed: number, options: RunOptions): Promise<RunResult> {
  const root = new Prng(seed);
  const scheduler = root.fork();
  const restoreRandom = seedPlatformRandom(root.fork());
  const stats = newStats();
  const trace = new Trace();
  const clock = new ManualClock(SIM_START);
  const world = new World(keys, clock, scheduler, stats, trace);
  world.net = new SimNetwork(scheduler.fork(), clock, world, stats, trace);
  const violations: Violation[] = [];
  const cpuStart = process.cpuUsage();
  const cpuMs = () => {
    const u = process.cpuUsage(cpuStart);
    return (u.user + u.system) / 1000;
  };
  try {
    await world.start(options.shoppers);
    if (options.faults) {
      world.net.rates = FAULTS;
      for (const op of world.operators.values()) op.sink.rates = FAULTS;
    }
    for (let step = 1; step <= options.steps && violations.length === 0; step++) {
      world.step = step;
      world.returnShops();
      stats.steps++;
      const action = scheduler.weighted(ACTION_WEIGHTS);
      try {
        violations.push(...(await runAction(world, action)));
        // Work a party started in the background (a merchant's report) belongs to this step.
        for (const shop of world.shops.values()) await shop.agent?.settled();
      } catch (e) {
        violations.push({ step, invariant: 'no unexpected error', detail: `${action}: ${describe(e)}` });
      }
      violations.push(...(await checkLedgers(world)));
    }
    if (violations.length === 0) {
      trace.begin(options.steps + 1, 'faults stop; everyone comes back; the clock passes every deadline');
      world.step = options.steps + 1;
      await quiesce(world);
      violations.push(...(await checkFinal(world)));
    }
    let deposits = 0;
    for (const op of world.operators.values()) {
      const rows = await op.db.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM am_transactions GROUP BY session_id');
      for (const r of rows) {
        deposits += r.n;
        stats.maxDepositsPerLogon = Math.max(stats.maxDepositsPerLogon, r.n);
      }
    }
    stats.deposits = deposits;
    return { seed, options, stats, violations, trace: violations.length > 0 ? trace.lines : [], deposits, cpuMs: cpuMs(), digest: digestOf(trace.lines) };
  } catch (e) {
    violations.push({ step: world.step, invariant: 'no unexpected error', detail: describe(e) });
    return { seed, options, stats, violations, trace: trace.lines, deposits: 0, cpuMs: cpuMs(), digest: digestOf(trace.lines) };
  } finally {
    await world.close().catch(() => undefined);
    restoreRandom();
  }
}

/**
 * The end of a run: no more faults; held-back requests arrive; every party is up; live wallets
 * recover and end their sessions; then the clock moves past session timers, clearing grace and
 * retry back-offs, with the sweeps, settlements and billing rounds run each time, until nothing
 * is left to do (bounded: a transaction still open after that is a violation, not a hang).
 */
async function quiesce(world: World): Promise<void> {
  world.net.rates = NO_FAULTS;
  for (const op of world.operators.values()) op.sink.rates = NO_FAULTS;
  while (world.net.held.length > 0) world.trace.note(`held request: ${await world.net.deliverHeld()}`);
  for (const shop of world.shops.values()) shop.awayUntil = 0;
  world.returnShops();
  for (const w of world.wallets) {
    if (w.abandoned) continue;
    w.needsRecover = true;
    await ensureRecovered(world, w);
    for (const tx of await w.store.listTransactions()) {
      if (tx.state !== 'open' || !tx.transactionId) continue;
      try {
        await w.agent.endTransaction(tx.transactionId, 'wallet');
      } catch (e) {
        world.trace.note(`${w.name} end ${tx.transactionId}: ${describe(e)}`);
      }
    }
  }
  for (let round = 0; round < 12; round++) {
    world.clock.advance(round < 4 ? 15 * 60_000 : 2 * 3_600_000);
    for (const shop of world.shops.values()) {
      await shop.agent!.sweep();
      await shop.agent!.settled();
    }
    for (const op of world.operators.values()) {
      await settleDeadlines(op.server!.ctx);
      await releaseStalledInitiations(op.server!.ctx);
    }
    for (const w of world.wallets) {
      if (w.abandoned) continue;
      const steps = await w.agent.recover();
      for (const s of steps) if (s.error) world.trace.note(`${w.name} recover ${s.transactionId ?? s.id}: ${s.error.name} ${s.error.message}`);
    }
    for (const op of world.operators.values()) await op.server!.billing.dispatchDue();
  }
}

function digestOf(lines: readonly string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}
