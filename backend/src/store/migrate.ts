/**
 * Schema migrations: numbered SQL files (`migrations/001_ledger.sql`, …), the same files on PGlite
 * and PostgreSQL, applied in order, each in its own transaction, and recorded in
 * `schema_migrations`.
 *
 * Several processes of one operator may start at once against one database. Instead of an
 * advisory lock (which distributed engines lack), each migration is claimed by inserting its
 * version into `schema_migrations` in the same transaction that runs it. A second process's insert
 * of the same version waits on the unique key until the first commits, then finds the row and
 * skips; if the first failed and rolled back, the second applies it.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ObolError } from '@obol/protocol/errors';
import { type Db, sqlState } from './db.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** sha256 of the file, to notice an applied migration that was edited afterwards. */
  checksum: string;
}

export interface MigrateResult {
  /** Versions this call applied. */
  applied: number[];
  /** Versions that were already there (applied earlier, or by a process racing this one). */
  skipped: number[];
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

const FILE_NAME = /^(\d+)_([A-Za-z0-9_]+)\.sql$/;

/** Read the numbered SQL files of a folder, in order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of await readdir(dir)) {
    const m = FILE_NAME.exec(file);
    if (!m) continue;
    const sql = await readFile(`${dir}/${file}`, 'utf8');
    migrations.push({
      version: Number(m[1]),
      name: m[2]!,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new ObolError('INTERNAL', `two migrations are numbered ${migrations[i]!.version} in ${dir}`);
    }
  }
  return migrations;
}

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/** Apply every migration not yet recorded. Safe to call on every start, from several processes. */
export async function migrate(db: Db, migrations?: Migration[]): Promise<MigrateResult> {
  const all = migrations ?? (await loadMigrations());
  await createMigrationsTable(db);

  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of all) {
    // read committed: the claiming insert then waits for a racing claim and sees its outcome,
    // rather than failing with a serialization error.
    const claimed = await db.transaction(
      async (tx) => {
        const rows = await tx.query(
          `INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)
           ON CONFLICT (version) DO NOTHING RETURNING version`,
          [m.version, m.name, m.checksum],
        );
        if (rows.length === 0) return false;
        await tx.exec(m.sql);
        return true;
      },
      { isolation: 'read committed' },
    );
    (claimed ? result.applied : result.skipped).push(m.version);
  }

  // An applied migration whose file has since changed means this code and this database disagree
  // about the schema; better to stop at start-up than to fail strangely later.
  const recorded = await db.query<{ version: number; checksum: string }>(
    'SELECT version, checksum FROM schema_migrations',
  );
  const byVersion = new Map(recorded.map((r) => [Number(r.version), r.checksum]));
  for (const m of all) {
    if (byVersion.get(m.version) !== m.checksum) {
      throw new ObolError(
        'INTERNAL',
        `migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`,
      );
    }
  }
  return result;
}

/**
 * `CREATE TABLE IF NOT EXISTS` is not atomic in PostgreSQL: two processes creating the same table
 * at once can both pass the "not exists" test and one then fails on a catalogue unique index
 * (23505) or with "already exists" (42P07). Either way the table exists afterwards, so try again.
 */
async function createMigrationsTable(db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.exec(CREATE_TABLE);
      return;
    } catch (e) {
      const code = sqlState(e);
      if (attempt >= 3 || (code !== '23505' && code !== '42P07' && code !== '40001')) throw e;
    }
  }
}
