import { OperatorPaths } from '@obol/protocol/api';
import type { CustomerAgent } from '@obol/protocol/customerAgent';
import type { Http } from '@obol/protocol/http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Arbiter, createArbiterKeyDir } from '../src/arbiter/arbiter.ts';
import { downloadsCatalogue } from '../src/demo/catalogues.ts';
import { undiciHttp } from '../src/http/client.ts';
import { settleDeadlines } from '../src/operator/acquirer.ts';
import { createRoot } from '../src/operator/identity.ts';
import type { StoredProduct } from '../src/merchant/products.ts';
import { type Db, openDb } from '../src/store/db.ts';
import { type Shop, startShop } from '../src/world/shop.ts';
import { TEST_START, type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * What the operators learn (issue 9, items 5 and 7), found the way a curious operator would: after
 * real purchases across two operators — articles and secure-delivery files, at two shops of the
 * EUR operator, by shoppers of both operators, and a dispute an arbiter decides with K1 from the
 * EUR operator — every row of every table of both operators'
 * databases (every column, jsonb included, base64url decoded wherever it decodes to JSON or to a
 * certificate), every line they logged and every billing record they wrote is searched.
 *
 * - Item 5: nothing in it names or matches a catalogue product: no product id, title or
 *   description text, and none of the hashes a shop publishes (description hash, ciphertext hash,
 *   content hash).
 * - Item 7: the deposits one logon opened cannot be linked at the merchants or at their operator:
 *   neither the SessionIdentity nor any TransactionIdentity reaches them, and the per-transaction
 *   handles, pseudonyms and session keys they see share nothing.
 */

const SESSION_ID_RE = /^op-[a-z]+\.[0-9]+$/;

/** Every text a value holds, with base64url strings decoded where they are JSON or binary (DER) too. */
function texts(value: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 12 || value === null || value === undefined) return out;
  if (typeof value === 'string') {
    out.push(value);
    if (value.length >= 16 && /^[A-Za-z0-9_-]+$/.test(value)) {
      const bytes = Buffer.from(value, 'base64url');
      const asText = bytes.toString('utf8');
      // A signed message or JSON carried as base64url: search inside it.
      try {
        texts(JSON.parse(asText), out, depth + 1);
      } catch {
        // not JSON: a certificate, a key, a hash; its bytes as latin1 show any ASCII it embeds
        out.push(bytes.toString('latin1'));
      }
    } else if (value.startsWith('{') || value.startsWith('[')) {
      try {
        texts(JSON.parse(value), out, depth + 1);
      } catch {
        // plain text
      }
    }
    return out;
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    out.push(String(value));
    return out;
  }
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('latin1'));
    out.push(Buffer.from(value).toString('base64url'));
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) texts(v, out, depth + 1);
    return out;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      texts(v, out, depth + 1);
    }
  }
  return out;
}

