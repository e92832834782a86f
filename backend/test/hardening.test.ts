import { connect } from 'node:net';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { generateSigningKeyPair, keyHandle } from '@obol/protocol/keys';
import { Arbiter } from '../src/arbiter/arbiter.ts';
import { type ArbiterServer, startArbiterServer } from '../src/arbiter/server.ts';
import { bearerMatches, sameSecret } from '../src/http/secrets.ts';
import { createOperatorIdentity, createRoot } from '../src/operator/identity.ts';
import { type OperatorServer, startOperator } from '../src/operator/server.ts';
import { openDb } from '../src/store/db.ts';
import { migrate } from '../src/store/migrate.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { SealKeys } from '../src/store/sealedColumn.ts';

/**
 * What a local user or a slow client can do to an operator's host: read or rewrite its database
 * files (they are the owner's only), guess its admin token by timing (compared in constant time),
 * hold its connections by sending a body one byte at a time (cut off).
 */
describe('secrets are compared in constant time, through one helper', () => {
  it('matches only the same secret, whatever the lengths', () => {
    expect(sameSecret('s3cret-token-0123', 's3cret-token-0123')).toBe(true);
    for (const other of ['', 's', 's3cret-token-012', 's3cret-token-01234', 'S3cret-token-0123', undefined]) {
      expect(sameSecret(other, 's3cret-token-0123')).toBe(false);
    }
    expect(bearerMatches('Bearer s3cret-token-0123', 's3cret-token-0123')).toBe(true);
    for (const header of [undefined, '', 'Bearer ', 's3cret-token-0123', 'Basic s3cret-token-0123', 'Bearer s3cret-token-0124']) {
      expect(bearerMatches(header, 's3cret-token-0123')).toBe(false);
    }
  });
});

describe('a PGlite data folder belongs to its owner only', () => {
  let base = '';
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'obol-modes-'));
  });
  afterAll(async () => rm(base, { recursive: true, force: true }));

  async function modes(dir: string): Promise<Array<{ path: string; dir: boolean; mode: number }>> {
    const out = [{ path: dir, dir: true, mode: (await stat(dir)).mode & 0o777 }];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await modes(path)));
      else if (e.isFile()) out.push({ path, dir: false, mode: (await stat(path)).mode & 0o777 });
    }
    return out;
  }
  const loose = (list: Array<{ path: string; dir: boolean; mode: number }>) =>
    list.filter((f) => f.mode !== (f.dir ? 0o700 : 0o600)).map((f) => `${f.path} ${f.mode.toString(8)}`);

  it('a new folder is 0700 with its files 0600, open and after a restart', async () => {
    const dataDir = join(base, 'new', 'ledger');
    const db = await openDb({ dataDir });
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    await migrate(db);
    await db.close();
    const files = await modes(dataDir);
    expect(files.length).toBeGreaterThan(100);
    expect(loose(files)).toEqual([]);

    const again = await openDb({ dataDir });
    await again.query('CREATE TABLE more (x int)');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    await again.close();
    expect(loose(await modes(dataDir))).toEqual([]);
  }, 60_000);

  it('an existing folder left open to others is closed when the database opens', async () => {
    const dataDir = join(base, 'existing');
    await mkdir(dataDir, { mode: 0o777 });
    const db = await openDb({ dataDir });
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    await db.close();
  }, 60_000);
});

describe('a client that sends its request one byte at a time is cut off', () => {
  const limits = { requestTimeoutMs: 400 };
  let operator: OperatorServer;
  let shop: Shop;
  let arbiter: ArbiterServer;
  beforeAll(async () => {
    const now = systemClock.now();
    const root = await createRoot('Hardening Root', now);
    const { identity } = await createOperatorIdentity(root, 'op-slow', now);
    operator = await startOperator({
      config: { operatorId: 'op-slow', name: 'Slow', currency: 'EUR', port: 0, keyDir: '', peers: {}, rates: {}, adminToken: 'admin-token-0123456789' },
      identity,
      sealKeys: await SealKeys.ephemeral(),
      db: await openDb(),
      timers: false,
      limits,
    });
    shop = await startShop({
      merchantId: 'slow.example',
      name: 'Slow Shop',
      operatorUrl: operator.url,
      operatorId: 'op-slow',
      currency: 'EUR',
      adminToken: 'admin-token-0123456789',
      clock: systemClock,
      db: await openDb(),
      sweepIntervalMs: 0,
      limits,
    });
    const key = await keyHandle(await generateSigningKeyPair());
    arbiter = await startArbiterServer(new Arbiter({ key, root: root.cert, operators: [operator.url] }), { limits });
  }, 60_000);
  afterAll(async () => {
    await arbiter?.close();
    await shop?.close();
    await operator?.close();
  });

  /** Sends the headers, then one byte of a 1000-byte body every 100 ms; resolves when the server closes. */
  function slowBody(url: string, path: string): Promise<{ ms: number; sent: number; answer: string }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const started = Date.now();
      let sent = 0;
      let answer = '';
      const socket = connect(Number(port), hostname, () => {
        socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
      });
      const drip = setInterval(() => {
        if (!socket.destroyed && socket.writable) {
          socket.write('{');
          sent++;
        }
      }, 100);
      const giveUp = setTimeout(() => {
        clearInterval(drip);
        socket.destroy();
        reject(new Error(`still reading after ${Date.now() - started} ms`));
      }, 10_000);
      socket.on('data', (d) => {
        answer += d.toString('utf8');
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(giveUp);
        resolve({ ms: Date.now() - started, sent, answer });
      });
    });
  }

  it.each([
    ['operator', () => operator.url, OperatorPaths.registerCustomer],
    ['merchant module', () => shop.url, '/obol/order'],
    ['arbiter', () => arbiter.url, '/v1/judge'],
  ] as const)('the %s closes the connection soon after its request timeout', async (_name, url, path) => {
    const cut = await slowBody(url(), path);
    expect(cut.ms).toBeLessThan(3_000);
    expect(cut.sent).toBeLessThan(30);
    expect(cut.answer).toMatch(/^HTTP\/1\.1 408/);
  });
});
