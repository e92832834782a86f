// Clearings per second on PostgreSQL with 1, 8 and 32 clearing at once (issue 13: hot rows must
// not serialize clearing). Each clearing is the acquirer's booking of FIG 3 step 10 in its own
// database transaction: one deposit of one merchant is posted — the merchant credited, the
// customer operator's inter-operator account debited — the two accounts every clearing of that
// merchant touches, spread over shard rows (ledger.ts SHARDS). Run:
// `npx tsx backend/bench/clearing.bench.ts` (BENCH_CLEARINGS, BENCH_CONCURRENCY to change the run).
import { openDb } from '../src/store/db.ts';
import { Ledger } from '../src/store/ledger.ts';
import { migrate } from '../src/store/migrate.ts';
import { startTestPostgres } from '../test/support/testPostgres.ts';

const CLEARINGS = Number(process.env.BENCH_CLEARINGS ?? 600);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,8,32').split(',').map(Number);
const deposit = { currency: 'EUR', value: 500n };
const charged = { currency: 'EUR', value: 320n };

const pg = await startTestPostgres();
try {
  for (const [n, concurrency] of LEVELS.entries()) {
    const url = await pg.createDatabase(`clearing_${n}`);
    const db = await openDb({ databaseUrl: url, poolSize: concurrency });
    await migrate(db);
    const ledger = new Ledger(db);
    await ledger.openAccount({ id: 'merchant:news', kind: 'merchant', currency: 'EUR' });
    await ledger.openAccount({ id: 'peer:op-sek:EUR', kind: 'inter_operator', currency: 'EUR' });
    // The deposits are reserved first (not timed): clearing is what is measured.
    for (let i = 0; i < CLEARINGS; i++) {
      await ledger.reserve({
        id: `acq-deposit:t${i}`,
        kind: 'acquirer-deposit',
        debit: 'peer:op-sek:EUR',
        credit: 'merchant:news',
        amount: deposit,
        expiresAt: Date.now() + 3_600_000,
      });
    }
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < CLEARINGS; i = next++) {
        // What the acquirer's clearing books: the merchant is paid what was proven, the unused
        // part stays with the customer's operator.
        await db.transaction((tx) => ledger.postIn(tx, `acq-deposit:t${i}`, charged), { isolation: 'read committed' });
      }
    };
    const t = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (performance.now() - t) / 1000;
    const report = await ledger.audit();
    if (!report.ok) throw new Error(`the ledger is unsound after the run: ${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
    console.log(`${String(concurrency).padStart(2)} at once: ${(CLEARINGS / seconds).toFixed(0).padStart(6)} clearings/s (${CLEARINGS} in ${seconds.toFixed(2)} s)`);
    await db.close();
  }
} finally {
  await pg.stop();
}
