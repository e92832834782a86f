// Clearings per second on PostgreSQL with 1, 8 and 32 clearing at once (issue 13: hot rows must
// not serialize clearing). Each clearing is the acquirer's booking of FIG 3 step 10 in its own
// database transaction: one deposit of one merchant is posted, the merchant credited and the unused
// part returned to the customer operator's inter-operator account — the two accounts every
// clearing of that merchant touches. Run: `npx tsx backend/bench/clearing.bench.ts`.
import { openDb } from '../src/store/db.ts';
import { Ledger } from '../src/store/ledger.ts';
import { migrate } from '../src/store/migrate.ts';
import { startTestPostgres } from '../test/support/testPostgres.ts';

const CLEARINGS = Number(process.env.BENCH_CLEARINGS ?? 600);
const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,8,32').split(',').map(Number);
const deposit = { currency: 'EUR', value: 500n };
const charged = { currency: 'EUR', value: 320n };
const unused = { currency: 'EUR', value: 180n };

const pg = await startTestPostgres();
try {
  for (const concurrency of LEVELS) {
    const url = await pg.createDatabase(`clearing_${concurrency}`);
    const db = await openDb({ databaseUrl: url, poolSize: concurrency });
    await migrate(db);
    const ledger = new Ledger(db);
    await ledger.openAccount({ id: 'merchant:news', kind: 'merchant', currency: 'EUR' });
    await ledger.openAccount({ id: 'peer:op-sek:EUR', kind: 'inter_operator', currency: 'EUR' });
    // The deposits are opened first (not timed): clearing is what is measured.
    for (let i = 0; i < CLEARINGS; i++) {
      await ledger.openAccount({ id: `acq-held:t${i}`, kind: 'held_deposit', currency: 'EUR' });
      await ledger.transfer(`acq-reserve:t${i}`, 'acquirer-deposit', [
        { account: 'peer:op-sek:EUR', amount: { currency: 'EUR', value: -deposit.value } },
        { account: `acq-held:t${i}`, amount: deposit },
      ]);
    }
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < CLEARINGS; i = next++) {
        await db.transaction(
          (tx) =>
            ledger.transferIn(tx, `acq-clear:t${i}`, 'clear-merchant', [
              { account: `acq-held:t${i}`, amount: { currency: 'EUR', value: -deposit.value } },
              { account: 'merchant:news', amount: charged },
              { account: 'peer:op-sek:EUR', amount: unused },
            ]),
          { isolation: 'read committed' },
        );
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
