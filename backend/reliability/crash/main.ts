/**
 * `npm run reliability:crash -w @obol/backend -- [--seed N] [--db pglite|postgres] [--sessions N] [--kills N] [--shoppers N] [--keep]`:
 * one crash trial; prints what happened and exits non-zero on any invariant violation.
 */
import { parseArgs } from 'node:util';
import { type CrashTrialOptions, runCrashTrial, summaryLine } from './trial.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    db: { type: 'string' },
    sessions: { type: 'string' },
    kills: { type: 'string' },
    shoppers: { type: 'string' },
    keep: { type: 'boolean' },
  },
});

function count(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not ${text}`);
  return n;
}

if (values.db !== undefined && values.db !== 'pglite' && values.db !== 'postgres') throw new Error(`--db is pglite or postgres, not ${values.db}`);
const startedAt = Date.now();
const options: CrashTrialOptions = {
  seed: count('seed', values.seed) ?? Math.floor(Math.random() * 1_000_000),
  db: values.db ?? 'pglite',
  log: (line) => console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${line}`),
};
const sessions = count('sessions', values.sessions);
const kills = count('kills', values.kills);
const shoppers = count('shoppers', values.shoppers);
if (sessions !== undefined) options.sessions = sessions;
if (kills !== undefined) options.kills = kills;
if (shoppers !== undefined) options.shoppers = shoppers;
if (values.keep) options.keep = true;

const summary = await runCrashTrial(options);
for (const n of summary.notes) console.log(`note: ${n}`);
for (const v of summary.violations) console.log(`VIOLATION ${v}`);
console.log(
  `seed ${summary.seed} on ${summary.db}: ${summary.shoppers} shoppers, ${summary.completed} purchases completed, ${summary.gaveUp} given up, ` +
    `${summary.billingRecords} billing records, failed tries ${JSON.stringify(summary.failedTries)}, ${Math.round(summary.durationMs / 1000)} s` +
    (options.keep ? `, kept in ${summary.dir}` : ''),
);
console.log(summaryLine(summary));
if (summary.violations.length > 0 || summary.moneyLost !== 0n) process.exitCode = 1;
