import { ManualClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, openDb } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { type Deliver, enqueue, enqueueAll, entryState, OutboxDispatcher, type OutboxEntry, pendingEntries } from '../src/store/outbox.ts';
import { startTestPostgres, type TestPostgres } from './support/testPostgres.ts';

/** The one outbox (issue 12 item 2): retry with the one back-off, terminal answers, resends after a crash. */
const engines: { name: string; open: () => Promise<{ db: Db; second: Db; stop: () => Promise<void> }> }[] = [
  {
    name: 'PGlite',
    async open() {
      const db = await openDb();
      return { db, second: db, stop: () => db.close() };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const server: TestPostgres = await startTestPostgres();
      const db = await openDb({ databaseUrl: server.url });
      const second = await openDb({ databaseUrl: server.url });
      return {
        db,
        second,
        async stop() {
          await db.close();
          await second.close();
          await server.stop();
        },
      };
    },
  },
];

const noJitter = { random: () => 0.5 };

describe.each(engines)('outbox on $name', ({ open }) => {
  let db: Db;
  let second: Db;
  let stop: () => Promise<void>;
  const clock = new ManualClock();
  const lines: { level: string; msg: string | undefined; obj: object }[] = [];
  const logger = {
    info: (obj: object, msg?: string) => lines.push({ level: 'info', msg, obj }),
    warn: (obj: object, msg?: string) => lines.push({ level: 'warn', msg, obj }),
    error: (obj: object, msg?: string) => lines.push({ level: 'error', msg, obj }),
  };

  beforeAll(async () => {
    ({ db, second, stop } = await open());
    await migrate(db);
  });
  afterAll(async () => {
    await stop?.();
  });

  /** A receiver that keeps what it got, by key, and answers with what it was told to. */
  function receiver(answers: (() => unknown)[]) {
    const got: OutboxEntry[] = [];
    const deliver: Deliver = async (entry) => {
      got.push(entry);
      const next = answers.shift();
      return next?.();
    };
    return { got, deliver };
  }

  it('writes an entry once; the same key with another payload is a CONFLICT', async () => {
    expect(await db.transaction((tx) => enqueue(tx, 'test.once', 'k1', { a: 1, b: 2 }, clock.now()))).toBe(true);
    expect(await db.transaction((tx) => enqueue(tx, 'test.once', 'k1', { b: 2, a: 1 }, clock.now()))).toBe(false);
    const e = await db.transaction((tx) => enqueue(tx, 'test.once', 'k1', { a: 2 }, clock.now())).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ObolError);
    expect((e as ObolError).name).toBe('CONFLICT');
    // An entry written in a transaction that rolls back does not exist.
    await db
      .transaction(async (tx) => {
        await enqueue(tx, 'test.once', 'k2', {}, clock.now());
        throw new Error('the work failed');
      })
      .catch(() => undefined);
    expect(await entryState(db, 'test.once', 'k2')).toBeUndefined();
  });

  it('writes several entries in one statement, each with the rules of one: new, again, or a CONFLICT', async () => {
    const both = [
      { topic: 'test.batch', key: 'b1', payload: { n: 1 } },
      { topic: 'test.other', key: 'b1', payload: { n: 2 } },
    ];
    expect(await db.transaction((tx) => enqueueAll(tx, both, clock.now()))).toEqual([true, true]);
    // Again, with one new entry among them: only that one is written.
    expect(await db.transaction((tx) => enqueueAll(tx, [...both, { topic: 'test.batch', key: 'b2', payload: {} }], clock.now()))).toEqual([false, false, true]);
    const written = (await pendingEntries(db, ['test.batch', 'test.other'])).map((e) => [e.topic, e.key, e.payload]);
    expect(written.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      ['test.batch', 'b1', { n: 1 }],
      ['test.batch', 'b2', {}],
      ['test.other', 'b1', { n: 2 }],
    ]);
    // One changed payload refuses the whole write: nothing of it stays.
    const changed = await db
      .transaction((tx) => enqueueAll(tx, [{ topic: 'test.batch', key: 'b3', payload: {} }, { topic: 'test.other', key: 'b1', payload: { n: 3 } }], clock.now()))
      .catch((err: unknown) => err);
    expect((changed as ObolError).name).toBe('CONFLICT');
    expect(await entryState(db, 'test.batch', 'b3')).toBeUndefined();
    // The same key twice in one write cannot say which was new.
    const twice = await db.transaction((tx) => enqueueAll(tx, [both[0]!, both[0]!], clock.now())).catch((err: unknown) => err);
    expect((twice as ObolError).name).toBe('INTERNAL');
  });

  it('retries a failed delivery with the one back-off, and keeps the answer once delivered', async () => {
    const fail = () => {
      throw new ObolError('UNAVAILABLE', 'the receiver is down');
    };
    const r = receiver([fail, fail, () => ({ ok: true })]);
    const outbox = new OutboxDispatcher({ db, clock, topics: new Map([['test.retry', r.deliver]]), backoff: noJitter, logger });
    await db.transaction((tx) => enqueue(tx, 'test.retry', 'r1', { n: 1 }, clock.now()));
    expect(await outbox.dispatchDue()).toEqual({ delivered: 0, failed: 1, refused: 0, released: 0 });
    let state = await entryState(db, 'test.retry', 'r1');
    expect(state).toMatchObject({ attempts: 1, done: false, nextAttemptAt: clock.now() + 1000 });
    expect(state?.lastError).toContain('the receiver is down');
    // Not before its time.
    clock.advance(999);
    expect(await outbox.dispatchDue()).toEqual({ delivered: 0, failed: 0, refused: 0, released: 0 });
    clock.advance(1);
    expect(await outbox.dispatchDue()).toMatchObject({ failed: 1 });
    state = await entryState(db, 'test.retry', 'r1');
    expect(state).toMatchObject({ attempts: 2, nextAttemptAt: clock.now() + 2000 });
    clock.advance(2000);
    expect(await outbox.dispatchDue()).toMatchObject({ delivered: 1 });
    expect(await entryState(db, 'test.retry', 'r1')).toMatchObject({ attempts: 3, done: true, refusal: null, lastError: null });
    const [row] = await db.query<{ answer: unknown }>(`SELECT answer FROM outbox WHERE topic = 'test.retry' AND key = 'r1'`);
    expect(row?.answer).toEqual({ ok: true });
    // Every attempt carried the same key and payload.
    expect(r.got.map((e) => [e.key, e.payload])).toEqual(Array(3).fill(['r1', { n: 1 }]));
    expect(await pendingEntries(db, ['test.retry'])).toEqual([]);
  });

  it('a terminal answer ends the entry: kept, logged, never sent again', async () => {
    const r = receiver([
      () => {
        throw new ObolError('SESSION_CLOSED', 'never opened here');
      },
    ]);
    const outbox = new OutboxDispatcher({
      db,
      clock,
      topics: new Map([['test.final', r.deliver]]),
      isFinal: (e) => e instanceof ObolError && e.name === 'SESSION_CLOSED',
      logger,
    });
    await db.transaction((tx) => enqueue(tx, 'test.final', 'f1', { n: 1 }, clock.now()));
    lines.length = 0;
    expect(await outbox.dispatchDue()).toEqual({ delivered: 0, failed: 0, refused: 1, released: 0 });
    expect(await entryState(db, 'test.final', 'f1')).toMatchObject({ done: true, refusal: { name: 'SESSION_CLOSED' } });
    expect(lines.find((l) => l.level === 'error' && (l.obj as { key?: string }).key === 'f1')).toBeDefined();
    for (let i = 0; i < 5; i++) {
      clock.advance(3_600_000);
      expect(await outbox.dispatchDue()).toEqual({ delivered: 0, failed: 0, refused: 0, released: 0 });
    }
    expect(r.got).toHaveLength(1);
  });

  it('a process that dies between sending and marking sent: another sends it again, same key and payload', async () => {
    const received: OutboxEntry[] = [];
    // The first process hands the entry over and never comes back (it died before marking it).
    const dying: Deliver = (entry) => {
      received.push(entry);
      return new Promise(() => {});
    };
    const first = new OutboxDispatcher({ db, clock, topics: new Map([['test.crash', dying]]), leaseMs: 60_000 });
    const alive: Deliver = async (entry) => {
      received.push(entry);
    };
    const other = new OutboxDispatcher({ db: second, clock, topics: new Map([['test.crash', alive]]), leaseMs: 60_000 });
    await db.transaction((tx) => enqueue(tx, 'test.crash', 'c1', { amount: 'EUR:1.00' }, clock.now()));
    void first.dispatchDue();
    await expect.poll(() => received.length).toBe(1);
    // While the first holds its lease, nobody else sends it.
    expect(await other.dispatchDue()).toEqual({ delivered: 0, failed: 0, refused: 0, released: 0 });
    clock.advance(60_000);
    expect(await other.dispatchDue()).toEqual({ delivered: 1, failed: 0, refused: 0, released: 0 });
    expect(received.map((e) => [e.key, e.payload])).toEqual([
      ['c1', { amount: 'EUR:1.00' }],
      ['c1', { amount: 'EUR:1.00' }],
    ]);
    expect(await entryState(db, 'test.crash', 'c1')).toMatchObject({ done: true });
  });

  it('dispatchOne delivers a just-written entry now, and leaves one that is not due', async () => {
    const r = receiver([
      () => {
        throw new ObolError('UNAVAILABLE', 'down');
      },
      () => 'ok',
    ]);
    const outbox = new OutboxDispatcher({ db, clock, topics: new Map([['test.one', r.deliver]]), backoff: noJitter });
    await db.transaction((tx) => enqueue(tx, 'test.one', 'o1', {}, clock.now()));
    expect(await outbox.dispatchOne('test.one', 'o1')).toBe('failed');
    expect(await outbox.dispatchOne('test.one', 'o1')).toBe('not-due');
    clock.advance(1000);
    expect(await outbox.dispatchOne('test.one', 'o1')).toBe('delivered');
    expect(await outbox.dispatchOne('test.one', 'o1')).toBe('not-due');
    expect(r.got).toHaveLength(2);
  });
});
