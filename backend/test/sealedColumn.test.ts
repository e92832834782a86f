import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustomerAgent } from '@obol/protocol/customerAgent';
import { OperatorPaths } from '@obol/protocol/api';
import { toBase64Url } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MERCHANT_MIGRATIONS_DIR, SESSION_K1_COLUMN } from '../src/merchant/merchantAgent.ts';
import { K2_COLUMN } from '../src/merchant/products.ts';
import { ACQ_K1_COLUMN } from '../src/operator/acquirer.ts';
import { startOperator } from '../src/operator/server.ts';
import { openDb } from '../src/store/db.ts';
import { loadMigrations, migrate } from '../src/store/migrate.ts';
import { DATA_KEY_FILE, SealKeys, loadOrCreateSealKeys, resealColumn } from '../src/store/sealedColumn.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

const at = { column: 'acq_transactions.k1', rowId: 'tx-1' };

describe('sealed columns: the helper', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'obol-seal-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips, never shows the plaintext, and names the key it was sealed under', async () => {
    const keys = await SealKeys.ephemeral();
    const sealed = await keys.seal('the-secret-k1-value', at);
    expect(sealed.startsWith(`sealed:v1:${keys.currentKid}:`)).toBe(true);
    expect(sealed).not.toContain('the-secret-k1-value');
    expect(await keys.open(sealed, at)).toBe('the-secret-k1-value');
    // Two seals of one value differ (a fresh IV each time).
    expect(await keys.seal('the-secret-k1-value', at)).not.toBe(sealed);
  });

  it('refuses with a clear error: another key, a ciphertext moved to another row or column, a value in clear', async () => {
    const keys = await SealKeys.ephemeral();
    const sealed = await keys.seal('k1', at);
    // Another key under the same id (a key file replaced): does not open.
    const forged = await SealKeys.fromRaw(keys.currentKid, { [keys.currentKid]: toBase64Url(new Uint8Array(32).fill(7)) });
    await expect(forged.open(sealed, at)).rejects.toThrow(/does not open with data key .* the key is wrong, or the value was altered or copied from another row/);
    // A key file without the key named: missing key.
    await expect((await SealKeys.ephemeral()).open(sealed, at)).rejects.toThrow(/sealed under data key ".*", which is not in memory: the data key is missing/);
    await expect(keys.open(sealed, { ...at, rowId: 'tx-2' })).rejects.toThrow(/acq_transactions\.k1 of row tx-2 does not open/);
    await expect(keys.open(sealed, { ...at, column: 'merchant_sessions.k1' })).rejects.toThrow(/does not open/);
    await expect(keys.open('k1-in-clear', at)).rejects.toThrow(/is not sealed/);
  });

  it('keeps its key in the key folder (0600, made when missing, the same on the next start) and rotates', async () => {
    const keyDir = join(dir, 'op');
    const first = await loadOrCreateSealKeys(keyDir);
    expect((await stat(join(keyDir, DATA_KEY_FILE))).mode & 0o777).toBe(0o600);
    const sealed = await first.seal('k1', at);
    const again = await loadOrCreateSealKeys(keyDir);
    expect(again.currentKid).toBe(first.currentKid);
    expect(await again.open(sealed, at)).toBe('k1');

    // Rotation: a new current key beside the old one; old values still open, new ones use the new key.
    const file = JSON.parse(await readFile(join(keyDir, DATA_KEY_FILE), 'utf8')) as { current: string; keys: Record<string, string> };
    const rotated = { current: 'k2026b', keys: { ...file.keys, k2026b: toBase64Url(crypto.getRandomValues(new Uint8Array(32))) } };
    await writeFile(join(keyDir, DATA_KEY_FILE), JSON.stringify(rotated), { mode: 0o600 });
    const now = await loadOrCreateSealKeys(keyDir);
    expect(await now.open(sealed, at)).toBe('k1');
    expect((await now.seal('k1', at)).startsWith('sealed:v1:k2026b:')).toBe(true);

    // …and the startup step moves rows onto the current key.
    const db = await openDb();
    await db.query('CREATE TABLE t (id text PRIMARY KEY, s text)');
    await db.query("INSERT INTO t VALUES ('tx-1', $1), ('tx-2', 'plain-k1'), ('tx-3', NULL)", [sealed]);
    expect(await resealColumn(db, now, 't', 'id', 's', at.column)).toBe(2);
    const rows = await db.query<{ id: string; s: string | null }>('SELECT id, s FROM t ORDER BY id');
    expect(rows[0]!.s!.startsWith('sealed:v1:k2026b:')).toBe(true);
    expect(await now.open(rows[0]!.s!, at)).toBe('k1');
    expect(await now.open(rows[1]!.s!, { ...at, rowId: 'tx-2' })).toBe('plain-k1');
    expect(rows[2]!.s).toBeNull();
    expect(await resealColumn(db, now, 't', 'id', 's', at.column)).toBe(0);
    await db.close();
  });

  it('a key id with a LIKE wildcard in it does not let rows under another key pass for current', async () => {
    const raw = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    const old = { abXd: raw() };
    const before = await SealKeys.fromRaw('abXd', old);
    const after = await SealKeys.fromRaw('ab_d', { ...old, ab_d: raw() });
    const db = await openDb();
    await db.query('CREATE TABLE t (id text PRIMARY KEY, s text)');
    await db.query("INSERT INTO t VALUES ('tx-1', $1)", [await before.seal('k1', at)]);
    expect(await resealColumn(db, after, 't', 'id', 's', at.column)).toBe(1);
    const [row] = await db.query<{ s: string }>('SELECT s FROM t');
    expect(row!.s.startsWith('sealed:v1:ab_d:')).toBe(true);
    await db.close();
  });

  it('refuses a malformed key file or key', async () => {
    const keyDir = join(dir, 'bad');
    await loadOrCreateSealKeys(keyDir);
    await writeFile(join(keyDir, DATA_KEY_FILE), '{"current":"abcd","keys":{"abcd":"c2hvcnQ"}}');
    await expect(loadOrCreateSealKeys(keyDir)).rejects.toThrow(/is 5 bytes; AES-256 needs 32/);
    await writeFile(join(keyDir, DATA_KEY_FILE), 'not json');
    await expect(loadOrCreateSealKeys(keyDir)).rejects.toThrow(/is not a data key file/);
  });

  it('the merchant migration renames the key columns and drops K1 from the stored information message', async () => {
    const db = await openDb();
    const all = await loadMigrations(MERCHANT_MIGRATIONS_DIR);
    await migrate(
      db,
      all.filter((m) => m.version <= 4),
    );
    await db.query(
      `INSERT INTO merchant_sessions (transaction_id, info_msg_id, info, ack, pseudonym, currency, deposit, session_key, session_kid, k1, expires_at, opened_at)
       VALUES ('tx-old', 'm1', '{"type":"acquirer.info","body":{"k1":"OLD-K1-IN-CLEAR","tempCert":"c"}}', '{}', 'p', 'EUR', 100, 'spki', 'kid', 'OLD-K1-IN-CLEAR', 1, 0)`,
    );
    await migrate(db, all);
    const keys = await SealKeys.ephemeral();
    expect(await resealColumn(db, keys, 'merchant_sessions', 'transaction_id', 'k1_sealed', SESSION_K1_COLUMN)).toBe(1);
    const [row] = await db.query<{ info: { body: Record<string, unknown> }; k1_sealed: string }>('SELECT info, k1_sealed FROM merchant_sessions');
    expect(row!.info.body).toEqual({ tempCert: 'c' });
    expect(await keys.open(row!.k1_sealed, { column: SESSION_K1_COLUMN, rowId: 'tx-old' })).toBe('OLD-K1-IN-CLEAR');
    await db.close();
  });
});

