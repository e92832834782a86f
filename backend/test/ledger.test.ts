import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import type { Amount } from '@obol/protocol/money';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDb } from '../src/store/db.ts';
import { Ledger, type ReserveSpec } from '../src/store/ledger.ts';
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

  /** A deposit of `value` EUR cents from `debit` to `credit`, due in an hour. */
  function deposit(id: string, debit: string, credit: string, value: bigint): ReserveSpec {
    return { id, kind: 'deposit', debit, credit, amount: eur(value), expiresAt: clock.now() + 3_600_000 };
  }

  async function expectCleanAudit(): Promise<void> {
    const report = await ledger.audit();
    expect(report).toMatchObject({ ok: true, underLimit: [], balanceMismatches: [], unbalancedMovements: [], pendingMismatches: [] });
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
      expect([...ra.applied, ...rb.applied].sort((x, y) => x - y)).toEqual(versions);
      const rows = await a!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(versions);
      // and the schema works
      const fresh = new Ledger(a!, clock);
      await fresh.openAccount({ id: 'f', kind: 'funding', currency: 'SEK' });
      expect(await fresh.balance('f')).toEqual({ currency: 'SEK', value: 0n });
    });

    it('turn the held-deposit accounts of open transactions into pending transfers (010)', async () => {
      const [db] = await engine.fresh();
      const all = await loadMigrations();
      await migrate(db!, all.filter((m) => m.version < 10));
      // The books as the old code left them: a customer's deposit moved to `held:<tid>`, and as
      // acquirer the same operator's deposit in `acq-held:<tid>`; one cleared transaction whose
      // held account is empty.
      await db!.exec(`
        INSERT INTO accounts (id, kind, currency, credit_limit, balance, created_at) VALUES
          ('funding:EUR', 'funding', 'EUR', NULL, -1000, now()), ('customer:c1', 'customer', 'EUR', 0, 700, now()),
          ('held:am.1.1', 'held_deposit', 'EUR', 0, 300, now()), ('held:am.1.2', 'held_deposit', 'EUR', 0, 0, now()),
          ('merchant:m1', 'merchant', 'EUR', 0, 0, now()),
          ('acq-held:t-x', 'held_deposit', 'EUR', 0, 100, now()), ('peer:op2:EUR', 'inter_operator', 'EUR', NULL, -100, now());
        INSERT INTO movements (id, kind, memo, created_at) VALUES
          ('fund', 'fund', '{}', now()), ('reserve:am.1.1', 'reserve', '{}', now()), ('acq-reserve:t-x', 'acquirer-deposit', '{}', now());
        INSERT INTO entries (movement_id, leg, account_id, currency, amount, created_at) VALUES
          ('fund', 0, 'funding:EUR', 'EUR', -1000, now()), ('fund', 1, 'customer:c1', 'EUR', 1000, now()),
          ('reserve:am.1.1', 0, 'customer:c1', 'EUR', -300, now()), ('reserve:am.1.1', 1, 'held:am.1.1', 'EUR', 300, now()),
          ('acq-reserve:t-x', 0, 'peer:op2:EUR', 'EUR', -100, now()), ('acq-reserve:t-x', 1, 'acq-held:t-x', 'EUR', 100, now());
        INSERT INTO customers (id, public_key, cert, created_at) VALUES ('c1', 'k', 'c', 0);
        INSERT INTO sessions (id, customer_id, token_hash, expires_at, created_at) VALUES ('am.1', 'c1', 'h', 0, 0);
        INSERT INTO merchants (id, public_key, key_id, origins, url, name, cert, created_at) VALUES ('m1', 'k', 'kid', '[]', 'u', 'n', 'c', 0);
        INSERT INTO am_transactions (id, initiate_msg_id, session_id, customer_id, merchant_id, merchant_operator, pseudonym,
          session_public_key, deposit_customer, deposit_merchant, rate, expires_at, state, created_at) VALUES
          ('am.1.1', 'i1', 'am.1', 'c1', 'mx', 'op2', 'p', 'k', 'EUR:3.00', 'SEK:33.00', '11/1', 4102444800000, 'open', 0),
          ('am.1.2', 'i2', 'am.1', 'c1', 'mx', 'op2', 'p', 'k', 'EUR:1.00', 'SEK:11.00', '11/1', 5000, 'cleared', 0);
        INSERT INTO acq_transactions (id, customer_operator, merchant_id, pseudonym, session_public_key, deposit, expires_at,
          deadline_at, state, created_at) VALUES ('t-x', 'op2', 'm1', 'p', 'k', 'EUR:1.00', 4102444800000, 4102444900000, 'open', 0);
      `);
      expect(await db!.query('SELECT currency FROM entries GROUP BY currency HAVING SUM(amount) <> 0')).toEqual([]);
      await migrate(db!);
      const migrated = new Ledger(db!, clock);
      expect(await migrated.audit()).toMatchObject({ ok: true });
      expect(await migrated.account('customer:c1')).toMatchObject({ balance: 1000n, debitsPending: 300n });
      expect(await migrated.balance('held:am.1.1')).toEqual(eur(0n));
      expect(await migrated.pending('deposit:am.1.1')).toMatchObject({
        state: 'pending',
        debitAccount: 'customer:c1',
        creditAccount: 'fx:EUR', // paid in SEK: through FX, as the account manager reserves now
        amount: eur(300n),
        expiresAt: 4102444800000 + 7 * 86_400_000,
      });
      expect(await migrated.pending('deposit:am.1.2')).toBeUndefined();
      expect(await migrated.pending('acq-deposit:t-x')).toMatchObject({ debitAccount: 'peer:op2:EUR', creditAccount: 'merchant:m1', amount: eur(100n) });
      expect(await migrated.balance('peer:op2:EUR')).toEqual(eur(0n));
      // and they clear with the new verbs
      await migrated.post('acq-deposit:t-x', eur(40n));
      await migrated.post('deposit:am.1.1', eur(250n));
      expect(await migrated.balance('merchant:m1')).toEqual(eur(40n));
      expect(await migrated.account('customer:c1')).toMatchObject({ balance: 750n, debitsPending: 0n });
      expect((await migrated.audit()).ok).toBe(true);
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
      expect(a).toEqual({ id: 'acc:1', kind: 'customer', currency: 'EUR', creditLimit: 0n, balance: 0n, debitsPending: 0n });
      expect(await ledger.openAccount({ id: 'acc:1', kind: 'customer', currency: 'EUR' })).toEqual(a);
      expect((await rejection(ledger.openAccount({ id: 'acc:1', kind: 'merchant', currency: 'EUR' }))).name).toBe(
        'CONFLICT',
      );
      expect((await rejection(ledger.openAccount({ id: 'acc:2', kind: 'customer', currency: 'XXX' }))).name).toBe(
        'UNKNOWN_CURRENCY',
      );
      expect((await ledger.openAccount({ id: 'acc:fx', kind: 'fx', currency: 'EUR' })).creditLimit).toBeNull();
      // The operator's own accounts have no limit, ever: their movements may land on shard rows.
      expect((await rejection(ledger.openAccount({ id: 'acc:fx2', kind: 'fx', currency: 'EUR', creditLimit: 5n }))).name).toBe('MALFORMED');
      expect((await rejection(ledger.setCreditLimit('acc:fx', 5n))).name).toBe('MALFORMED');
    });

    it('lets a customer use a credit limit, and no further', async () => {
      await customerWith('credit:c', 0n);
      await ledger.openAccount({ id: 'credit:peer', kind: 'inter_operator', currency: 'EUR' });
      await ledger.setCreditLimit('credit:c', 500n);
      await ledger.reserve(deposit('credit:r1', 'credit:c', 'credit:peer', 500n));
      expect(await ledger.account('credit:c')).toMatchObject({ balance: 0n, debitsPending: 500n });
      expect((await rejection(ledger.reserve(deposit('credit:r2', 'credit:c', 'credit:peer', 1n)))).name).toBe('INSUFFICIENT_FUNDS');
      // a limit below what is already reserved is refused
      expect((await rejection(ledger.setCreditLimit('credit:c', 100n))).name).toBe('INVALID_AMOUNT');
      await ledger.post('credit:r1', eur(200n));
      expect(await ledger.account('credit:c')).toMatchObject({ balance: -200n, debitsPending: 0n });
      expect((await rejection(ledger.setCreditLimit('credit:c', 100n))).name).toBe('INVALID_AMOUNT');
      await ledger.transfer('credit:repay', 'topup', [
        { account: 'funding:EUR', amount: eur(-200n) },
        { account: 'credit:c', amount: eur(200n) },
      ]);
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
      await ledger.openAccount({ id: 'r:m', kind: 'merchant', currency: 'EUR' });
      const legs = [
        { account: 'r:c', amount: eur(-1000n) },
        { account: 'r:m', amount: eur(1000n) },
      ];
      const first = await ledger.transfer('r:1', 'sale', legs, { tid: 'x.1.2' });
      clock.advance(60_000);
      const again = await ledger.transfer('r:1', 'sale', legs, { tid: 'x.1.2' });
      expect(again).toEqual({ ...first, replayed: true });
      expect(again.createdAt).toBe(first.createdAt);
      expect(await ledger.balance('r:c')).toEqual(eur(9000n));
      expect(await ledger.balance('r:m')).toEqual(eur(1000n));
      // Legs in another order are the same movement.
      const reordered = await ledger.transfer('r:1', 'sale', [...first.legs].reverse(), { tid: 'x.1.2' });
      expect(reordered.replayed).toBe(true);
      await expectCleanAudit();
    });

    it('refuses the same movement id with a different body as CONFLICT', async () => {
      await customerWith('k:c', 10_000n);
      await ledger.openAccount({ id: 'k:m', kind: 'merchant', currency: 'EUR' });
      const legs = (v: bigint) => [
        { account: 'k:c', amount: eur(-v) },
        { account: 'k:m', amount: eur(v) },
      ];
      await ledger.transfer('k:1', 'sale', legs(1000n), { tid: 'a' });
      const attempts = [
        () => ledger.transfer('k:1', 'sale', legs(1001n), { tid: 'a' }), // other amount
        () => ledger.transfer('k:1', 'sale', legs(1000n), { tid: 'b' }), // other memo
        () => ledger.transfer('k:1', 'sale', legs(1000n)), // no memo
        () => ledger.transfer('k:1', 'other-kind', legs(1000n), { tid: 'a' }),
      ];
      const names = [];
      for (const attempt of attempts) names.push((await rejection(attempt())).name);
      expect(names).toEqual(['CONFLICT', 'CONFLICT', 'CONFLICT', 'CONFLICT']);
      expect(await ledger.balance('k:c')).toEqual(eur(9000n));
      await expectCleanAudit();
    });
  });

  describe('pending transfers (deposits)', () => {
    it('reserve, post in part: the rest stays with the debit account, the reservation ends', async () => {
      await customerWith('p:c', 10_000n);
      await ledger.openAccount({ id: 'p:peer', kind: 'inter_operator', currency: 'EUR' });
      const reserved = await ledger.reserve({ ...deposit('p:1', 'p:c', 'p:peer', 4000n), memo: { tid: 'x.1.1' } });
      expect(reserved).toMatchObject({ state: 'pending', posted: null, replayed: false, memo: { tid: 'x.1.1' } });
      expect(await ledger.account('p:c')).toMatchObject({ balance: 10_000n, debitsPending: 4000n });
      await expectCleanAudit();
      const posted = await ledger.post('p:1', eur(1500n));
      expect(posted).toMatchObject({ state: 'posted', posted: eur(1500n), replayed: false });
      expect(await ledger.account('p:c')).toMatchObject({ balance: 8500n, debitsPending: 0n });
      expect(await ledger.balance('p:peer')).toEqual(eur(1500n));
      expect((await ledger.movement('post:p:1'))?.legs).toEqual([
        { account: 'p:c', amount: eur(-1500n) },
        { account: 'p:peer', amount: eur(1500n) },
      ]);
      // Posted once: the same post is a replay, another amount or a void is refused.
      expect((await ledger.post('p:1', eur(1500n))).replayed).toBe(true);
      expect((await rejection(ledger.post('p:1', eur(1499n)))).name).toBe('CONFLICT');
      expect((await rejection(ledger.void('p:1'))).name).toBe('SESSION_CLOSED');
      expect(await ledger.account('p:c')).toMatchObject({ balance: 8500n, debitsPending: 0n });
      await expectCleanAudit();
    });

    it('post in full by default; a post of zero moves nothing; more than reserved is refused', async () => {
      await customerWith('f:c', 1000n);
      await ledger.openAccount({ id: 'f:peer', kind: 'inter_operator', currency: 'EUR' });
      await ledger.reserve(deposit('f:1', 'f:c', 'f:peer', 600n));
      expect((await rejection(ledger.post('f:1', eur(601n)))).name).toBe('AMOUNT_EXCEEDS_SIGNED');
      expect((await rejection(ledger.post('f:1', { currency: 'SEK', value: 1n }))).name).toBe('CURRENCY_MISMATCH');
      expect(await ledger.post('f:1')).toMatchObject({ state: 'posted', posted: eur(600n) });
      await ledger.reserve(deposit('f:2', 'f:c', 'f:peer', 400n));
      expect(await ledger.post('f:2', eur(0n))).toMatchObject({ state: 'posted', posted: eur(0n) });
      expect(await ledger.account('f:c')).toMatchObject({ balance: 400n, debitsPending: 0n });
      await expectCleanAudit();
    });

    it('void gives the reservation back, once; replays of reserve change nothing', async () => {
      await customerWith('v:c', 1000n);
      await ledger.openAccount({ id: 'v:peer', kind: 'inter_operator', currency: 'EUR' });
      const first = await ledger.reserve(deposit('v:1', 'v:c', 'v:peer', 1000n));
      expect(await ledger.reserve(deposit('v:1', 'v:c', 'v:peer', 1000n))).toEqual({ ...first, replayed: true });
      expect(await ledger.account('v:c')).toMatchObject({ debitsPending: 1000n });
      for (const other of [deposit('v:1', 'v:c', 'v:peer', 999n), { ...deposit('v:1', 'v:c', 'v:peer', 1000n), memo: { x: 1 } }]) {
        expect((await rejection(ledger.reserve(other))).name).toBe('CONFLICT');
      }
      expect((await ledger.void('v:1')).state).toBe('voided');
      expect((await ledger.void('v:1')).replayed).toBe(true);
      expect((await rejection(ledger.post('v:1'))).name).toBe('SESSION_CLOSED');
      expect(await ledger.account('v:c')).toMatchObject({ balance: 1000n, debitsPending: 0n });
      expect((await rejection(ledger.void('v:none'))).name).toBe('UNKNOWN_TRANSACTION');
      await expectCleanAudit();
    });

    it('a transfer past its deadline cannot be posted and is expired by the sweep', async () => {
      await customerWith('e:c', 1000n);
      await ledger.openAccount({ id: 'e:peer', kind: 'inter_operator', currency: 'EUR' });
      await ledger.reserve({ ...deposit('e:1', 'e:c', 'e:peer', 700n), expiresAt: clock.now() + 1000 });
      clock.advance(1000);
      expect((await rejection(ledger.post('e:1'))).name).toBe('SESSION_CLOSED');
      expect(await ledger.expireDue()).toBeGreaterThanOrEqual(1);
      expect((await ledger.pending('e:1'))?.state).toBe('expired');
      expect(await ledger.account('e:c')).toMatchObject({ balance: 1000n, debitsPending: 0n });
      expect((await ledger.void('e:1')).replayed).toBe(true);
      await expectCleanAudit();
    });

    it('an account opened in a transaction that rolled back is opened again, not remembered', async () => {
      await customerWith('rb:c', 100n);
      const peer = { id: 'rb:peer', kind: 'inter_operator', currency: 'EUR' } as const;
      const attempt = (fail: boolean) =>
        engine.db.transaction(
          async (tx) => {
            await ledger.ensureAccountIn(tx, peer);
            const p = await ledger.reserveIn(tx, deposit('rb:1', 'rb:c', 'rb:peer', 100n));
            if (fail) throw new ObolError('UNAVAILABLE', 'the rest of the work failed');
            return p;
          },
          { isolation: 'read committed' },
        );
      expect((await rejection(attempt(true))).name).toBe('UNAVAILABLE');
      expect((await attempt(false)).state).toBe('pending');
      expect(await ledger.account('rb:peer')).toMatchObject({ kind: 'inter_operator' });
      await expectCleanAudit();
    });

    it('refuses a reservation in another currency than its accounts', async () => {
      await customerWith('cc:c', 1000n);
      await ledger.openAccount({ id: 'cc:peer', kind: 'inter_operator', currency: 'SEK' });
      expect((await rejection(ledger.reserve(deposit('cc:1', 'cc:c', 'cc:peer', 10n)))).name).toBe('CURRENCY_MISMATCH');
      expect(await ledger.pending('cc:1')).toBeUndefined();
    });

    it('lets exactly 10 of 50 concurrent reserves of 10.00 through against 100.00', async () => {
      await customerWith('race:c', 10_000n);
      await ledger.openAccount({ id: 'race:peer', kind: 'inter_operator', currency: 'EUR' });
      // Half go through a second handle: on PostgreSQL a second pool, like a second process.
      const other = new Ledger(engine.second, clock);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? other : ledger).reserve(deposit(`race:${i}`, 'race:c', 'race:peer', 1000n))),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as ObolError] : []));
      expect(ok).toHaveLength(10);
      expect(refused.map((e) => e.name)).toEqual(Array(40).fill('INSUFFICIENT_FUNDS'));
      expect(await ledger.account('race:c')).toMatchObject({ balance: 10_000n, debitsPending: 10_000n });
      await expectCleanAudit();
    });

    it('posts many clearings of one merchant at once, spread over shard rows', async () => {
      await ledger.openAccount({ id: 'hot:peer', kind: 'inter_operator', currency: 'EUR' });
      await ledger.openAccount({ id: 'hot:m', kind: 'merchant', currency: 'EUR' });
      const n = 40;
      for (let i = 0; i < n; i++) await ledger.reserve(deposit(`hot:${i}`, 'hot:peer', 'hot:m', 100n));
      const other = new Ledger(engine.second, clock);
      await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? other : ledger).post(`hot:${i}`, eur(BigInt(i)))));
      const paid = (BigInt(n) * BigInt(n - 1)) / 2n;
      expect(await ledger.balance('hot:m')).toEqual(eur(paid));
      expect(await ledger.balance('hot:peer')).toEqual(eur(-paid));
      const [shards] = await engine.db.query<{ n: string | number }>("SELECT count(*) AS n FROM account_shards WHERE account_id = 'hot:m'");
      expect(Number(shards!.n)).toBeGreaterThan(1);
      await expectCleanAudit();
    });

    it('pays out of a merchant’s shard-row credits by collecting them first, never more than it holds', async () => {
      await ledger.openAccount({ id: 'back:peer', kind: 'inter_operator', currency: 'EUR' });
      await ledger.openAccount({ id: 'back:m', kind: 'merchant', currency: 'EUR' });
      for (let i = 0; i < 6; i++) {
        await ledger.reserve(deposit(`back:${i}`, 'back:peer', 'back:m', 100n));
        await ledger.post(`back:${i}`, eur(50n));
      }
      expect(await ledger.balance('back:m')).toEqual(eur(300n));
      const [before] = await engine.db.query<{ n: string | number }>("SELECT count(*) AS n FROM account_shards WHERE account_id = 'back:m'");
      expect(Number(before!.n)).toBeGreaterThan(0);
      // Its credits sit on shard rows; a debit collects them into the row first and sees all it holds.
      await engine.db.transaction((tx) => ledger.payIn(tx, { id: 'back:refund:1', kind: 'refund', from: 'back:m', to: 'back:peer', amount: eur(100n) }));
      expect(await ledger.balance('back:m')).toEqual(eur(200n));
      const [left] = await engine.db.query<{ n: string | number }>("SELECT count(*) AS n FROM account_shards WHERE account_id = 'back:m'");
      expect(Number(left!.n)).toBe(0);
      // More than it holds is refused as such, not as an error of the ledger.
      await expect(
        engine.db.transaction((tx) => ledger.payIn(tx, { id: 'back:refund:2', kind: 'refund', from: 'back:m', to: 'back:peer', amount: eur(201n) })),
      ).rejects.toMatchObject({ name: 'INSUFFICIENT_FUNDS' });
      // A system account has no limit and nothing to collect.
      await expect(engine.db.transaction((tx) => ledger.collectShardsIn(tx, 'back:peer'))).rejects.toMatchObject({ name: 'MALFORMED' });
      await expect(engine.db.transaction((tx) => ledger.collectShardsIn(tx, 'back:peer'))).rejects.toMatchObject({ name: 'MALFORMED' });
      expect(await ledger.balance('back:m')).toEqual(eur(200n));
      await expectCleanAudit();
    });

    it('keeps zero-sum, limits and reservations after every step of random operations', async () => {
      const fc = await import('fast-check');
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.record({ op: fc.constant('reserve' as const), who: fc.nat(2), amount: fc.bigInt(1n, 900n), ttl: fc.integer({ min: 1, max: 5000 }) }),
              fc.record({ op: fc.constant('post' as const), which: fc.nat(30), amount: fc.option(fc.bigInt(0n, 900n)) }),
              fc.record({ op: fc.constant('void' as const), which: fc.nat(30) }),
              fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
              fc.record({ op: fc.constant('pay' as const), who: fc.nat(2), amount: fc.bigInt(1n, 900n) }),
            ),
            { maxLength: 25 },
          ),
          async (ops) => {
            const p = `prop${run++}`;
            const customers = [0, 1, 2].map((i) => `${p}:c${i}`);
            for (const [i, c] of customers.entries()) await customerWith(c, BigInt(500 * i));
            await ledger.setCreditLimit(customers[2]!, 300n);
            await ledger.openAccount({ id: `${p}:peer`, kind: 'inter_operator', currency: 'EUR' });
            await ledger.openAccount({ id: `${p}:m`, kind: 'merchant', currency: 'EUR' });
            const reserved: string[] = [];
            for (const [step, o] of ops.entries()) {
              // Refusals are the ledger's business (INSUFFICIENT_FUNDS, SESSION_CLOSED, …); the
              // books must be sound whatever was refused.
              const attempt = async () => {
                if (o.op === 'reserve') {
                  const id = `${p}:d${step}`;
                  reserved.push(id);
                  await ledger.reserve({ ...deposit(id, customers[o.who]!, `${p}:peer`, o.amount), expiresAt: clock.now() + o.ttl });
                } else if (o.op === 'post' && reserved.length > 0) {
                  await ledger.post(reserved[o.which % reserved.length]!, o.amount === null ? undefined : eur(o.amount));
                } else if (o.op === 'void' && reserved.length > 0) {
                  await ledger.void(reserved[o.which % reserved.length]!);
                } else if (o.op === 'tick') {
                  clock.advance(o.ms);
                  await ledger.expireDue();
                } else if (o.op === 'pay') {
                  await ledger.transfer(`${p}:pay${step}`, 'sale', [
                    { account: customers[o.who]!, amount: eur(-o.amount) },
                    { account: `${p}:m`, amount: eur(o.amount) },
                  ]);
                }
              };
              await attempt().catch((e: unknown) => {
                if (!(e instanceof ObolError) || e.name === 'INTERNAL') throw e;
              });
              const report = await ledger.audit();
              expect(report.ok, JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))).toBe(true);
            }
          },
        ),
        { numRuns: 15 },
      );
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

    it('detects a reservation that is not the sum of the pending transfers', async () => {
      await customerWith('tamper:p', 1000n);
      await engine.db.query("UPDATE accounts SET debits_pending = 7 WHERE id = 'tamper:p'");
      try {
        expect((await ledger.audit()).pendingMismatches).toEqual([{ account: 'tamper:p', stored: 7n, fromPending: 0n }]);
      } finally {
        await engine.db.query("UPDATE accounts SET debits_pending = 0 WHERE id = 'tamper:p'");
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
