// What the bench needs from elsewhere, imported in one place: the throwaway PostgreSQL (its module
// may move to test/support; then only this line changes) and CPU accounting across processes.
import { readFileSync, readdirSync } from 'node:fs';

export { startTestPostgres, type TestPostgres } from '../test/support/testPostgres.ts';

/** This process's CPU time (user + system), in milliseconds. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, and cutime + cstime of the children it reaped (ms). */
  ownMs: number;
  reapedMs: number;
}

function readStat(pid: string): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: read the fields after its closing parenthesis.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid: Number(pid), ppid: Number(f[1]), ownMs: (Number(f[11]) + Number(f[12])) * TICK_MS, reapedMs: (Number(f[13]) + Number(f[14])) * TICK_MS };
  } catch {
    return undefined;
  }
}

/**
 * The CPU time of one PostgreSQL server (the postmaster listening on `port`, its backends and the
 * backends it has reaped), in milliseconds; undefined when it is not found (not on Linux).
 * Other PostgreSQL servers on the machine (other test runs) are not counted.
 */
export function postgresCpuMs(port: number): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  let postmaster: number | undefined;
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (/postgres$/.test(cmd[0] ?? '') && cmd.includes('-p') && cmd.includes(String(port))) postmaster = Number(pid);
    } catch {}
  }
  if (postmaster === undefined) return undefined;
  let total = 0;
  for (const pid of pids) {
    const s = readStat(pid);
    if (!s) continue;
    if (s.pid === postmaster) total += s.ownMs + s.reapedMs;
    else if (s.ppid === postmaster) total += s.ownMs;
  }
  return total;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * The floor of anything that commits on PostgreSQL: one-row INSERTs, each its own transaction,
 * from `connections` connections at once for about `ms` of wall time, on a scratch table of the
 * database at `url`. Returns commits per second. On a durable server every commit waits for its
 * WAL flush, and concurrent commits share flushes (group commit), so the rate grows with
 * connections until the disk's flush rate or the server's CPU is the limit.
 */
export async function postgresCommitRate(url: string, connections: number, ms = 1500): Promise<number> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: connections });
  pool.on('error', () => undefined); // an idle connection closed by the server's stop is not a failure
  try {
    await pool.query('CREATE TABLE IF NOT EXISTS bench_commit_floor (id bigserial PRIMARY KEY, at bigint NOT NULL)');
    const insert = { name: 'bench_commit_floor', text: 'INSERT INTO bench_commit_floor (at) VALUES ($1)' };
    let count = 0;
    const worker = async (until: number) => {
      const client = await pool.connect();
      try {
        while (performance.now() < until) {
          await client.query({ ...insert, values: [Date.now()] });
          count++;
        }
      } finally {
        client.release();
      }
    };
    await Promise.all(Array.from({ length: connections }, () => worker(performance.now() + 200))); // warm
    count = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: connections }, () => worker(t0 + ms)));
    return count / ((performance.now() - t0) / 1000);
  } finally {
    await pool.end();
  }
}
