/**
 * The crash trial, small (issue 11 item 3): real operator and shop processes killed with SIGKILL
 * while shoppers buy, restarted on the same data, on PGlite and on PostgreSQL; afterwards every
 * invariant holds. The full-size run is `npm run reliability:crash -w @obol/backend`.
 */
import { describe, expect, it } from 'vitest';
import { type CrashDb, runCrashTrial, summaryLine } from './trial.ts';

describe.each<CrashDb>(['pglite', 'postgres'])('crash and restart on %s', (db) => {
  // Minutes, not seconds: four server processes start (PGlite's first start alone costs seconds),
  // each killed one restarts, and a session no side reported waits out the clearing grace.
  it('keeps money, clearing and billing exact across kill -9 of operators and shops', { timeout: 1_200_000 }, async () => {
    const summary = await runCrashTrial({ seed: 11, db, sessions: 16, kills: 3, shoppers: 4 });
    expect(summary.violations, summaryLine(summary)).toEqual([]);
    expect(summary.moneyLost).toBe(0n);
    expect(summary.crashes).toBe(3);
    expect(summary.sessions).toBeGreaterThanOrEqual(16);
    expect(summary.completed).toBeGreaterThan(0);
    expect(summary.purchases).toBeGreaterThanOrEqual(summary.completed);
  });
});
