/**
 * `npm run reliability` — the deterministic simulation of the whole system under faults.
 *
 *   npm run reliability                      the long run (many seeds, long histories; < 15 min)
 *   npm run reliability -- --quick           the CI run: regression seeds and a fixed set (< 3 min)
 *   npm run reliability -- --seed 42         replay one seed exactly (add --steps N --shoppers N as printed)
 *
 * Seeds run in two worker processes; each worker opens its databases and key material once and
 * empties the databases between seeds. A failing seed is shrunk (re-run with fewer steps while
 * it still fails) and printed with its trace and the command that replays it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type RunOptions, type RunResult, runSeed } from './run.ts';
import { REGRESSIONS } from './regressions.ts';
import type { RunStats } from './faults.ts';
import { makeKeyMaterial } from './world.ts';

interface Job {
  seed: number;
  options: RunOptions;
}

const QUICK_SEEDS = [1, 2, 3, 4];
const QUICK: Omit<RunOptions, 'faults'> = { steps: 100, shoppers: 6 };
const LONG: Omit<RunOptions, 'faults'> = { steps: 600, shoppers: 6 };
/** One long history per run: few shoppers, many deposits each (hundreds per logon). */
const MARATHON: Omit<RunOptions, 'faults'> = { steps: 1500, shoppers: 3 };
const LONG_BUDGET_MS = 10 * 60_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function workerMain(): Promise<void> {
  const keys = await makeKeyMaterial();
  process.on('message', async (job: Job | 'exit') => {
    if (job === 'exit') process.exit(0);
    const result = await runSeed(keys, job.seed, job.options);
    process.send!(result);
  });
  process.send!('ready');
}

/** Two worker processes, fed one seed at a time. */
class Pool {
  private readonly workers: Array<ReturnType<typeof fork>> = [];
  private readonly idle: Array<ReturnType<typeof fork>> = [];
  private readonly waiting: Array<() => void> = [];

