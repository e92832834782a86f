/**
 * The one seam between the operator's code and its SQL engine. Two engines speak the same
 * PostgreSQL SQL behind it:
 *
 * - PGlite (Postgres compiled to WASM, in-process): the embedded default, in a data folder or in
 *   memory. It is a single connection, so every query and transaction is serialised through a queue.
 * - a real PostgreSQL (or a compatible distributed engine) through a `pg` pool, from a URL.
 *
 * The SQL we send is kept to what CockroachDB and YugabyteDB also run: no advisory locks, no
 * LISTEN/NOTIFY. Instead, transactions are retried when the engine reports a serialization failure
 * or a deadlock, which those engines (and PostgreSQL under SERIALIZABLE) expect clients to do.
 *
 * Both engines hand back int8 columns as `bigint` and numeric columns as decimal strings, so money
 * never passes through a float (`SUM(bigint)` is numeric in PostgreSQL).
 */
import { createHash } from 'node:crypto';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { backoffDelay } from '@obol/protocol/backoff';
import { ObolError } from '@obol/protocol/errors';
import pg from 'pg';
import { makePrivateDir, restrictTree } from './privateFiles.ts';

export type Isolation = 'serializable' | 'repeatable read' | 'read committed';

export interface TransactionOptions {
  /**
   * 'read committed' suits work that relies on row locks and conditional UPDATEs (the ledger);
   * 'serializable' suits read-then-write logic; 'repeatable read' gives a consistent snapshot for
   * reports. Engines without an isolation level run the next stronger one.
   */
  isolation?: Isolation;
  /** How many times to run the transaction at most when the engine asks for a retry. Default 8. */
  attempts?: number;
}

/** What can run SQL: the database itself, or an open transaction. */
export interface Queryable {
  /** One statement with `$1…` parameters; returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly engine: 'pglite' | 'postgres';
  /**
   * Run `fn` inside one transaction and commit it; roll back if it throws. When the engine reports
   * a serialization failure (SQLSTATE 40001) or a deadlock (40P01) the whole of `fn` runs again,
   * so `fn` must do nothing but SQL through `tx` (no other side effects, and never `db.query`
   * from inside: on PGlite that would wait for itself). After the last attempt it throws
   * UNAVAILABLE.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  /** A PostgreSQL URL (`postgres://user@host:5432/db`). Wins over `dataDir`. */
  databaseUrl?: string;
  /** A PGlite data folder; without it (and without a URL) the database lives in memory. */
  dataDir?: string;
  /** Largest number of pooled connections to PostgreSQL. Default 10. */
  poolSize?: number;
}

/** Open PostgreSQL when a URL is given, otherwise PGlite (in `dataDir`, or in memory). */
export async function openDb(options: OpenDbOptions = {}): Promise<Db> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize);
  return openPglite(options.dataDir);
}

// ---------------------------------------------------------------------------------------------
// Retrying

const RETRYABLE = new Set(['40001', '40P01']);
const DEFAULT_ATTEMPTS = 8;

/** The SQLSTATE of a database error from either driver, if it has one. */
export function sqlState(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The constraint (or unique index) a database error names, if any. */
export function constraintOf(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'constraint' in e) {
    const name = (e as { constraint: unknown }).constraint;
    if (typeof name === 'string') return name;
  }
  return undefined;
}

/** A unique violation (23505), of `constraint` when one is named. */
export function isUniqueViolation(e: unknown, constraint?: string): boolean {
  return sqlState(e) === '23505' && (constraint === undefined || constraintOf(e) === constraint);
}

export function isRetryable(e: unknown): boolean {
  const code = sqlState(e);
  return code !== undefined && RETRYABLE.has(code);
}

/**
 * Run `attempt` until it succeeds, fails for a reason a retry cannot fix, or runs out of attempts.
 * The back-off is "full jitter" (a random wait up to a doubling cap): contenders that collided once
 * spread out instead of colliding again in lock step.
 */
async function withRetries<T>(attempts: number, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!isRetryable(e)) throw e;
      if (n >= attempts) {
        const err = new ObolError(
          'UNAVAILABLE',
          `the database kept reporting conflicting transactions (${attempts} attempts); try again`,
        );
        (err as Error & { cause?: unknown }).cause = e;
        throw err;
      }
      // Full jitter (0 to twice the step): racing transactions must not collide again in step.
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(n, { baseMs: 4, capMs: 200, jitter: 1 })));
    }
  }
}

/**
 * PostgreSQL answers COMMIT in a transaction that already failed with the tag ROLLBACK and no error.
 * That happens when `fn` catches a database error and carries on; it must not look like success.
 */
function refuseSilentRollback(command: string | null | undefined): void {
  if (command === 'ROLLBACK') {
    throw new ObolError('INTERNAL', 'the transaction had failed and was rolled back at COMMIT');
  }
}

