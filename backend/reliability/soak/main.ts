import { runSoak } from './soak.ts';

/**
 * `npm run reliability:soak -w @obol/backend -- [--minutes N] [--agents N] [--db pglite|postgres]
 * [--window-sec N] [--seed N]`: runs the soak (soak.ts), prints the figures per window and the
 * verdict; exits 1 with the reasons when memory or latency creeps, or anything failed.
 * PostgreSQL: `--db postgres` starts a throwaway server, or uses DATABASE_URL's server when set.
 */
function parse(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [key, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    const next = argv[i + 1];
    if (inline !== undefined) out[key] = inline;
    else if (next !== undefined && !next.startsWith('--')) {
      out[key] = next;
      i++;
    } else out[key] = ''; // a flag
  }
  return out;
}

const KNOWN = new Set(['verbose', 'minutes', 'agents', 'db', 'window-sec', 'seed', 'hostile-share']);
const args = parse(process.argv.slice(2));
for (const k of Object.keys(args)) if (!KNOWN.has(k)) throw new Error(`unknown option --${k} (known: ${[...KNOWN].map((x) => `--${x}`).join(' ')})`);
const num = (k: string) => (args[k] === undefined ? undefined : Number(args[k]));
const db = args.db ?? (process.env.DATABASE_URL ? 'postgres' : 'pglite');
if (db !== 'pglite' && db !== 'postgres') throw new Error('--db is pglite or postgres');

const result = await runSoak({
  ...(num('minutes') !== undefined ? { minutes: num('minutes')! } : {}),
  ...(num('agents') !== undefined ? { agents: num('agents')! } : {}),
  ...(num('window-sec') !== undefined ? { windowSec: num('window-sec')! } : {}),
  ...(num('seed') !== undefined ? { seed: num('seed')! } : {}),
  ...(num('hostile-share') !== undefined ? { hostileShare: num('hostile-share')! } : {}),
  db,
  verbose: args.verbose !== undefined,
  log: (line) => console.log(line),
});

console.log(`\n${result.table}\n`);
const t = result.totals;
console.log(
  `operations ${t.operations}, HTTP calls ${t.httpCalls}, registrations ${t.registrations}, purchases ${t.purchases}, hostile ${t.hostile} (5xx or no catalogue code: ${t.hostile5xx})`,
);
console.log(`refusals: ${Object.entries(t.refusals).map(([k, v]) => `${k}×${v}`).join(' ') || 'none'}`);
const j = result.judgement;
console.log(`heap growth ${(j.heapGrowth * 100).toFixed(1)}%, HTTP p95 growth ${(j.p95Growth * 100).toFixed(1)}% (window ${j.baseline} → last)`);
if (result.ok) {
  console.log('soak: flat — memory and latency held');
} else {
  console.log(`soak: FAILED\n${result.reasons.map((r) => `  - ${r}`).join('\n')}`);
  process.exitCode = 1;
}