  async start(n: number): Promise<void> {
    const entry = fileURLToPath(import.meta.url);
    await Promise.all(
      Array.from({ length: n }, async () => {
        const w = fork(entry, ['--worker'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        await new Promise<void>((resolve) => w.once('message', () => resolve()));
        this.workers.push(w);
        this.idle.push(w);
      }),
    );
  }

  async run(job: Job): Promise<RunResult> {
    while (this.idle.length === 0) await new Promise<void>((r) => this.waiting.push(r));
    const w = this.idle.pop()!;
    try {
      return await new Promise<RunResult>((resolve, reject) => {
        w.once('message', (m) => resolve(m as RunResult));
        w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
        w.send(job);
      });
    } finally {
      w.removeAllListeners('exit');
      this.idle.push(w);
      this.waiting.shift()?.();
    }
  }

  send(job: Job): Promise<RunResult> {
    return this.run(job);
  }

  stop(): void {
    for (const w of this.workers) w.send('exit');
  }
}

function sum(into: RunStats, s: RunStats): void {
  into.steps += s.steps;
  into.messages += s.messages;
  into.faults += s.faults;
  into.crashes += s.crashes;
  into.purchases += s.purchases;
  into.deposits += s.deposits;
  into.refusedByFault += s.refusedByFault;
  into.forfeited += s.forfeited;
  into.refunds += s.refunds;
  into.maxDepositsPerLogon = Math.max(into.maxDepositsPerLogon, s.maxDepositsPerLogon);
  for (const [k, v] of Object.entries(s.byFault)) into.byFault[k as keyof RunStats['byFault']] = (into.byFault[k as keyof RunStats['byFault']] ?? 0) + (v ?? 0);
}

function replayCommand(r: RunResult): string {
  return `npm run reliability -- --seed ${r.seed} --steps ${r.options.steps} --shoppers ${r.options.shoppers}`;
}

function printFailure(r: RunResult): void {
  console.log(`\nFAILED seed ${r.seed} (${r.options.steps} steps, ${r.options.shoppers} shoppers): replay with\n  ${replayCommand(r)}`);
  for (const v of r.violations.slice(0, 20)) console.log(`  violation at step ${v.step}: ${v.invariant}: ${v.detail}`);
  console.log('  trace:');
  for (const line of r.trace) console.log(`    ${line}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--worker')) return workerMain();
  const started = Date.now();
  const quick = process.argv.includes('--quick');
  const seedArg = arg('seed');
  const pool = new Pool();
  const jobs: Job[] = [];
  if (seedArg !== undefined) {
    jobs.push({ seed: Number(seedArg), options: { steps: Number(arg('steps') ?? LONG.steps), shoppers: Number(arg('shoppers') ?? LONG.shoppers), faults: true } });
  } else if (quick) {
    for (const r of REGRESSIONS) jobs.push({ seed: r.seed, options: r.options });
    for (const seed of QUICK_SEEDS) jobs.push({ seed, options: { ...QUICK, faults: true } });
  } else {
    jobs.push({ seed: 1_000_001, options: { ...MARATHON, faults: true } });
    for (const r of REGRESSIONS) jobs.push({ seed: r.seed, options: r.options });
  }
  await pool.start(jobs.length === 1 ? 1 : 2);
  const total: RunStats = { steps: 0, messages: 0, faults: 0, crashes: 0, byFault: {}, purchases: 0, deposits: 0, refusedByFault: 0, forfeited: 0, maxDepositsPerLogon: 0, refunds: 0 };
  const failures: RunResult[] = [];
  let seeds = 0;
  let cpuMs = 0;
  const runStart = Date.now();
  const done = (r: RunResult) => {
    seeds++;
    cpuMs += r.cpuMs;
    sum(total, r.stats);
    const status = r.violations.length === 0 ? 'ok' : `${r.violations.length} violation(s)`;
    console.log(
      `seed ${r.seed}: ${r.stats.steps} steps, ${r.stats.messages} messages, ${r.stats.faults} faults, ${r.stats.crashes} crashes, ${r.stats.purchases} purchases, ${r.deposits} deposits, trace ${r.digest}: ${status}`,
    );
    if (r.violations.length > 0) failures.push(r);
  };
  // Fixed jobs first, then (long run) more seeds while the time budget lasts.
  let next = 1;
  const queue = [...jobs];
  const more = () => !quick && seedArg === undefined && Date.now() - started < LONG_BUDGET_MS;
  await Promise.all(
    [0, 1].map(async () => {
      for (;;) {
        const job = queue.shift() ?? (more() ? { seed: next++, options: { ...LONG, faults: true } } : undefined);
        if (!job) return;
        done(await pool.send(job));
      }
    }),
  );
  // Shrink each failure: the same seed with fewer steps, while it still fails.
  for (let i = 0; i < failures.length; i++) {
    let best = failures[i]!;
    let lo = 0;
    let hi = Math.min(best.options.steps, Math.max(...best.violations.map((v) => v.step)));
    for (let tries = 0; tries < 6 && hi - lo > 1; tries++) {
      const mid = Math.floor((lo + hi) / 2);
      const r = await pool.send({ seed: best.seed, options: { ...best.options, steps: mid } });
      if (r.violations.length > 0) {
        best = r;
        hi = mid;
      } else lo = mid;
    }
    failures[i] = best;
  }
  pool.stop();
  for (const f of failures) printFailure(f);
  const minutes = (Date.now() - runStart) / 60_000;
  console.log(`\nwall time: ${((Date.now() - started) / 60_000).toFixed(1)} min (workers' start included)`);
  console.log(`faults by kind: ${JSON.stringify(total.byFault)}`);
  console.log(`purchases: ${total.purchases}, deposits: ${total.deposits} (at most ${total.maxDepositsPerLogon} on one logon), purchases refused by injected faults: ${total.refusedByFault}, claims forfeited by merchants away past a deadline: ${total.forfeited}, refunds after clearing: ${total.refunds}`);
  // The machine is shared: the CPU time the workers got says what a dedicated 2-core machine does.
  const perCpuMinute = total.messages / (cpuMs / 60_000);
  console.log(
    `messages per minute: ${Math.round(total.messages / minutes)} (${total.messages} in ${minutes.toFixed(1)} min, 2 workers); ` +
      `${Math.round(perCpuMinute)} per CPU-minute of the workers (${(cpuMs / 60_000).toFixed(1)} CPU-min)`,
  );
  const violations = failures.reduce((n, f) => n + f.violations.length, 0);
  const moneyLost = failures.filter((f) => f.violations.some((v) => /ledger|pays|paid|billing|held|positions/.test(v.invariant))).length;
  console.log(
    `seeds: ${seeds}, steps: ${total.steps}, messages: ${total.messages}, faults injected: ${total.faults}, crashes: ${total.crashes}, invariant violations: ${violations}, money lost: ${moneyLost}`,
  );
  process.exitCode = failures.length > 0 ? 1 : 0;
}

await main();