describe('sealed columns: K1 and K2 at rest after real purchases (PGlite)', () => {
  let t: TwoOperators;
  let shopper: CustomerAgent;
  let handle: string;
  beforeAll(async () => {
    t = await twoOperators('PGlite');
    shopper = t.newShopper('SEK:1.00');
    const { customerId } = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:100.00' });
    const bought = await shopper.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });
    handle = bought.receipt.handle;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  const dump = async (db: TwoOperators['shopDb'], table: string) => JSON.stringify(await db.query(`SELECT * FROM ${table}`), (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : v,
  );

  it('no table holds K1 or K2 in clear; the sealed values open to them', async () => {
    const [acq] = await t.eur.ctx.db.query<{ k1_sealed: string }>('SELECT k1_sealed FROM acq_transactions WHERE id = $1', [handle]);
    const k1 = await t.eur.ctx.sealKeys.open(acq!.k1_sealed, { column: ACQ_K1_COLUMN, rowId: handle });
    const [session] = await t.shopDb.query<{ k1_sealed: string }>('SELECT k1_sealed FROM merchant_sessions WHERE transaction_id = $1', [handle]);
    expect(await t.shop.sealKeys.open(session!.k1_sealed, { column: SESSION_K1_COLUMN, rowId: handle })).toBe(k1);
    const products = await t.shopDb.query<{ ciphertext_hash: string; k2_sealed: string }>('SELECT ciphertext_hash, k2_sealed FROM merchant_products');
    expect(products.length).toBeGreaterThan(0);
    const k2s = await Promise.all(products.map((p) => t.shop.sealKeys.open(p.k2_sealed, { column: K2_COLUMN, rowId: p.ciphertext_hash })));

    const operatorTables = ['acq_transactions', 'am_transactions', 'handled_messages', 'outbox', 'arbiter_requests'];
    const shopTables = ['merchant_sessions', 'merchant_orders', 'merchant_products', 'merchant_records'];
    for (const [db, tables] of [
      [t.eur.ctx.db, operatorTables],
      [t.sek.ctx.db, operatorTables],
      [t.shopDb, shopTables],
    ] as const) {
      for (const table of tables) {
        const text = await dump(db, table);
        expect(text.includes(k1), `K1 in ${table}`).toBe(false);
        for (const k2 of k2s) expect(text.includes(k2), `K2 in ${table}`).toBe(false);
      }
    }
  });

  it('an operator starting on a database with K1 in clear (written before sealing) seals it before it serves', async () => {
    const [acq] = await t.eur.ctx.db.query<{ k1_sealed: string }>('SELECT k1_sealed FROM acq_transactions WHERE id = $1', [handle]);
    const k1 = await t.eur.ctx.sealKeys.open(acq!.k1_sealed, { column: ACQ_K1_COLUMN, rowId: handle });
    await t.eur.ctx.db.query('UPDATE acq_transactions SET k1_sealed = $1 WHERE id = $2', [k1, handle]);
    // A second process of the EUR operator, with its data key, on the same database.
    const again = await startOperator({
      config: { ...t.eur.ctx.config, port: 0 },
      identity: t.eur.ctx.identity,
      sealKeys: t.eur.ctx.sealKeys,
      clock: t.clock,
      timers: false,
      sinks: [],
      db: t.eur.ctx.db,
    });
    await again.close();
    const [row] = await t.eur.ctx.db.query<{ k1_sealed: string }>('SELECT k1_sealed FROM acq_transactions WHERE id = $1', [handle]);
    expect(row!.k1_sealed).not.toContain(k1);
    expect(await t.eur.ctx.sealKeys.open(row!.k1_sealed, { column: ACQ_K1_COLUMN, rowId: handle })).toBe(k1);
    // Without its data key the operator does not start on a folderless configuration.
    await expect(startOperator({ config: { ...t.eur.ctx.config, port: 0, keyDir: '' }, identity: t.eur.ctx.identity, db: t.eur.ctx.db, timers: false, sinks: [] })).rejects.toThrow(
      /no data key/,
    );
  });

  it('a sealed K1 copied to another row does not open there: the shop refuses the accept, clearly', async () => {
    const other = t.newShopper('SEK:1.00');
    const { customerId } = await other.register(t.sek.url);
    await other.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId, amount: 'SEK:100.00' });
    const first = await other.buy({ merchantUrl: t.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: t.shop.url });
    // An insider moves this shopper's sealed K1 into the other session's row.
    await t.shopDb.query(
      'UPDATE merchant_sessions SET k1_sealed = (SELECT k1_sealed FROM merchant_sessions WHERE transaction_id = $1) WHERE transaction_id = $2',
      [handle, first.receipt.handle],
    );
    const [row] = await t.shopDb.query<{ k1_sealed: string }>('SELECT k1_sealed FROM merchant_sessions WHERE transaction_id = $1', [first.receipt.handle]);
    await expect(t.shop.sealKeys.open(row!.k1_sealed, { column: SESSION_K1_COLUMN, rowId: first.receipt.handle })).rejects.toThrow(
      /does not open .* copied from another row/,
    );
    // The next purchase in that session needs K1 to wrap K2: the shop refuses it rather than wrap with another shopper's K1.
    await expect(other.buy({ merchantUrl: t.shop.moduleUrl, productId: 'fair-exchange', price: 'EUR:0.03', origin: t.shop.url })).rejects.toMatchObject({
      name: 'INTERNAL',
    });
  });
});
