import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { generateSigningKeyPair, type KeyHandle, keyHandle } from '@obol/protocol/keys';
import { signMessage, verifyMessage } from '@obol/protocol/signed';
import { randomId } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BillingDispatcher,
  type BillingRecord,
  type BillingSink,
  backoffDelay,
  enqueueBillingRecord,
  JsonlFileSink,
  verifyWebhook,
  WebhookSink,
  webhookHeaders,
} from '../src/billing/index.ts';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { type Db, openDb } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { silentLog } from '../src/operator/context.ts';

let db: Db;
let key: KeyHandle;
let dir: string;
// The dispatcher logs through the part of a pino logger it names; these tests read outcomes, not logs.
const logger = silentLog;
const noJitter = { random: () => 0.5 };

beforeAll(async () => {
  db = await openDb(); // in memory, shared by this file; each test uses its own sink names
  await migrate(db);
  key = await keyHandle(await generateSigningKeyPair());
  dir = await mkdtemp(join(tmpdir(), 'obol-billing-'));
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function withdrawal(time: number): Promise<BillingRecord> {
  return signMessage(
    'am.withdrawal',
    {
      recordId: randomId(),
      operatorId: 'bank-a',
      customerId: 'customer-1',
      transactionId: 'bank-a.7.3',
      handle: 't-AAAAAAAAAAAAAAAAAAAAAw',
      merchantOperatorId: 'bank-b',
      amount: 'EUR:0.30',
      amountMerchant: 'SEK:3.40',
      rate: '11.3333',
      count: 3,
      purchasesHash: randomId(32),
      flagged: false,
      time,
    },
    key.signer,
  );
}

function deposit(time: number): Promise<BillingRecord> {
  return signMessage(
    'am.deposit',
    {
      recordId: randomId(),
      operatorId: 'bank-b',
      merchantId: 'shop.example',
      // The merchant's operator knows the transaction by its trade handle only.
      transactionId: 't-AAAAAAAAAAAAAAAAAAAAAw',
      amount: 'SEK:3.40',
      count: 3,
      purchasesHash: randomId(32),
      flagged: false,
      time,
    },
    key.signer,
  );
}

const enqueue = (sinks: string[], record: BillingRecord, now: number) =>
  db.transaction((tx) => enqueueBillingRecord(tx, sinks, record, now));

const rowsOf = (sink: string) =>
  db.query<{ record_id: string; attempts: number; next_attempt_at: bigint; delivered_at: bigint | null }>(
    'SELECT key AS record_id, attempts, next_attempt_at, done_at AS delivered_at FROM outbox WHERE topic = $1',
    [`billing:${sink}`],
  );

const verifyRecord = (message: unknown, type: 'am.withdrawal' | 'am.deposit') =>
  verifyMessage(message, type, (kid) => (kid === key.kid ? key.publicKey : undefined));

async function jsonLines(path: string): Promise<BillingRecord[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as BillingRecord);
}

/** A sink whose deliveries the test completes by hand. */
function manualSink(name: string) {
  const calls: { record: BillingRecord; resolve: () => void; reject: (e: Error) => void }[] = [];
  const sink: BillingSink = {
    name,
    deliver: (record) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ record, resolve, reject });
      }),
  };
  return { sink, calls };
}