const BEGIN: Record<Isolation, string> = {
  serializable: 'BEGIN ISOLATION LEVEL SERIALIZABLE',
  'repeatable read': 'BEGIN ISOLATION LEVEL REPEATABLE READ',
  'read committed': 'BEGIN ISOLATION LEVEL READ COMMITTED',
};

// ---------------------------------------------------------------------------------------------
// PostgreSQL through a pool

// Per-pool type parsers, so we never touch pg's process-wide defaults that other code may rely on.
const pgTypeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === pg.types.builtins.INT8) return (text: string) => BigInt(text);
    if (oid === pg.types.builtins.NUMERIC) return (text: string) => text;
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * The prepared statement's name, derived from its text alone: the same text always gets the same
 * name (on every connection, in every process), and two texts never share one (pg refuses a name
 * reused for another text). 32 hex digits of SHA-256 keep the name within PostgreSQL's 63 bytes.
 */
const statementNames = new Map<string, string>();
const MAX_STATEMENT_NAMES = 10_000;
export function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `obol_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`;
    // Texts are the code's own, so few; the bound only guards against SQL built from data.
    if (statementNames.size >= MAX_STATEMENT_NAMES) statementNames.clear();
    statementNames.set(sql, name);
  }
  return name;
}

function openPostgres(url: string, poolSize = 10): Db {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types: pgTypeParsers });
  // An idle client whose server went away emits 'error' on the pool; without a listener Node
  // would crash the process. The next checkout simply gets a fresh connection.
  pool.on('error', () => {});

  const on = (client: pg.Pool | pg.PoolClient): Queryable => ({
    async query<T>(sql: string, params: readonly unknown[] = []) {
      // A parameterised statement runs as a named prepared statement: each connection parses and
      // plans it once, then only binds and executes it (the server's parse and plan were a large
      // part of its CPU per statement). Without parameters it may be several statements, which
      // only the simple protocol accepts, so it is sent as text.
      const result =
        params.length > 0
          ? await client.query({ name: statementName(sql), text: sql, values: params as unknown[] })
          : await client.query(sql);
      return result.rows as T[];
    },
    async exec(sql: string) {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await client.query(sql);
    },
  });

  return {
    engine: 'postgres',
    ...on(pool),
    transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}) {
      const isolation = options.isolation ?? 'serializable';
      return withRetries(options.attempts ?? DEFAULT_ATTEMPTS, async () => {
        const client = await pool.connect();
        let broken: Error | undefined;
        try {
          await client.query(BEGIN[isolation]);
          try {
            const result = await fn(on(client));
            refuseSilentRollback((await client.query('COMMIT')).command);
            return result;
          } catch (e) {
            await client.query('ROLLBACK').catch((rollbackError: Error) => {
              // A connection that cannot even roll back is not handed to the next caller.
              broken = rollbackError;
            });
            throw e;
          }
        } finally {
          client.release(broken);
        }
      });
    },
    async close() {
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PGlite

/** A FIFO lock: each task starts when the one before it has settled. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => {});
    return result;
  }
}

async function openPglite(dataDir?: string): Promise<Db> {
  if (dataDir) await makePrivateDir(dataDir);
  const db = new PGlite({
    ...(dataDir ? { dataDir } : {}),
    parsers: {
      [pgliteTypes.INT8]: (text: string) => BigInt(text),
      [pgliteTypes.NUMERIC]: (text: string) => text,
    },
  });
  await db.waitReady;
  if (dataDir) await restrictTree(dataDir);
  // PGlite has one connection. Its own calls are already exclusive, but a transaction is many
  // calls; the queue makes every transaction run alone, start to end, and makes a plain query
  // wait for a transaction in progress rather than land inside it.
  const queue = new Queue();

  const on = (client: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<T>(sql: string, params: readonly unknown[] = []) {
      const result = await client.query<T>(sql, params as unknown[]);
      return result.rows;
    },
    async exec(sql: string) {
      await client.exec(sql);
    },
  });
  const direct = on(db);

  return {
    engine: 'pglite',
    query: (sql, params) => queue.run(() => direct.query(sql, params)),
    exec: (sql) => queue.run(() => direct.exec(sql)),
    transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}) {
      const isolation = options.isolation ?? 'serializable';
      // With one connection there is no concurrency, so PGlite never reports 40001; the retry
      // loop is kept so both engines behave alike if a future PGlite allows more.
      return withRetries(options.attempts ?? DEFAULT_ATTEMPTS, () =>
        queue.run(async () => {
          await direct.exec(BEGIN[isolation]);
          try {
            const result = await fn(direct);
            const [commit] = await db.exec('COMMIT');
            refuseSilentRollback(commit?.command);
            return result;
          } catch (e) {
            // The caller needs the error that failed the transaction, not a failed ROLLBACK's.
            await direct.exec('ROLLBACK').catch(() => {});
            throw e;
          }
        }),
      );
    },
    async close() {
      await queue.run(() => db.close());
      if (dataDir) await restrictTree(dataDir);
    },
  };
}
