/**
 * Test helper (Node only): a throwaway real PostgreSQL server, so the same suites that run on
 * PGlite also run on the engine production uses (DESIGN.md "Storage and scale").
 *
 * It runs `initdb` and `pg_ctl` from the PostgreSQL server package into a temporary folder, listens
 * only on 127.0.0.1 on a free port with trust authentication and no Unix socket, and creates one
 * database. `initdb` refuses to run as root, so as root the folder is handed to the `postgres`
 * system user (which the Debian package creates) and the programs run as that user.
 *
 * With OBOL_TEST_DATABASE_URL set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), no server is
 * started: a fresh database is created on that server instead and dropped by `stop()`.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface TestPostgres {
  /** URL of the database created for the caller. */
  url: string;
  /** Create another empty database on the same server; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stop the server (or drop the databases) and remove its files. Close your pools first. */
  stop(): Promise<void>;
}

export const INSTALL_HINT =
  'PostgreSQL server programs (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql/*/bin. ' +
  'Install them with: apt-get install -y postgresql';

export interface TestPostgresOptions {
  /**
   * Keep PostgreSQL's durability settings (fsync, synchronous_commit, full_page_writes on, as in
   * production): every commit waits for its WAL flush. The bench uses it, so its figures are what
   * an operator would see; tests leave it off, as durability of a throwaway server only costs time.
   */
  durable?: boolean;
}

export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const external = process.env.OBOL_TEST_DATABASE_URL;
  return external ? onExternalServer(external) : startServer(options);
}

/** The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders, newest first. */
export function findPostgresBin(): string | undefined {
  const hasBoth = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && hasBoth(dir)) return dir;
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => hasBoth(join(root, v, 'bin')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

async function startServer(options: TestPostgresOptions): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error(INSTALL_HINT);
  const asRoot = process.getuid?.() === 0;
  const as = asRoot ? await serverUser() : undefined;

  const dir = await mkdtemp(join(tmpdir(), 'obol-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  if (as) await chown(dir, as.uid, as.gid);

  const exec = async (program: string, args: string[]) => {
    const [file, argv] = as ? asUser(join(bin, program), args) : [join(bin, program), args];
    try {
      await run(file, argv, { timeout: 120_000 });
    } catch (e) {
      const err = e as Error & { stderr?: string; stdout?: string };
      const serverLog = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`${program} failed: ${err.message}\n${err.stderr ?? ''}${err.stdout ?? ''}${serverLog}`);
    }
  };

  try {
    await exec('initdb', [
      '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ]);
    // Only loopback TCP: no Unix socket (its default folder may not exist or be writable here).
    // Durability is pointless for a throwaway test server and costs test time (not for the bench).
    await appendFile(
      join(data, 'postgresql.conf'),
      [
        '',
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        ...(options.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
        '',
      ].join('\n'),
    );
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }

  // A free port can be taken between looking and listening; try a few.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await exec('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
      break;
    } catch (e) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  // pg_ctl starts the server detached: if this process dies without stop(), stop it anyway.
  const stopNow = () => {
    const [file, argv] = as
      ? asUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'])
      : [join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']];
    spawnSync(file, argv, { stdio: 'ignore' });
  };
  process.once('exit', stopNow);

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const createDatabase = (name?: string) => createDb(adminUrl, name);
  const url = await createDatabase('obol_test');

  let stopped = false;
  return {
    url,
    createDatabase,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', stopNow);
      await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => stopNow());
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Use a server someone else runs: make fresh databases there and drop them afterwards. */
async function onExternalServer(adminUrl: string): Promise<TestPostgres> {
  const created: string[] = [];
  const createDatabase = async (name?: string) => {
    const dbName = name ? `${name}_${randomBytes(4).toString('hex')}` : undefined;
    const url = await createDb(adminUrl, dbName);
    created.push(new URL(url).pathname.slice(1));
    return url;
  };
  const url = await createDatabase('obol_test');
  return {
    url,
    createDatabase,
    async stop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        for (const name of created.splice(0)) await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
    },
  };
}

async function createDb(adminUrl: string, name = `obol_${randomBytes(6).toString('hex')}`): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

interface SystemUser {
  name: string;
  uid: number;
  gid: number;
}

async function serverUser(): Promise<SystemUser> {
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(
      'initdb cannot run as root and there is no "postgres" system user to run it as. ' +
        'Installing the server package creates one: apt-get install -y postgresql',
    );
  }
  return { name: 'postgres', uid: Number(uid), gid: Number(gid) };
}

/** A command line that runs `program` as the postgres user: runuser where present, else su. */
function asUser(program: string, args: string[]): [string, string[]] {
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));
  if (runuser) return [runuser, ['-u', 'postgres', '--', program, ...args]];
  const quoted = [program, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  return ['su', ['postgres', '-s', '/bin/sh', '-c', quoted]];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