/** Every table of a database, each as the texts of all its rows. */
async function dumpDb(db: Db): Promise<Map<string, string[]>> {
  const tables = await db.query<{ table_schema: string; table_name: string }>(
    `SELECT table_schema, table_name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  expect(tables.length).toBeGreaterThan(3);
  const dump = new Map<string, string[]>();
  for (const t of tables) {
    const rows = await db.query(`SELECT * FROM "${t.table_schema}"."${t.table_name}"`);
    dump.set(`${t.table_schema}.${t.table_name}`, texts(rows));
  }
  return dump;
}

/** Where each needle occurs: "needle in place". */
function findings(places: Map<string, string[]>, needles: Map<string, string>): string[] {
  const found: string[] = [];
  for (const [place, strings] of places) {
    const hay = strings.join('\n');
    for (const [needle, what] of needles) if (hay.includes(needle)) found.push(`${what} ${JSON.stringify(needle)} in ${place}`);
  }
  return found;
}

/** The longest common substring of two strings (both short). */
function longestCommon(a: string, b: string): string {
  let best = '';
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < b.length; j++) {
      let k = 0;
      while (i + k < a.length && j + k < b.length && a[i + k] === b[j + k]) k++;
      if (k > best.length) best = a.slice(i, i + k);
    }
  }
  return best;
}

describe('what the operators and merchants learn (PGlite)', () => {
  let t: TwoOperators;
  let downloads: Shop;
  let downloadsDb: Db;
  let keyDir: string;
  let arbiter: Arbiter;
  /** Every request body a wallet sent to a shop: what the merchants received. */
  const toShops: unknown[] = [];

  beforeAll(async () => {
    const root = await createRoot('Obol Interbank Root', TEST_START);
    keyDir = await mkdtemp(join(tmpdir(), 'obol-arbiter-'));
    const { publicKey } = await createArbiterKeyDir(keyDir, root.cert);
    t = await twoOperators('PGlite', { root, arbiters: { nbcp: publicKey }, captureLogs: true });
    arbiter = await Arbiter.fromKeyDir(keyDir, { operators: [t.eur.url], clock: t.clock });
    downloadsDb = await openDb();
    downloads = await startShop({
      merchantId: 'files.example',
      name: 'Obol Downloads',
      operatorUrl: t.eur.url,
      operatorId: 'op-eur',
      currency: 'EUR',
      adminToken: t.world.adminToken,
      catalogue: downloadsCatalogue('EUR'),
      clock: t.clock,
      db: downloadsDb,
      sweepIntervalMs: 0,
    });
  }, 120_000);
  afterAll(async () => {
    await downloads?.close();
    await downloadsDb?.close();
    await t?.close();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  const shopUrls = () => [t.shop.moduleUrl, downloads.moduleUrl];
  /** The real network, with what goes to a shop written down. */
  const recordingHttp: Http = {
    get: (url, headers) => undiciHttp.get(url, headers),
    post: (url, body, headers) => {
      if (shopUrls().some((u) => url.startsWith(u))) toShops.push(structuredClone(body));
      return undiciHttp.post(url, body, headers);
    },
  };

  async function fundedShopper(at: 'sek' | 'eur'): Promise<CustomerAgent> {
    const op = at === 'sek' ? t.sek : t.eur;
    const shopper = t.newShopper(at === 'sek' ? 'SEK:1.00' : 'EUR:0.50', recordingHttp);
    const { customerId } = await shopper.register(op.url);
    await shopper.login();
    await t.admin(op, OperatorPaths.adminFund, { customerId, amount: at === 'sek' ? 'SEK:100.00' : 'EUR:10.00' });
    return shopper;
  }
  const article = (productId: string) => ({ merchantUrl: t.shop.moduleUrl, productId, price: 'EUR:0.03', origin: t.shop.url });
  const file = (productId: string, price: string) => ({ merchantUrl: downloads.moduleUrl, productId, price, origin: downloads.url });

  let sekShopper: CustomerAgent;
  let sessionId: string;

  it('runs real purchases: articles and files, across operators and within one, to clearing and billing', async () => {
    sekShopper = await fundedShopper('sek');
    sessionId = (await sekShopper.login()).sessionId;
    expect(sessionId).toMatch(SESSION_ID_RE);
    // SEK 1.00 is EUR 0.08: two articles per deposit, then the merchant clears and a new one opens.
    for (const id of ['why-micropayments', 'two-banks', 'fair-exchange', 'deposits']) await sekShopper.buy(article(id));
    const csv = await sekShopper.buy(file('rates-2026.csv', 'EUR:0.15'));
    await sekShopper.buy(file('city-skyline.svg', 'EUR:0.40'));
    // A dispute: the arbiter obtains K1 from the EUR operator (the trusted party) and decides from
    // the opening the shopper reveals to it alone.
    const report = await arbiter.judge(await sekShopper.exportEvidence(csv.receipt.receiptId));
    expect(report).toMatchObject({ verdict: 'for-merchant', k1ReleasedBy: 'op-eur', purchase: { productId: 'rates-2026.csv' } });
    expect((await t.eur.ctx.db.query('SELECT * FROM arbiter_requests')).length).toBe(1);
    // A deposit ended with nothing bought: its record has an empty list.
    const eurShopper = await fundedShopper('eur');
    await eurShopper.buy(article('why-micropayments'));
    await eurShopper.buy(file('fair-exchange-booklet.md', 'EUR:0.25'));
    for (const shopper of [sekShopper, eurShopper]) {
      for (const tx of await shopper.listTransactions()) {
        if (tx.state === 'open' && tx.transactionId) await shopper.endTransaction(tx.transactionId);
      }
    }
    await t.shop.agent.settled();
    await downloads.agent.settled();
    for (const shopper of [sekShopper, eurShopper]) {
      for (const tx of await shopper.listTransactions()) {
        if (tx.transactionId) expect((await shopper.transactionStatus(tx.transactionId)).state).toBe('cleared');
      }
    }
    await settleDeadlines(t.sek.ctx);
    await settleDeadlines(t.eur.ctx);
    expect((await t.billingLines('sek')).length).toBeGreaterThan(0);
    expect((await t.billingLines('eur')).length).toBeGreaterThan(0);
    for (const op of [t.sek, t.eur]) expect(await t.admin(op, OperatorPaths.adminAudit)).toMatchObject({ ok: true });
  });

  it('item 5: nothing an operator stores, logs or bills names or matches a catalogue product', async () => {
    const products: StoredProduct[] = [...(await t.shop.agent.catalogue.list()), ...(await downloads.agent.catalogue.list())];
    expect(products.length).toBeGreaterThanOrEqual(7);
    const needles = new Map<string, string>();
    for (const p of products) {
      needles.set(p.productId, 'product id');
      needles.set(p.title, 'title');
      needles.set(p.description, 'description');
      needles.set(p.descriptionHash, `description hash of ${p.productId}`);
      needles.set(p.ciphertextHash, `ciphertext hash of ${p.productId}`);
      needles.set(p.contentHash, `content hash of ${p.productId}`);
    }
    // The needles are there to be found where they belong: the shops' own databases hold them.
    expect(findings(new Map([['the news shop', texts(await t.shopDb.query('SELECT * FROM merchant_orders'))]]), needles).length).toBeGreaterThan(0);

    const places = new Map<string, string[]>();
    for (const [name, db] of [['op-sek', t.sek.ctx.db], ['op-eur', t.eur.ctx.db]] as const) {
      for (const [table, strings] of await dumpDb(db)) places.set(`${name} table ${table}`, strings);
      places.set(`${name} log`, texts(t.logLines[name]));
      places.set(`${name} billing file`, texts(await t.billingLines(name === 'op-sek' ? 'sek' : 'eur')));
    }
    expect(t.logLines['op-eur'].length).toBeGreaterThan(10);
    expect(findings(places, needles)).toEqual([]);
  });

  it('item 7: the deposits of one logon cannot be linked at the merchants or at their operator', async () => {
    const txs = (await sekShopper.listTransactions()).filter((tx) => tx.transactionId);
    const ids = txs.map((tx) => tx.transactionId!);
    expect(ids.length).toBeGreaterThanOrEqual(4);
    expect(new Set(ids.map((id) => id.slice(0, id.lastIndexOf('.'))))).toEqual(new Set([sessionId]));

    // What the merchants and the acquirer see: their databases, what the wallet sent the shops.
    const places = new Map<string, string[]>();
    for (const [table, strings] of await dumpDb(t.shopDb)) places.set(`news shop ${table}`, strings);
    for (const [table, strings] of await dumpDb(downloadsDb)) places.set(`downloads shop ${table}`, strings);
    for (const [table, strings] of await dumpDb(t.eur.ctx.db)) places.set(`op-eur (acquirer) ${table}`, strings);
    places.set('op-eur log', texts(t.logLines['op-eur']));
    places.set('op-eur billing file', texts(await t.billingLines('eur')));
    places.set('requests to the shops', texts(toShops));
    const needles = new Map<string, string>([[`${sessionId}.`, 'the SessionIdentity']]);
    for (const id of ids) needles.set(id, 'a TransactionIdentity');
    expect(findings(places, needles)).toEqual([]);

    // The sessions as the merchants hold them: one per deposit, each with its own handle,
    // pseudonym and session key, none sharing more than chance with another.
    const sessions = [
      ...(await t.shopDb.query<{ transaction_id: string; pseudonym: string; session_key: string }>('SELECT transaction_id, pseudonym, session_key FROM merchant_sessions')),
      ...(await downloadsDb.query<{ transaction_id: string; pseudonym: string; session_key: string }>('SELECT transaction_id, pseudonym, session_key FROM merchant_sessions')),
    ];
    const acquired = await t.eur.ctx.db.query<{ id: string; pseudonym: string }>(`SELECT id, pseudonym FROM acq_transactions WHERE customer_operator = 'op-sek'`);
    expect(acquired.length).toBe(ids.length);
    const handles = acquired.map((r) => r.id);
    for (const h of handles) expect(h).toMatch(/^t-[A-Za-z0-9_-]{22}$/);
    // The wallet knows both names; its own operator translates, and names both in its withdrawal record.
    expect(new Set(txs.map((tx) => tx.handle))).toEqual(new Set(handles));
    const withdrawals = (await t.billingLines('sek')).filter((r) => r.type === 'am.withdrawal');
    expect(new Set(withdrawals.map((r) => `${r.body.transactionId} ${r.body.handle}`))).toEqual(new Set(txs.map((tx) => `${tx.transactionId} ${tx.handle}`)));
    const deposits = (await t.billingLines('eur')).filter((r) => r.type === 'am.deposit' && handles.includes(String(r.body.transactionId)));
    expect(deposits.length).toBe(handles.length);
    for (const s of sessions.filter((s) => handles.includes(s.transaction_id))) {
      expect(acquired.find((r) => r.id === s.transaction_id)?.pseudonym).toBe(s.pseudonym);
    }
    for (const field of ['id', 'pseudonym'] as const) {
      const values = acquired.map((r) => r[field]);
      expect(new Set(values).size).toBe(values.length);
      for (let i = 0; i < values.length; i++) {
        for (let j = i + 1; j < values.length; j++) {
          // Beyond the fixed "t-", two random 128-bit strings share a few characters by chance.
          const common = longestCommon(values[i]!.replace(/^t-/, ''), values[j]!.replace(/^t-/, ''));
          expect(common.length, `${field}s ${values[i]} and ${values[j]} share ${common}`).toBeLessThan(6);
        }
      }
    }
    expect(new Set(sessions.map((s) => s.session_key)).size).toBe(sessions.length);
  });
});
