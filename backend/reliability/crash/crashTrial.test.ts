/**
 * The crash trial, small (issue 11 item 3): real operator and shop processes killed with SIGKILL
 * while shoppers buy, restarted on the same data, on PGlite and on PostgreSQL; afterwards every
 * invariant holds. The full-size run is `npm run reliability:crash -w @obol/backend`.
 */
import { describe, expect, it } from 'vitest';
import { type CrashDb, runCrashTrial, summaryLine } from './trial.ts';

describe.each<CrashDb>(['pglite', 'postgres'])('crash and restart on %s', (db) => {
  it('keeps money, clearing and billing exact across kill -9 of operators and shops', { timeout: 400_000 }, async () => {
    const summary = await runCrashTrial({ seed: 11, db, sessions: 30, kills: 4, shoppers: 8 });
    expect(summary.violations, summaryLine(summary)).toEqual([]);
    expect(summary.moneyLost).toBe(0n);
    expect(summary.crashes).toBe(4);
    expect(summary.sessions).toBeGreaterThanOrEqual(30);
    expect(summary.purchases).toBeGreaterThan(summary.sessions);
  });
});