describe('billing outbox', () => {
  it('keeps one row per sink for a record enqueued twice', async () => {
    const clock = new ManualClock();
    const record = await withdrawal(clock.now());
    expect(await enqueue(['twice-a', 'twice-b'], record, clock.now())).toEqual(['twice-a', 'twice-b']);
    // Replaying the clearing (a retried transaction, a repeated message) adds nothing.
    expect(await enqueue(['twice-a', 'twice-b'], record, clock.now() + 5)).toEqual([]);
    expect(await rowsOf('twice-a')).toHaveLength(1);
    expect(await rowsOf('twice-b')).toHaveLength(1);
    // A JSON round trip reorders nothing that matters: still the same record.
    expect(await enqueue(['twice-a'], JSON.parse(JSON.stringify(record)), clock.now())).toEqual([]);
  });

  it('refuses the same record id with different contents', async () => {
    const clock = new ManualClock();
    const record = await withdrawal(clock.now());
    await enqueue(['conflict'], record, clock.now());
    const changed = await signMessage('am.withdrawal', { ...record.body, amount: 'EUR:0.31' } as never, key.signer);
    await expect(enqueue(['conflict'], changed, clock.now())).rejects.toMatchObject({ name: 'CONFLICT' });
  });

  it('writes nothing when the clearing transaction rolls back', async () => {
    const clock = new ManualClock();
    const record = await withdrawal(clock.now());
    await expect(
      db.transaction(async (tx) => {
        await enqueueBillingRecord(tx, ['rollback'], record, clock.now());
        throw new ObolError('CONFLICT', 'clearing failed after the record was enqueued');
      }),
    ).rejects.toThrow('clearing failed');
    expect(await rowsOf('rollback')).toHaveLength(0);
  });

  it('refuses records that are not billing records, and an empty sink list', async () => {
    const clock = new ManualClock();
    const record = await withdrawal(clock.now());
    await expect(enqueue([], record, clock.now())).rejects.toMatchObject({ name: 'INTERNAL' });
    await expect(enqueue(['Bad Name'], record, clock.now())).rejects.toMatchObject({ name: 'INTERNAL' });
    const other = { ...record, type: 'wallet.record' } as unknown as BillingRecord;
    await expect(enqueue(['typed'], other, clock.now())).rejects.toMatchObject({ name: 'WRONG_MESSAGE_TYPE' });
  });
});

describe('JsonlFileSink', () => {
  it('writes one line per record and does not duplicate a re-delivery, even after reopening', async () => {
    const clock = new ManualClock();
    const path = join(dir, 'nested', 'records.jsonl');
    const a = await withdrawal(clock.now());
    const b = await deposit(clock.now());

    const sink = new JsonlFileSink(path);
    await sink.deliver(a);
    await sink.deliver(b);
    await sink.deliver(a);
    await sink.close();
    expect((await jsonLines(path)).map((r) => r.body.recordId)).toEqual([a.body.recordId, b.body.recordId]);

    // A new process (the dispatcher crashed after writing, before marking delivered) retries.
    const reopened = new JsonlFileSink(path);
    await reopened.deliver(a);
    await reopened.deliver(b);
    await reopened.close();
    const lines = await jsonLines(path);
    expect(lines).toHaveLength(2);
    // Each line is the signed record as the operator signed it.
    await verifyRecord(lines[0], 'am.withdrawal');
    await verifyRecord(lines[1], 'am.deposit');
  });

  it('cuts off a line left half-written by a crash, and refuses a file with foreign lines', async () => {
    const clock = new ManualClock();
    const path = join(dir, 'torn.jsonl');
    const a = await withdrawal(clock.now());
    const c = await withdrawal(clock.now());
    const sink = new JsonlFileSink(path);
    await sink.deliver(a);
    await sink.close();
    await appendFile(path, JSON.stringify(c).slice(0, 40));

    const reopened = new JsonlFileSink(path);
    await reopened.deliver(c);
    await reopened.close();
    expect((await jsonLines(path)).map((r) => r.body.recordId)).toEqual([a.body.recordId, c.body.recordId]);

    await appendFile(path, 'not json\n');
    const corrupt = new JsonlFileSink(path);
    await expect(corrupt.deliver(await withdrawal(clock.now()))).rejects.toThrow('line 3 is not a billing record');
    await corrupt.close();
  });
});

