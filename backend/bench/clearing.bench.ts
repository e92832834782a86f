// The acquirer's booking of clearings alone, on PostgreSQL, with 1, 8 and 32 at once (issue 13:
// hot rows must not serialize clearing). Each clearing is FIG 3 step 10's ledger posting in its own
// database transaction: one deposit of one merchant is posted — the merchant credited, the
// customer operator's inter-operator account debited — the two accounts every clearing of that
// merchant touches, spread over shard rows (ledger.ts SHARDS). Without HTTP, signatures or the
// other roles, it shows whether the rows or the database's commits limit clearing. Part of
// `npm run bench` (purchases.bench.ts); alone: `npx tsx backend/bench/clearing.bench.ts`
// (BENCH_CLEARINGS, BENCH_CONCURRENCY to change the run).
import { fileURLToPath } from 'node:url';
import { openDb } from '../src/store/db.ts';
import { Ledger } from '../src/store/ledger.ts';
import { migrate } from '../src/store/migrate.ts';
import { type TestPostgres, cpuMs, startTestPostgres } from './support.ts';

const deposit = { currency: 'EUR', value: 500n };
const charged = { currency: 'EUR', value: 320n };

export interface LedgerClearingFigure {
  connections: number;
  clearings: number;
  perSecond: number;
  /** This process's CPU per clearing (the pg client), without the server's. */
  clientCpuMsPerClearing: number;
}

/** Clearings booked per second on `pg` with each number of connections in `levels`. */
export async function ledgerClearingRates(pg: TestPostgres, levels: number[], clearings: number): Promise<Record<string, LedgerClearingFigure>> {
  const out: Record<string, LedgerClearingFigure> = {};
  for (const [n, concurrency] of levels.entries()) {
    const url = await pg.createDatabase(`ledger_clearing_${n}`);
    const db = await openDb({ databaseUrl: url, poolSize: concurrency });
    try {
      await migrate(db);
      const ledger = new Ledger(db);
      await ledger.openAccount({ id: 'merchant:news', kind: 'merchant', currency: 'EUR' });
      await ledger.openAccount({ id: 'peer:op-sek:EUR', kind: 'inter_operator', currency: 'EUR' });
      // The deposits are reserved first (not timed): clearing is what is measured.
      for (let i = 0; i < clearings; i++) {
        await ledger.reserve({
          id: `acq-deposit:t${i}`,
          kind: 'acquirer-deposit',
          debit: 'peer:op-sek:EUR',
          credit: 'merchant:news',
          amount: deposit,
          expiresAt: Date.now() + 3_600_000,
        });
      }
      // Every connection opened and its statements prepared before the clock starts (the first
      // clearing on each connection pays for both): the steady rate is what is measured.
      const warm = Math.min(concurrency, clearings);
      await Promise.all(
        Array.from({ length: warm }, (_, i) => db.transaction((tx) => ledger.postIn(tx, `acq-deposit:t${i}`, charged), { isolation: 'read committed' })),
      );
      let next = warm;
      const worker = async () => {
        for (let i = next++; i < clearings; i = next++) {
          // What the acquirer's clearing books: the merchant is paid what was proven, the unused
          // part stays with the customer's operator.
          await db.transaction((tx) => ledger.postIn(tx, `acq-deposit:t${i}`, charged), { isolation: 'read committed' });
        }
      };
      const c0 = cpuMs();
      const t = performance.now();
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - t) / 1000;
      const report = await ledger.audit();
      if (!report.ok) throw new Error(`the ledger is unsound after the run: ${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
      const timed = clearings - warm;
      out[`c${concurrency}`] = { connections: concurrency, clearings: timed, perSecond: timed / seconds, clientCpuMsPerClearing: (cpuMs() - c0) / timed };
    } finally {
      await db.close();
    }
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pg = await startTestPostgres({ durable: true });
  try {
    const rates = await ledgerClearingRates(pg, (process.env.BENCH_CONCURRENCY ?? '1,8,32').split(',').map(Number), Number(process.env.BENCH_CLEARINGS ?? 2000));
    for (const r of Object.values(rates)) console.log(`${String(r.connections).padStart(2)} at once: ${r.perSecond.toFixed(0).padStart(6)} clearings/s (${r.clearings})`);
  } finally {
    await pg.stop();
  }
}
