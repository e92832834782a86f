import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Amount } from '@obol/protocol/money';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDb } from '../src/store/db.ts';
import { Ledger } from '../src/store/ledger.ts';
import { loadMigrations, migrate } from '../src/store/migrate.ts';
import { startTestPostgres, type TestPostgres } from './support/testPostgres.ts';

/**
 * One engine under test: a database with the schema, a second handle on the same database (on
 * PostgreSQL a second pool, as a second process of the operator would have), and a way to get
 * fresh empty databases.
 */
interface Engine {
  db: Db;
  second: Db;
  fresh(): Promise<Db[]>;
  stop(): Promise<void>;
}

const engines: { name: string; start: () => Promise<Engine> }[] = [
  {
    name: 'PGlite',
    async start() {
      const db = await openDb(); // in memory
      const opened: Db[] = [];
      const dirs: string[] = [];
      return {
        db,
        // One connection: a second handle is the same handle.
        second: db,
        // A fresh PGlite in a data folder, so the on-disk mode is exercised too.
        async fresh() {
          const dir = await mkdtemp(join(tmpdir(), 'obol-pglite-'));
          dirs.push(dir);
          const fresh = await openDb({ dataDir: dir });
          opened.push(fresh);
          return [fresh, fresh];
        },
        async stop() {
          for (const d of [db, ...opened]) await d.close();
          for (const dir of dirs) await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    async start() {
      const server: TestPostgres = await startTestPostgres();
      const db = await openDb({ databaseUrl: server.url });
      const second = await openDb({ databaseUrl: server.url });
      const opened: Db[] = [];
      return {
        db,
        second,
        async fresh() {
          const url = await server.createDatabase();
          const pair = [await openDb({ databaseUrl: url }), await openDb({ databaseUrl: url })];
          opened.push(...pair);
          return pair;
        },
        async stop() {
          for (const d of [db, second, ...opened]) await d.close();
          await server.stop();
        },
      };
    },
  },
];

const eur = (value: bigint): Amount => ({ currency: 'EUR', value });

async function rejection(p: Promise<unknown>): Promise<ObolError> {
  const e = await p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ObolError);
  return e as ObolError;
}

describe.each(engines)('ledger on $name', ({ start }) => {
  let engine: Engine;
  let ledger: Ledger;
  const clock = new ManualClock();

  beforeAll(async () => {
    engine = await start();
    await migrate(engine.db);
    ledger = new Ledger(engine.db, clock);
    await ledger.openAccount({ id: 'funding:EUR', kind: 'funding', currency: 'EUR' });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  /** A customer account (limit 0) holding `amount`, funded from the unlimited funding account. */
  async function customerWith(id: string, amount: bigint): Promise<void> {
    await ledger.openAccount({ id, kind: 'customer', currency: 'EUR' });
    if (amount > 0n) {
      await ledger.transfer(`topup:${id}`, 'topup', [
        { account: 'funding:EUR', amount: eur(-amount) },
        { account: id, amount: eur(amount) },
      ]);
    }
  }

  async function expectCleanAudit(): Promise<void> {
    const report = await ledger.audit();
    expect(report).toMatchObject({ ok: true, underLimit: [], balanceMismatches: [], unbalancedMovements: [] });
    for (const c of report.perCurrency) expect(c.sum).toBe(0n);
  }

  describe('migrations', () => {
    it('apply a second time without harm', async () => {
      const again = await migrate(engine.db);
      expect(again.applied).toEqual([]);
      expect(again.skipped).toEqual((await loadMigrations()).map((m) => m.version));
      await expectCleanAudit();
    });

    it('are applied once when two processes race on an empty database', async () => {
      const [a, b] = await engine.fresh();
      const [ra, rb] = await Promise.all([migrate(a!), migrate(b!)]);
      const versions = (await loadMigrations()).map((m) => m.version);
      expect([...ra.applied, ...rb.applied].sort()).toEqual(versions);
      const rows = await a!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(versions);
      // and the schema works
      const fresh = new Ledger(a!, clock);
      await fresh.openAccount({ id: 'f', kind: 'funding', currency: 'SEK' });
      expect(await fresh.balance('f')).toEqual({ currency: 'SEK', value: 0n });
    });

    it('refuse an applied migration whose file was edited', async () => {
      const edited = (await loadMigrations()).map((m) => ({ ...m, checksum: `${m.checksum}x` }));
      const e = await rejection(migrate(engine.db, edited));
      expect(e.name).toBe('INTERNAL');
    });
  });

  describe('accounts', () => {
    it('opens idempotently and refuses a different account under the same id', async () => {
      const a = await ledger.openAccount({ id: 'acc:1', kind: 'customer', currency: 'EUR' });
      expect(a).toEqual({ id: 'acc:1', kind: 'customer', currency: 'EUR', creditLimit: 0n, balance: 0n });
      expect(await ledger.openAccount({ id: 'acc:1', kind: 'customer', currency: 'EUR' })).toEqual(a);
      expect((await rejection(ledger.openAccount({ id: 'acc:1', kind: 'merchant', currency: 'EUR' }))).name).toBe(
        'CONFLICT',
      );
      expect((await rejection(ledger.openAccount({ id: 'acc:2', kind: 'customer', currency: 'XXX' }))).name).toBe(
        'UNKNOWN_CURRENCY',
      );
      expect((await ledger.openAccount({ id: 'acc:fx', kind: 'fx', currency: 'EUR' })).creditLimit).toBeNull();
    });

    it('lets a customer use a credit limit, and no further', async () => {
      await customerWith('credit:c', 0n);
      await ledger.openAccount({ id: 'credit:held', kind: 'held_deposit', currency: 'EUR' });
      await ledger.setCreditLimit('credit:c', 500n);
      await ledger.reserve('credit:r1', 'credit:c', 'credit:held', eur(500n));
      expect(await ledger.balance('credit:c')).toEqual(eur(-500n));
      expect((await rejection(ledger.reserve('credit:r2', 'credit:c', 'credit:held', eur(1n)))).name).toBe(
        'INSUFFICIENT_FUNDS',
      );
      // a limit below what is already owed is refused
      expect((await rejection(ledger.setCreditLimit('credit:c', 100n))).name).toBe('INVALID_AMOUNT');
      await ledger.release('credit:r3', 'credit:held', 'credit:c', eur(500n));
      expect(await ledger.setCreditLimit('credit:c', 0n)).toMatchObject({ creditLimit: 0n, balance: 0n });
      await expectCleanAudit();
    });
  });

  describe('transfer', () => {
    it('books a balanced movement and reports it', async () => {
      await customerWith('t:a', 1000n);
      await ledger.openAccount({ id: 't:m', kind: 'merchant', currency: 'EUR' });
      const m = await ledger.transfer(
        't:1',
        'clearing',
        [
          { account: 't:a', amount: eur(-250n) },
          { account: 't:m', amount: eur(250n) },
        ],
        { transactionId: 'am1.1.1', total: 250n },
      );
      expect(m).toMatchObject({ id: 't:1', kind: 'clearing', replayed: false, createdAt: clock.now() });
      expect(m.memo).toEqual({ transactionId: 'am1.1.1', total: '250' });
      expect(await ledger.balance('t:a')).toEqual(eur(750n));
      expect(await ledger.balance('t:m')).toEqual(eur(250n));
      expect(await ledger.movement('t:1')).toEqual({ ...m, replayed: false });
      await expectCleanAudit();
    });

    it('refuses legs that do not sum to zero, and books nothing', async () => {
      await customerWith('z:a', 1000n);
      await ledger.openAccount({ id: 'z:m', kind: 'merchant', currency: 'EUR' });
      const e = await rejection(
        ledger.transfer('z:1', 'clearing', [
          { account: 'z:a', amount: eur(-100n) },
          { account: 'z:m', amount: eur(99n) },
        ]),
      );
      expect(e.name).toBe('INVALID_AMOUNT');
      expect(e.message).toContain('EUR:-0.01');
      expect(await ledger.movement('z:1')).toBeUndefined();
      expect(await ledger.balance('z:a')).toEqual(eur(1000n));
      // one leg alone, a zero leg, the same account twice: all refused
      for (const legs of [
        [{ account: 'z:a', amount: eur(-1n) }],
        [
          { account: 'z:a', amount: eur(0n) },
          { account: 'z:m', amount: eur(0n) },
        ],
        [
          { account: 'z:a', amount: eur(-1n) },
          { account: 'z:a', amount: eur(1n) },
        ],
      ]) {
        await rejection(ledger.transfer('z:2', 'x', legs));
      }
    });

    it('refuses a leg in another currency than its account', async () => {
      await ledger.openAccount({ id: 'cur:sek', kind: 'funding', currency: 'SEK' });
      await ledger.openAccount({ id: 'cur:eur', kind: 'funding', currency: 'EUR' });
      const e = await rejection(
        ledger.transfer('cur:1', 'x', [
          { account: 'cur:sek', amount: eur(-100n) },
          { account: 'cur:eur', amount: eur(100n) },
        ]),
      );
      expect(e.name).toBe('CURRENCY_MISMATCH');
      const unknown = await rejection(
        ledger.transfer('cur:2', 'x', [
          { account: 'cur:eur', amount: eur(-100n) },
          { account: 'cur:nobody', amount: eur(100n) },
        ]),
      );
      expect(unknown.name).toBe('MALFORMED');
      await expectCleanAudit();
    });

    it('refuses insufficient funds and changes nothing, even legs already applied', async () => {
      // Legs are applied in account order: i:a (enough money) is debited before i:b (none) fails.
      await customerWith('i:a', 5000n);
      await customerWith('i:b', 0n);
      await ledger.openAccount({ id: 'i:c', kind: 'merchant', currency: 'EUR' });
      const e = await rejection(
        ledger.transfer('i:1', 'x', [
          { account: 'i:c', amount: eur(5000n) },
          { account: 'i:a', amount: eur(-3000n) },
          { account: 'i:b', amount: eur(-2000n) },
        ]),
      );
      expect(e.name).toBe('INSUFFICIENT_FUNDS');
      expect(e.message).toContain('i:b');
      expect(await ledger.balance('i:a')).toEqual(eur(5000n));
      expect(await ledger.balance('i:b')).toEqual(eur(0n));
      expect(await ledger.balance('i:c')).toEqual(eur(0n));
      expect(await ledger.movement('i:1')).toBeUndefined();
      await expectCleanAudit();
      // A refused movement id stays free: once funded, the same request goes through.
      await ledger.transfer('i:fund-b', 'topup', [
        { account: 'funding:EUR', amount: eur(-2000n) },
        { account: 'i:b', amount: eur(2000n) },
      ]);
      await ledger.transfer('i:1', 'x', [
        { account: 'i:c', amount: eur(5000n) },
        { account: 'i:a', amount: eur(-3000n) },
        { account: 'i:b', amount: eur(-2000n) },
      ]);
      expect(await ledger.balance('i:c')).toEqual(eur(5000n));
    });

    it('treats a replayed movement id as a no-op that returns the original', async () => {
      await customerWith('r:c', 10_000n);
      await ledger.openAccount({ id: 'r:held', kind: 'held_deposit', currency: 'EUR' });
      const first = await ledger.reserve('r:1', 'r:c', 'r:held', eur(1000n), { tid: 'x.1.2' });
      clock.advance(60_000);
      const again = await ledger.reserve('r:1', 'r:c', 'r:held', eur(1000n), { tid: 'x.1.2' });
      expect(again).toEqual({ ...first, replayed: true });
      expect(again.createdAt).toBe(first.createdAt);
      expect(await ledger.balance('r:c')).toEqual(eur(9000n));
      expect(await ledger.balance('r:held')).toEqual(eur(1000n));
      // Legs in another order are the same movement.
      const reordered = await ledger.transfer('r:1', 'reserve', [...first.legs].reverse(), { tid: 'x.1.2' });
      expect(reordered.replayed).toBe(true);
      await expectCleanAudit();
    });

    it('refuses the same movement id with a different body as CONFLICT', async () => {
      await customerWith('k:c', 10_000n);
      await ledger.openAccount({ id: 'k:held', kind: 'held_deposit', currency: 'EUR' });
      await ledger.reserve('k:1', 'k:c', 'k:held', eur(1000n), { tid: 'a' });
      const attempts = [
        () => ledger.reserve('k:1', 'k:c', 'k:held', eur(1001n), { tid: 'a' }), // other amount
        () => ledger.reserve('k:1', 'k:c', 'k:held', eur(1000n), { tid: 'b' }), // other memo
        () => ledger.reserve('k:1', 'k:c', 'k:held', eur(1000n)), // no memo
        () =>
          ledger.transfer(
            'k:1',
            'other-kind',
            [
              { account: 'k:c', amount: eur(-1000n) },
              { account: 'k:held', amount: eur(1000n) },
            ],
            { tid: 'a' },
          ),
      ];
      const names = [];
      for (const attempt of attempts) names.push((await rejection(attempt())).name);
      expect(names).toEqual(['CONFLICT', 'CONFLICT', 'CONFLICT', 'CONFLICT']);
      expect(await ledger.balance('k:c')).toEqual(eur(9000n));
      await expectCleanAudit();
    });

    it('lets exactly 10 of 50 concurrent reserves of 10.00 through against 100.00', async () => {
      await customerWith('race:c', 10_000n);
      await ledger.openAccount({ id: 'race:held', kind: 'held_deposit', currency: 'EUR' });
      // Half go through a second handle: on PostgreSQL a second pool, like a second process.
      const other = new Ledger(engine.second, clock);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 ? other : ledger).reserve(`race:${i}`, 'race:c', 'race:held', eur(1000n)),
        ),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as ObolError] : []));
      expect(ok).toHaveLength(10);
      expect(refused.map((e) => e.name)).toEqual(Array(40).fill('INSUFFICIENT_FUNDS'));
      expect(await ledger.balance('race:c')).toEqual(eur(0n));
      expect(await ledger.balance('race:held')).toEqual(eur(10_000n));
      await expectCleanAudit();
    });
  });

  describe('audit', () => {
    it('detects a balance tampered with directly in SQL', async () => {
      await customerWith('tamper:c', 1000n);
      await engine.db.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', ['tamper:c']);
      try {
        const report = await ledger.audit();
        expect(report.ok).toBe(false);
        expect(report.balanceMismatches).toEqual([{ account: 'tamper:c', stored: 1001n, fromEntries: 1000n }]);
      } finally {
        await engine.db.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', ['tamper:c']);
      }
      await expectCleanAudit();
    });

    it('detects an unbalanced entry written directly in SQL', async () => {
      await customerWith('tamper:d', 1000n);
      await engine.db.transaction(async (tx) => {
        await tx.query(
          "UPDATE entries SET amount = amount + 1 WHERE movement_id = 'topup:tamper:d' AND account_id = 'tamper:d'",
        );
        await tx.query("UPDATE accounts SET balance = balance + 1 WHERE id = 'tamper:d'");
      });
      try {
        const report = await ledger.audit();
        expect(report.ok).toBe(false);
        expect(report.balanceMismatches).toEqual([]);
        expect(report.unbalancedMovements).toEqual([{ movementId: 'topup:tamper:d', currency: 'EUR', sum: 1n }]);
        expect(report.perCurrency).toContainEqual({ currency: 'EUR', sum: 1n });
      } finally {
        await engine.db.transaction(async (tx) => {
          await tx.query(
            "UPDATE entries SET amount = amount - 1 WHERE movement_id = 'topup:tamper:d' AND account_id = 'tamper:d'",
          );
          await tx.query("UPDATE accounts SET balance = balance - 1 WHERE id = 'tamper:d'");
        });
      }
      await expectCleanAudit();
    });

    it('is backed by a constraint: no balance below its limit can be written at all', async () => {
      await customerWith('tamper:e', 0n);
      const e = await engine.db
        .query("UPDATE accounts SET balance = -1 WHERE id = 'tamper:e'")
        .then(() => undefined, (err: unknown) => err as { code?: string });
      expect(e?.code).toBe('23514'); // check_violation
    });
  });

  describe('db', () => {
    it('retries a transaction on serialization failures and deadlocks, then gives up', async () => {
      let runs = 0;
      const result = await engine.db.transaction(async (tx) => {
        runs++;
        if (runs <= 2) throw Object.assign(new Error('conflict'), { code: runs === 1 ? '40001' : '40P01' });
        return (await tx.query<{ one: number }>('SELECT 1 AS one'))[0]!.one;
      });
      expect(result).toBe(1);
      expect(runs).toBe(3);

      runs = 0;
      const e = await rejection(
        engine.db.transaction(
          async () => {
            runs++;
            throw Object.assign(new Error('conflict'), { code: '40001' });
          },
          { attempts: 3 },
        ),
      );
      expect(e.name).toBe('UNAVAILABLE');
      expect(runs).toBe(3);
    });

    it('does not report success for a transaction that failed inside and was rolled back', async () => {
      const e = await rejection(
        engine.db.transaction(async (tx) => {
          await tx.query('SELECT 1/0').catch(() => {});
        }),
      );
      expect(e.name).toBe('INTERNAL');
      // the connection is usable afterwards
      expect(await engine.db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });

    it('returns int8 as bigint and sums as exact strings', async () => {
      const [row] = await engine.db.query<{ big: bigint; total: string }>(
        'SELECT 9223372036854775807::bigint AS big, SUM(x) AS total FROM (VALUES (9223372036854775807::bigint), (1)) v(x)',
      );
      expect(row).toEqual({ big: 9223372036854775807n, total: '9223372036854775808' });
    });
  });
});

describe('PGlite data folder', () => {
  it('keeps the ledger across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'obol-pglite-'));
    try {
      let db = await openDb({ dataDir: dir });
      await migrate(db);
      await new Ledger(db).openAccount({ id: 'keep', kind: 'funding', currency: 'EUR' });
      await db.close();
      db = await openDb({ dataDir: dir });
      expect((await migrate(db)).applied).toEqual([]);
      expect(await new Ledger(db).account('keep')).toMatchObject({ id: 'keep', kind: 'funding' });
      await db.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