describe('webhook signature (Standard Webhooks)', () => {
  const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
  const body = '{"v":1}';
  const id = 'w.op-sek.42';

  it('verifies the right secret, id, body and time only', () => {
    const headers = webhookHeaders(secret, id, 1_800_000_000, body);
    expect(headers).toMatchObject({ 'webhook-id': id, 'webhook-timestamp': '1800000000' });
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifyWebhook(secret, headers, body, 1_800_000_000, 300)).toBe(id);
    expect(verifyWebhook(secret, headers, Buffer.from(body), 1_800_000_299, 300)).toBe(id);
    expect(verifyWebhook(secret, new Headers(headers), body, 1_800_000_000, 300)).toBe(id);
    expect(verifyWebhook(`whsec_${Buffer.from('another key').toString('base64')}`, headers, body, 1_800_000_000, 300)).toBeUndefined();
    expect(verifyWebhook(secret, headers, '{"v":2}', 1_800_000_000, 300)).toBeUndefined();
    expect(verifyWebhook(secret, { ...headers, 'webhook-id': 'w.op-sek.43' }, body, 1_800_000_000, 300)).toBeUndefined();
    expect(verifyWebhook(secret, headers, body, 1_800_000_301, 300)).toBeUndefined();
    expect(verifyWebhook(secret, { ...headers, 'webhook-signature': 'garbage' }, body, 1_800_000_000, 300)).toBeUndefined();
    expect(verifyWebhook(secret, { 'webhook-id': id }, body, 1_800_000_000, 300)).toBeUndefined();
    // A sender rotating secrets may send several signatures; one valid one is enough.
    const rotated = { ...headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}` };
    expect(verifyWebhook(secret, rotated, body, 1_800_000_000, 300)).toBe(id);
  });

  it('is what the Standard Webhooks reference library signs and verifies', () => {
    const reference = new StandardWebhook(secret);
    const at = new Date(1_800_000_000_000);
    // The library's signature of the same message is ours, byte for byte …
    expect(webhookHeaders(secret, id, 1_800_000_000, body)['webhook-signature']).toBe(reference.sign(id, at, body));
    // … and it accepts what we send (it checks the time against its own clock).
    const now = Math.floor(Date.now() / 1000);
    expect(reference.verify(body, webhookHeaders(secret, id, now, body))).toEqual({ v: 1 });
    expect(() => reference.verify('{"v":2}', webhookHeaders(secret, id, now, body))).toThrow();
  });
});

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The record id the signature verified for; undefined when it did not verify. */
  verified: string | undefined;
}

async function listen(handler: (req: IncomingMessage, body: string) => { status: number; text: string } | null) {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = handler(req, Buffer.concat(chunks).toString('utf8'));
      if (!answer) return; // never answer
      res.statusCode = answer.status;
      res.end(answer.text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/obol/billing?token=not-logged`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('BillingDispatcher with the webhook sink', () => {
  it('retries a failing webhook with back-off until it answers 2xx, signed and with the record id', async () => {
    const clock = new ManualClock();
    const secret = `whsec_${randomId()}`;
    const received: Received[] = [];
    const server = await listen((req, body) => {
      received.push({ headers: req.headers, body, verified: verifyWebhook(secret, req.headers, body, Math.floor(clock.now() / 1000), 300) });
      return received.length <= 2 ? { status: 500, text: 'billing system busy' } : { status: 200, text: 'ok' };
    });
    const sink = new WebhookSink({ url: server.url, secret, timeoutMs: 5000, name: 'hook', clock });
    const dispatcher = new BillingDispatcher({ db, sinks: [sink], clock, logger, backoff: noJitter });
    try {
      const record = await withdrawal(clock.now());
      await enqueue(['hook'], record, clock.now());
      const t0 = clock.now();

      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 1, released: 0 });
      let [pending] = (await dispatcher.pending()).filter((p) => p.sink === 'hook');
      expect(pending).toMatchObject({ recordId: record.body.recordId, attempts: 1, nextAttemptAt: t0 + 1000 });
      expect(pending!.lastError).toContain('answered 500: billing system busy');
      expect(pending!.lastError).not.toContain('token');

      clock.advance(999);
      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 0, released: 0 });
      expect(received).toHaveLength(1);

      clock.advance(1);
      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 1, released: 0 });
      [pending] = (await dispatcher.pending()).filter((p) => p.sink === 'hook');
      expect(pending).toMatchObject({ attempts: 2, nextAttemptAt: t0 + 1000 + 2000 });

      clock.advance(1999);
      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 0, released: 0 });
      clock.advance(1);
      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 1, failed: 0, released: 0 });

      expect((await dispatcher.pending()).filter((p) => p.sink === 'hook')).toEqual([]);
      const [row] = await rowsOf('hook');
      expect(row).toMatchObject({ attempts: 3, delivered_at: BigInt(clock.now()) });

      expect(received).toHaveLength(3);
      for (const r of received) {
        // Signed, and every retry under the same webhook-id: the record id to deduplicate on.
        expect(r.verified).toBe(record.body.recordId);
        expect(await verifyRecord(JSON.parse(r.body), 'am.withdrawal')).toEqual(record);
      }
      // Someone without the secret cannot produce a header the receiver accepts.
      const last = received[2]!;
      expect(verifyWebhook(`${secret}x`, last.headers, last.body, Math.floor(clock.now() / 1000), 300)).toBeUndefined();

      // Nothing more to do.
      clock.advance(3_600_000);
      expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 0, released: 0 });
      expect(received).toHaveLength(3);
    } finally {
      await dispatcher.stop();
      await sink.close();
      await server.close();
    }
  });

  it('gives up on a webhook that does not answer in time, as a TIMEOUT', async () => {
    const server = await listen(() => null);
    const sink = new WebhookSink({ url: server.url, secret: 'whsec_timeout', timeoutMs: 200 });
    try {
      await expect(sink.deliver(await withdrawal(Date.UTC(2026, 0, 1)))).rejects.toMatchObject({ name: 'TIMEOUT' });
    } finally {
      await sink.close();
      await server.close();
    }
  });

  it('reports a webhook that cannot be reached', async () => {
    const server = await listen(() => ({ status: 200, text: 'ok' }));
    await server.close(); // nothing listens on that port any more
    const sink = new WebhookSink({ url: server.url, secret: 'whsec_gone', timeoutMs: 2000 });
    try {
      await expect(sink.deliver(await withdrawal(Date.UTC(2026, 0, 1)))).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    } finally {
      await sink.close();
    }
  });
});

describe('BillingDispatcher', () => {
  it('computes exponential back-off with a cap and bounded jitter', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, noJitter))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelay(13, noJitter)).toBe(3_600_000);
    expect(backoffDelay(5000, noJitter)).toBe(3_600_000);
    expect(backoffDelay(1, { random: () => 0 })).toBe(800);
    expect(backoffDelay(1, { random: () => 0.999999 })).toBeCloseTo(1200, -1);
    expect(backoffDelay(30, { random: () => 0.999999 })).toBe(3_600_000);
  });

  it('still delivers a pending record after a restart (the outbox is durable)', async () => {
    const clock = new ManualClock();
    const path = join(dir, 'restart.jsonl');
    const record = await deposit(clock.now());
    await enqueue(['restart'], record, clock.now());

    // The first process's sink is down; then the process goes away.
    const down: BillingSink = {
      name: 'restart',
      deliver: async () => {
        throw new Error('disk not mounted');
      },
    };
    const first = new BillingDispatcher({ db, sinks: [down], clock, logger, backoff: noJitter });
    expect(await first.dispatchDue()).toMatchObject({ failed: 1 });
    await first.stop();
    const [pending] = (await first.pending()).filter((p) => p.sink === 'restart');
    expect(pending).toMatchObject({ attempts: 1, lastError: 'Error: disk not mounted', type: 'am.deposit' });

    // A new process, same database, working sink.
    const sink = new JsonlFileSink(path, { name: 'restart' });
    const second = new BillingDispatcher({ db, sinks: [sink], clock, logger, backoff: noJitter });
    clock.advance(1000);
    expect(await second.dispatchDue()).toEqual({ delivered: 1, failed: 0, released: 0 });
    await sink.close();
    expect((await jsonLines(path)).map((r) => r.body.recordId)).toEqual([record.body.recordId]);
    expect((await second.pending()).filter((p) => p.sink === 'restart')).toEqual([]);
  });

  it('lets only one of two dispatchers deliver a row while it is claimed', async () => {
    const clock = new ManualClock();
    const record = await withdrawal(clock.now());
    await enqueue(['leased'], record, clock.now());
    const a = manualSink('leased');
    const b = manualSink('leased');
    const first = new BillingDispatcher({ db, sinks: [a.sink], clock, logger, leaseMs: 60_000 });
    const second = new BillingDispatcher({ db, sinks: [b.sink], clock, logger, leaseMs: 60_000 });

    const round = first.dispatchDue();
    await vi.waitFor(() => expect(a.calls).toHaveLength(1));
    // While the first delivers, the row is leased: the second finds nothing due.
    expect(await second.dispatchDue()).toEqual({ delivered: 0, failed: 0, released: 0 });
    // Within one process, another round does not start the same delivery again either.
    const again = first.dispatchDue();
    a.calls[0]!.resolve();
    expect(await round).toEqual({ delivered: 1, failed: 0, released: 0 });
    expect(await again).toEqual({ delivered: 0, failed: 0, released: 0 });
    expect(a.calls).toHaveLength(1);
    expect(b.calls).toHaveLength(0);

    // A process that stalls past its lease loses the row to another (a duplicate the receiver drops).
    const late = await withdrawal(clock.now());
    await enqueue(['leased'], late, clock.now());
    const stalled = first.dispatchDue();
    await vi.waitFor(() => expect(a.calls).toHaveLength(2));
    clock.advance(60_000);
    const taken = second.dispatchDue();
    await vi.waitFor(() => expect(b.calls).toHaveLength(1));
    b.calls[0]!.resolve();
    expect(await taken).toMatchObject({ delivered: 1 });
    // The stalled delivery then fails; it must not undo the other process's success.
    a.calls[1]!.reject(new Error('too late'));
    expect(await stalled).toMatchObject({ failed: 1 });
    expect(await rowsOf('leased')).toHaveLength(2);
    expect((await rowsOf('leased')).every((r) => r.delivered_at !== null)).toBe(true);
  });

  it('hands back the rest of a round once its sink has failed', async () => {
    const clock = new ManualClock();
    const records = [await withdrawal(clock.now()), await withdrawal(clock.now()), await withdrawal(clock.now())];
    for (const r of records) await enqueue(['flaky'], r, clock.now());
    let calls = 0;
    const flaky: BillingSink = {
      name: 'flaky',
      deliver: async () => {
        calls++;
        throw new Error('connection refused');
      },
    };
    const dispatcher = new BillingDispatcher({ db, sinks: [flaky], clock, logger, backoff: noJitter });
    expect(await dispatcher.dispatchDue()).toEqual({ delivered: 0, failed: 1, released: 2 });
    expect(calls).toBe(1);
    const pending = (await dispatcher.pending()).filter((p) => p.sink === 'flaky');
    // The two untried rows are due again as before; the tried one waits its back-off.
    expect(pending.map((p) => [p.attempts, p.nextAttemptAt])).toEqual([
      [0, clock.now()],
      [0, clock.now()],
      [1, clock.now() + 1000],
    ]);
  });

  it('runs on a timer and stop() waits for the round in progress', async () => {
    const clock = new ManualClock();
    const record = await deposit(clock.now());
    await enqueue(['timer'], record, clock.now());
    const { sink, calls } = manualSink('timer');
    const dispatcher = new BillingDispatcher({ db, sinks: [sink], clock, logger });
    dispatcher.start(10);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    let stopped = false;
    const stopping = dispatcher.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(stopped).toBe(false);
    calls[0]!.resolve();
    await stopping;
    expect((await rowsOf('timer'))[0]!.delivered_at).toBe(BigInt(clock.now()));
  });
});
