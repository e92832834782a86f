/**
 * The merchant module against a real PKI, real signatures, a real (in-memory PGlite) database and
 * a real HTTP operator endpoint on 127.0.0.1: the tests play the operator (who signs the
 * information message and receives the merchant records) and the wallet (who signs orders,
 * accepts and stops with its session key). The module itself is driven through Fastify `inject`.
 */
import { ObolError } from '@obol/protocol/errors';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '@obol/protocol/clock';
import { newTradeHandle } from '@obol/protocol/identity';
import { type KeyHandle, keyHandle } from '@obol/protocol/keys';
import type { MessageBody } from '@obol/protocol/messages';
import {
  type Cert,
  certToBase64,
  createRootCa,
  generateKeyPair,
  issueMerchantCert,
  issueOperatorCert,
  issueSigningCert,
  issueTemporaryCert,
  reissue,
} from '@obol/protocol/pki';
import { decryptProduct, descriptionHash, hashB64, unwrapProductKey } from '@obol/protocol/delivery';
import { type PurchaseOpening, purchaseCommitment, purchasesHash } from '@obol/protocol/purchaseList';
import { SESSION_READ_WINDOW_MS, sessionReadAuthorization } from '@obol/protocol/api';
import { type Signed, signMessage, verifyMessage } from '@obol/protocol/signed';
import { fromBase64Url, randomId, sha256, toBase64Url, utf8 } from '@obol/protocol/webcrypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EMPTY_LIST_SALT,
  MerchantAgent,
  type MerchantConfig,
  memoryCatalogue,
  merchantModule,
  type Product,
  recordPurchasesHash,
} from '../src/merchant/merchantModule.ts';
import { downloadsCatalogue, newsCatalogue } from '../src/demo/catalogues.ts';
import { type Db, openDb } from '../src/store/db.ts';
import { SealKeys } from '../src/store/sealedColumn.ts';

/** The shop's data key for this file's in-memory databases (one key: agents reopen the same database). */
const sealKeys = await SealKeys.ephemeral();

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;
const ORIGIN = 'https://news.example';
const MERCHANT_ID = 'news.example';

const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
const t0 = clock.now();

const products: Product[] = [
  {
    productId: 'article-1',
    title: 'Article one',
    description: 'The first article',
    price: 'EUR:0.03',
    contentType: 'text/html',
    content: utf8.encode('<p>one</p>'),
  },
  {
    productId: 'article-2',
    title: 'Article two',
    description: 'The second article',
    price: 'EUR:0.03',
    contentType: 'text/html',
    content: utf8.encode('<p>two</p>'),
  },
  {
    productId: 'photo',
    title: 'A photo',
    description: 'A picture',
    price: 'EUR:0.05',
    contentType: 'image/png',
    content: new Uint8Array([137, 80, 78, 71, 1, 2, 3]),
  },
];

// ── the world: root, our operator (op-eur), a foreign operator (op-sek), the merchant ──────
let rootCert: Cert;
let operator: KeyHandle;
let operatorIssuing: KeyHandle;
let operatorSigningCert: Cert;
let operatorCert: Cert;
let foreign: KeyHandle;
let foreignCert: Cert;
let merchantKey: KeyHandle;
let merchantCert: Cert;

// ── the operator's merchant-record endpoint (stands in for the operator server) ─────────────
interface Received {
  path: string;
  body: Signed<'merchant.record'>;
}
const received: Received[] = [];
let operatorDown = false;
/** A final refusal the operator answers every record with (410 SESSION_CLOSED: it never opened the transaction). */
let operatorRefuses = false;
let operatorServer: Server;
let operatorUrl: string;

let db: Db;
let agent: MerchantAgent;
let app: FastifyInstance;
/** The same module mounted with a shop admin token (`app` has none). */
let adminApp: FastifyInstance;
const ADMIN_TOKEN = 'shop-admin-token-for-sessions-0123';

beforeAll(async () => {
  const validity = { notBefore: t0 - HOUR, notAfter: t0 + YEAR };
  const rootKeys = await generateKeyPair();
  rootCert = await createRootCa({ name: 'Obol Test Root', keys: rootKeys, ...validity });
  const root = { cert: rootCert, privateKey: rootKeys.privateKey };

  const opKeys = await generateKeyPair();
  operatorIssuing = await keyHandle(opKeys);
  operatorCert = await issueOperatorCert({ operatorId: 'op-eur', publicKey: opKeys.publicKey, issuer: root, ...validity });
  // The operator's message key: a leaf its issuing key certifies; every message it sends is signed with it.
  const signingKeys = await generateKeyPair();
  operator = await keyHandle(signingKeys);
  operatorSigningCert = await issueSigningCert({ operatorId: 'op-eur', publicKey: signingKeys.publicKey, issuer: { cert: operatorCert, privateKey: opKeys.privateKey }, ...validity });
  const foreignKeys = await generateKeyPair();
  foreign = await keyHandle(foreignKeys);
  foreignCert = await issueOperatorCert({ operatorId: 'op-sek', publicKey: foreignKeys.publicKey, issuer: root, ...validity });

  const mKeys = await generateKeyPair();
  merchantKey = await keyHandle(mKeys);
  merchantCert = await issueMerchantCert({
    merchantId: MERCHANT_ID,
    origins: [ORIGIN],
    publicKey: mKeys.publicKey,
    issuer: { cert: operatorCert, privateKey: opKeys.privateKey },
    ...validity,
  });
  operatorIssuer = { cert: operatorCert, privateKey: opKeys.privateKey };
  foreignIssuer = { cert: foreignCert, privateKey: foreignKeys.privateKey };

  operatorServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Signed<'merchant.record'>;
      res.setHeader('content-type', 'application/json');
      if (operatorDown) {
        res.statusCode = 503;
        res.end(JSON.stringify({ error: { code: 6000, name: 'UNAVAILABLE', message: 'down for maintenance' } }));
        return;
      }
      if (operatorRefuses) {
        res.statusCode = 410;
        res.end(JSON.stringify({ error: new ObolError('SESSION_CLOSED', 'that transaction never opened').toJSON() }));
        return;
      }
      received.push({ path: req.url ?? '', body });
      res.end(JSON.stringify({ transactionId: body.body.transactionId, state: 'reported' }));
    });
  });
  await new Promise<void>((resolve) => operatorServer.listen(0, '127.0.0.1', resolve));
  operatorUrl = `http://127.0.0.1:${(operatorServer.address() as AddressInfo).port}`;

  db = await openDb(); // in memory: one database for this file
  agent = await MerchantAgent.open(agentConfig({ catalogue: memoryCatalogue(products) }));
  app = Fastify();
  await app.register(merchantModule, { prefix: '/obol', agent, sweepIntervalMs: 0 });
  await app.ready();
  adminApp = Fastify();
  await adminApp.register(merchantModule, { prefix: '/obol', agent, sweepIntervalMs: 0, adminToken: ADMIN_TOKEN });
  await adminApp.ready();
});

afterAll(async () => {
  await app?.close();
  await adminApp?.close();
  await agent?.close();
  await db?.close();
  await new Promise((resolve) => operatorServer?.close(resolve));
});

/** This file's shop as `MerchantAgent.open` takes it (its key, certificates, operator, database), with changes. */
function agentConfig(changes: Partial<MerchantConfig> = {}): MerchantConfig {
  return {
    merchantId: MERCHANT_ID,
    name: 'News Example',
    key: merchantKey,
    merchantCert: certToBase64(merchantCert),
    operatorCert,
    operatorSigningCert,
    operatorId: 'op-eur',
    operatorUrl,
    currency: 'EUR',
    origins: [ORIGIN],
    catalogue: memoryCatalogue([]),
    db,
    sealKeys,
    clock,
    ...changes,
  };
}

// ── playing the operator and the wallet ─────────────────────────────────────────────────────
let operatorIssuer: { cert: Cert; privateKey: CryptoKey };
let foreignIssuer: { cert: Cert; privateKey: CryptoKey };

interface Session {
  transactionId: string;
  key: KeyHandle;
  listSalt: string;
  info: Signed<'acquirer.info'>;
  expiresAt: number;
}

/** FIG 2 steps 2–4 as the operators would do them; returns the info message, not yet sent. */
async function makeInfo(
  opts: { deposit?: string; timeoutSec?: number; signer?: KeyHandle; reissueBy?: 'operator' | 'none'; merchantId?: string } = {},
): Promise<Session> {
  const transactionId = newTradeHandle();
  const timeoutSec = opts.timeoutSec ?? 600;
  const now = clock.now();
  const key = await keyHandle(await generateKeyPair());
  // The customer's operator issues the temporary certificate; ours re-issues it for the merchant.
  const original = await issueTemporaryCert({
    handle: transactionId,
    publicKey: key.publicKey,
    issuer: foreignIssuer,
    notBefore: now - 60_000,
    notAfter: now + timeoutSec * 1000,
  });
  const tempCert = opts.reissueBy === 'none' ? original : await reissue(original, operatorIssuer);
  const expiresAt = now + timeoutSec * 1000;
  const info = await signMessage(
    'acquirer.info',
    {
      msgId: randomId(16),
      transactionId,
      merchantId: opts.merchantId ?? MERCHANT_ID,
      pseudonym: randomId(16),
      deposit: opts.deposit ?? 'EUR:0.10',
      tempCert: certToBase64(tempCert),
      k1: randomId(32),
      timeoutSec,
      expiresAt,
      time: now,
    },
    (opts.signer ?? operator).signer,
  );
  return { transactionId, key, listSalt: randomId(32), info, expiresAt };
}

async function post(path: string, payload: unknown) {
  const res = await app.inject({ method: 'POST', url: `/obol${path}`, payload: payload as Record<string, unknown> });
  return { status: res.statusCode, body: res.json() };
}

async function get(path: string) {
  const res = await app.inject({ method: 'GET', url: `/obol${path}` });
  return { status: res.statusCode, body: res.json() };
}

/** A `wallet.sessionRead` signed with a session key (the session's own, unless told otherwise). */
function signRead(s: Session, extra: Partial<MessageBody<'wallet.sessionRead'>> = {}, key: KeyHandle = s.key) {
  return signMessage('wallet.sessionRead', { msgId: randomId(16), transactionId: s.transactionId, time: clock.now(), ...extra }, key.signer);
}

async function getWith(path: string, authorization?: string, on: FastifyInstance = app) {
  const res = await on.inject({ method: 'GET', url: `/obol${path}`, headers: authorization === undefined ? {} : { authorization } });
  return { status: res.statusCode, body: res.json() };
}

/** The session as its wallet reads it: a fresh read signed with the session key. */
async function sessionOf(s: Session) {
  return getWith(`/sessions/${s.transactionId}`, sessionReadAuthorization(await signRead(s)));
}

/** The session as the shop's administration reads it. */
function adminSession(transactionId: string, token = ADMIN_TOKEN) {
  return getWith(`/sessions/${transactionId}`, `Bearer ${token}`, adminApp);
}

async function openSession(opts: Parameters<typeof makeInfo>[0] = {}): Promise<Session> {
  const s = await makeInfo(opts);
  const res = await post('/info', s.info);
  expect(res.status).toBe(200);
  return s;
}

function signOrder(s: Session, n: number, productId: string, price: string, extra: Partial<MessageBody<'wallet.order'>> = {}) {
  return signMessage(
    'wallet.order',
    { transactionId: s.transactionId, n, productId, price, origin: ORIGIN, listSalt: s.listSalt, time: clock.now(), ...extra },
    s.key.signer,
  );
}

async function order(s: Session, n: number, productId: string, price: string, extra: Partial<MessageBody<'wallet.order'>> = {}) {
  return post('/order', { order: await signOrder(s, n, productId, price, extra) });
}

/** The FIG 4 delivery of an order, as the module answers it. */
interface Delivery {
  n: number;
  productId: string;
  price: string;
  product: Signed<'merchant.product'>;
  description: Signed<'merchant.description'>;
  ciphertext: string;
}

/**
 * The wallet's accept of a delivery: the cumulative and the salted commitment to what was delivered
 * (`opening` changes what is committed to, to play a wallet that accepts something else).
 */
async function signAccept(
  s: Session,
  d: Delivery,
  cumulative: string,
  extra: Partial<MessageBody<'wallet.accept'>> = {},
  opening: Partial<PurchaseOpening> = {},
) {
  const commitment = await purchaseCommitment(s.listSalt, {
    n: d.n,
    productId: d.productId,
    price: d.price,
    receivedHash: d.product.body.ciphertextHash,
    descriptionHash: await descriptionHash(d.description.body),
    ...opening,
  });
  return signMessage(
    'wallet.accept',
    { acceptId: randomId(16), transactionId: s.transactionId, n: d.n, cumulative, commitment, time: clock.now(), ...extra },
    s.key.signer,
  );
}

/** What the wallet does with the key: unwrap K2 with the session's K1, decrypt, as text. */
async function openDelivery(s: Session, d: Delivery, key: Signed<'merchant.key'>): Promise<string> {
  const k2 = await unwrapProductKey(key.body.wrappedK2, s.info.body.k1);
  return utf8.decode(await decryptProduct(fromBase64Url(d.ciphertext), d.product.body.iv, k2, d.productId));
}

async function buy(s: Session, n: number, productId: string, price: string, cumulative: string) {
  const o = await order(s, n, productId, price);
  expect(o.status, JSON.stringify(o.body)).toBe(200);
  const accept = await signAccept(s, o.body as Delivery, cumulative);
  const a = await post('/accept', { accept });
  expect(a.status, JSON.stringify(a.body)).toBe(200);
  return { delivery: o.body as Delivery, accept, response: a.body };
}

const merchantKeys = (kid: string) => (kid === merchantKey.kid ? merchantKey.publicKey : undefined);

function recordsFor(transactionId: string): Signed<'merchant.record'>[] {
  return received.filter((r) => r.body.body.transactionId === transactionId).map((r) => r.body);
}

// ── the tests ───────────────────────────────────────────────────────────────────────────────

describe('merchant module: public pages', () => {
  it('tells a wallet who the merchant is and lists products without their content', async () => {
    const info = await get('/merchant');
    expect(info.status).toBe(200);
    expect(info.body).toEqual({
      merchantId: MERCHANT_ID,
      name: 'News Example',
      operatorId: 'op-eur',
      operatorUrl,
      currency: 'EUR',
      origins: [ORIGIN],
    });
    const list = await get('/products');
    expect(list.status).toBe(200);
    expect(list.body.products).toHaveLength(3);
    const { signedDescription, ...plain } = list.body.products[0];
    expect(plain).toEqual({
      productId: 'article-1',
      title: 'Article one',
      description: 'The first article',
      price: 'EUR:0.03',
      contentType: 'text/html',
    });
    // FIG 4: the description the merchant signed once, naming the hash of what it sells.
    const signed = await verifyMessage(signedDescription, 'merchant.description', merchantKeys);
    expect(signed.body).toEqual({ ...plain, contentHash: toBase64Url(await sha256(utf8.encode('<p>one</p>'))) });
    const one = await get('/products/article-1');
    expect(one.status).toBe(200);
    expect(one.body).toEqual(signedDescription);
    expect(JSON.stringify(list.body)).not.toContain('<p>one</p>');
    const none = await get('/products/nothing');
    expect(none.status).toBe(404);
    expect(none.body.error.name).toBe('UNKNOWN_PRODUCT');
  });

  it('opens its own agent when registered with a configuration, and closes it with the server', async () => {
    const shop = Fastify();
    await shop.register(merchantModule, {
      prefix: '/pay',
      merchantId: MERCHANT_ID,
      name: 'Second process',
      key: merchantKey,
      merchantCert,
      operatorCert: certToBase64(operatorCert),
      operatorSigningCert: certToBase64(operatorSigningCert),
      operatorId: 'op-eur',
      operatorUrl,
      currency: 'EUR',
      origins: [ORIGIN],
      catalogue: memoryCatalogue(products),
      db,
      sealKeys,
      clock,
    });
    shop.get('/', async () => 'the shop’s own page');
    const res = await shop.inject({ method: 'GET', url: '/pay/merchant' });
    expect(res.json()).toMatchObject({ merchantId: MERCHANT_ID, name: 'Second process' });
    // The module's error handling stays inside the module.
    expect((await shop.inject({ method: 'GET', url: '/' })).body).toBe('the shop’s own page');
    expect((await shop.inject({ method: 'GET', url: '/missing' })).json().error).toBe('Not Found');
    await shop.close();
  });

  it('refuses to start with a certificate that is not its own', async () => {
    const other = await keyHandle(await generateKeyPair());
    await expect(
      MerchantAgent.open(agentConfig({ key: other, http: async () => ({}) })),
    ).rejects.toMatchObject({ name: 'MERCHANT_NOT_TRUSTED' });
  });

  it('sells what it prepared under an earlier key once it starts with a new one (its products are signed again)', async () => {
    const openWith = async (key: KeyHandle, cert: Cert) => MerchantAgent.open(agentConfig({ key, merchantCert: certToBase64(cert) }));
    const before = await agent.description('article-1');
    const newKeys = await generateKeyPair();
    const newKey = await keyHandle(newKeys);
    const newCert = await issueMerchantCert({
      merchantId: MERCHANT_ID,
      origins: [ORIGIN],
      publicKey: newKeys.publicKey,
      issuer: operatorIssuer,
      notBefore: t0 - HOUR,
      notAfter: t0 + YEAR,
    });
    const restarted = await openWith(newKey, newCert);
    try {
      const after = await restarted.description('article-1');
      expect(after.kid).toBe(newKey.kid);
      expect(after.body).toEqual(before.body);
      await expect(verifyMessage(after, 'merchant.description', () => newKey.publicKey)).resolves.toBeDefined();
    } finally {
      await restarted.close();
      // The rest of this file's shop keeps its first key: its products are signed with it again.
      await (await openWith(merchantKey, merchantCert)).close();
    }
    expect((await agent.description('article-1')).kid).toBe(merchantKey.kid);
  });
});

describe('merchant module: opening a trading session (FIG 2 steps 4–5)', () => {
  it('answers the information message with a signed ack, the same one when it is replayed', async () => {
    const s = await makeInfo();
    const res = await post('/info', s.info);
    expect(res.status).toBe(200);
    const ack = await verifyMessage(res.body, 'merchant.ack', merchantKeys);
    expect(ack.body).toMatchObject({ transactionId: s.transactionId, infoMsgId: s.info.body.msgId });

    const again = await post('/info', s.info);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(res.body);

    const view = await sessionOf(s);
    expect(view.body).toMatchObject({ state: 'open', deposit: 'EUR:0.10', spent: 'EUR:0.00', remaining: 'EUR:0.10', count: 0 });
    expect(JSON.stringify(view.body)).not.toContain(s.info.body.k1);
  });

  it('refuses an information message signed by a foreign operator', async () => {
    const s = await makeInfo({ signer: foreign });
    const res = await post('/info', s.info);
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ name: 'UNKNOWN_KEY', code: 2001 });
    expect((await adminSession(s.transactionId)).status).toBe(404);
  });

  it('refuses an information message signed with its operator’s issuing (CA) key: only the signing key signs messages', async () => {
    const s = await makeInfo({ signer: operatorIssuing });
    const res = await post('/info', s.info);
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ name: 'UNKNOWN_KEY', code: 2001 });
    expect((await adminSession(s.transactionId)).status).toBe(404);
  });

  it('refuses to start with a signing certificate its operator did not issue, or one that is a CA', async () => {
    const config = {
      merchantId: MERCHANT_ID, name: 'x', key: merchantKey, merchantCert, operatorCert, operatorId: 'op-eur', operatorUrl,
      currency: 'EUR', origins: [ORIGIN], catalogue: memoryCatalogue([]), db, sealKeys, clock, http: async () => ({}),
    };
    const byForeign = await issueSigningCert({ operatorId: 'op-sek', publicKey: operator.publicKeySpki, issuer: foreignIssuer, notBefore: t0 - HOUR, notAfter: t0 + YEAR });
    await expect(MerchantAgent.open({ ...config, operatorSigningCert: byForeign })).rejects.toMatchObject({ name: 'CERT_UNTRUSTED' });
    await expect(MerchantAgent.open({ ...config, operatorSigningCert: operatorCert })).rejects.toMatchObject({ name: 'CERT_WRONG_KIND' });
  });

  it('refuses a temporary certificate its own operator did not re-issue', async () => {
    const s = await makeInfo({ reissueBy: 'none' });
    const res = await post('/info', s.info);
    expect(res.status).toBe(403);
    expect(res.body.error.name).toBe('CERT_UNTRUSTED');
    expect((await adminSession(s.transactionId)).status).toBe(404);
  });

  it('refuses an information message for another merchant, and a tampered one', async () => {
    const s = await makeInfo({ merchantId: 'other.example' });
    expect((await post('/info', s.info)).body.error.name).toBe('UNKNOWN_MERCHANT');
    const t = await makeInfo();
    const tampered = { ...t.info, body: { ...t.info.body, deposit: 'EUR:100.00' } };
    const res = await post('/info', tampered);
    expect(res.status).toBe(403);
    expect(res.body.error.name).toBe('BAD_SIGNATURE');
  });
});

describe('merchant module: purchases inside a trading session', () => {
  it('sells three 0.03 articles from a 0.10 deposit, refuses the fourth and reports 0.09 with the third accept as proof', async () => {
    const s = await openSession({ deposit: 'EUR:0.10' });
    const first = await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    expect(first.response).toMatchObject({ transactionId: s.transactionId, n: 1, charged: 'EUR:0.03', remaining: 'EUR:0.07' });
    // FIG 4: the delivery is encrypted and signed by the merchant; the key opens it only with K1.
    const product = await verifyMessage(first.delivery.product, 'merchant.product', merchantKeys);
    expect(product.body).toMatchObject({ productId: 'article-1', ciphertextHash: await hashB64(fromBase64Url(first.delivery.ciphertext)) });
    expect(first.delivery.ciphertext).not.toContain(toBase64Url(utf8.encode('<p>one</p>')));
    const key = await verifyMessage(first.response.key, 'merchant.key', merchantKeys);
    expect(key.body).toMatchObject({ transactionId: s.transactionId, n: 1, productId: 'article-1', acceptId: first.accept.body.acceptId });
    expect(await openDelivery(s, first.delivery, key)).toBe('<p>one</p>');
    await expect(unwrapProductKey(key.body.wrappedK2, randomId(32))).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    await buy(s, 2, 'article-2', 'EUR:0.03', 'EUR:0.06');
    const third = await buy(s, 3, 'article-1', 'EUR:0.03', 'EUR:0.09');
    expect(third.response).toMatchObject({ charged: 'EUR:0.09', remaining: 'EUR:0.01' });

    const fourth = await order(s, 4, 'article-2', 'EUR:0.03');
    expect(fourth.status).toBe(402);
    expect(fourth.body.error).toMatchObject({ name: 'DEPOSIT_EXHAUSTED', code: 3001 });

    await agent.settled();
    const records = recordsFor(s.transactionId);
    expect(records).toHaveLength(1);
    expect(received.find((r) => r.body === records[0])?.path).toBe('/v1/acquirer/merchant-record');
    const record = await verifyMessage(records[0], 'merchant.record', merchantKeys);
    expect(record.body).toMatchObject({ transactionId: s.transactionId, count: 3, total: 'EUR:0.09' });
    expect(record.body.proof).toEqual(third.accept);
    const proof = await verifyMessage(record.body.proof, 'wallet.accept', (kid) => (kid === s.key.kid ? s.key.publicKey : undefined));
    expect(proof.body.cumulative).toBe('EUR:0.09');
    expect(record.body.purchasesHash).toBe(
      await purchasesHash(s.listSalt, [
        { n: 1, productId: 'article-1', price: 'EUR:0.03' },
        { n: 2, productId: 'article-2', price: 'EUR:0.03' },
        { n: 3, productId: 'article-1', price: 'EUR:0.03' },
      ]),
    );

    const view = await sessionOf(s);
    expect(view.body).toMatchObject({ state: 'reported', closeReason: 'deposit-used', spent: 'EUR:0.09', remaining: 'EUR:0.01', count: 3 });
    expect(view.body.report).toMatchObject({ sent: true, operatorState: 'reported' });

    // The session is closed: nothing more is sold or charged in it.
    expect((await order(s, 4, 'article-2', 'EUR:0.03')).body.error.name).toBe('SESSION_CLOSED');
    await agent.sweep();
    expect(recordsFor(s.transactionId)).toHaveLength(1);
  });

  it('refuses an order with a wrong signature and changes nothing', async () => {
    const s = await openSession();
    const good = await signOrder(s, 1, 'article-1', 'EUR:0.03');
    const forged = { ...good, body: { ...good.body, productId: 'photo', price: 'EUR:0.05' } };
    const res = await post('/order', { order: forged });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ name: 'BAD_SIGNATURE', code: 2000 });
    // Signed by a key that is not the session's: unknown key.
    const stranger = await keyHandle(await generateKeyPair());
    const strange = await signMessage('wallet.order', good.body, stranger.signer);
    expect((await post('/order', { order: strange })).body.error.name).toBe('UNKNOWN_KEY');

    expect((await sessionOf(s)).body).toMatchObject({ state: 'open', count: 0, spent: 'EUR:0.00' });
    // The real order still goes through as purchase 1.
    expect((await post('/order', { order: good })).status).toBe(200);
  });

  it('refuses an order out of sequence', async () => {
    const s = await openSession();
    const res = await order(s, 2, 'article-1', 'EUR:0.03');
    expect(res.status).toBe(409);
    expect(res.body.error.name).toBe('OUT_OF_SEQUENCE');
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    expect((await order(s, 1, 'article-2', 'EUR:0.03')).body.error.name).toBe('OUT_OF_SEQUENCE');
    expect((await order(s, 3, 'article-2', 'EUR:0.03')).body.error.name).toBe('OUT_OF_SEQUENCE');
  });

  it('delivers the same order again, and lets an unaccepted order be replaced', async () => {
    const s = await openSession();
    const o = await signOrder(s, 1, 'article-1', 'EUR:0.03');
    const first = await post('/order', { order: o });
    const again = await post('/order', { order: o });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    // The wallet gives up on purchase 1 and orders something else as purchase 1.
    const other = await order(s, 1, 'photo', 'EUR:0.05');
    expect(other.status).toBe(200);
    // An accept of the abandoned order no longer matches.
    const stale = await post('/accept', { accept: await signAccept(s, first.body as Delivery, 'EUR:0.03') });
    expect(stale.body.error.name).toBe('PRODUCT_MISMATCH');
    const ok = await post('/accept', { accept: await signAccept(s, other.body as Delivery, 'EUR:0.05') });
    expect(ok.body).toMatchObject({ charged: 'EUR:0.05', remaining: 'EUR:0.05' });
  });

  it('refuses a price that is not the catalogue’s, an unknown product, a foreign origin and another salt', async () => {
    const s = await openSession();
    const cheap = await order(s, 1, 'article-1', 'EUR:0.01');
    expect(cheap.status).toBe(409);
    expect(cheap.body.error.name).toBe('PRODUCT_MISMATCH');
    expect((await order(s, 1, 'article-1', 'SEK:0.03')).body.error.name).toBe('CURRENCY_MISMATCH');
    expect((await order(s, 1, 'nothing', 'EUR:0.03')).body.error.name).toBe('UNKNOWN_PRODUCT');
    expect((await order(s, 1, 'article-1', 'EUR:0.03', { origin: 'https://evil.example' })).body.error.name).toBe('UNKNOWN_MERCHANT');
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    expect((await order(s, 2, 'article-2', 'EUR:0.03', { listSalt: randomId(32) })).body.error.name).toBe('MALFORMED');
    expect((await sessionOf(s)).body).toMatchObject({ count: 1, spent: 'EUR:0.03' });
  });

  it('refuses an accept whose cumulative total is not what was accepted plus the price', async () => {
    const s = await openSession();
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    const o = await order(s, 2, 'article-2', 'EUR:0.03');
    const high = await post('/accept', { accept: await signAccept(s, o.body as Delivery, 'EUR:0.10') });
    expect(high.status).toBe(400);
    expect(high.body.error.name).toBe('MALFORMED');
    const low = await post('/accept', { accept: await signAccept(s, o.body as Delivery, 'EUR:0.03') });
    expect(low.status).toBe(409);
    expect(low.body.error.name).toBe('AMOUNT_EXCEEDS_SIGNED');
    const wrongContent = await post('/accept', {
      accept: await signAccept(s, o.body as Delivery, 'EUR:0.06', {}, { receivedHash: toBase64Url(await sha256(utf8.encode('x'))) }),
    });
    expect(wrongContent.body.error.name).toBe('PRODUCT_MISMATCH');
    const wrongDescription = await post('/accept', {
      accept: await signAccept(s, o.body as Delivery, 'EUR:0.06', {}, { descriptionHash: toBase64Url(await sha256(utf8.encode('x'))) }),
    });
    expect(wrongDescription.body.error.name).toBe('PRODUCT_MISMATCH');
    expect((await sessionOf(s)).body).toMatchObject({ count: 1, spent: 'EUR:0.03' });
    const right = await post('/accept', { accept: await signAccept(s, o.body as Delivery, 'EUR:0.06') });
    expect(right.body).toMatchObject({ n: 2, charged: 'EUR:0.06', remaining: 'EUR:0.04' });
  });

  it('counts a replayed accept once', async () => {
    const s = await openSession();
    const { accept, response, delivery } = await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    const replay = await post('/accept', { accept });
    expect(replay.status).toBe(200);
    // The same answer, the same signed key: a wallet whose answer was lost gets its key.
    expect(replay.body).toEqual(response);
    expect((await sessionOf(s)).body).toMatchObject({ count: 1, spent: 'EUR:0.03' });
    // A second accept of the same purchase under another id is not a second charge either.
    const other = await post('/accept', { accept: await signAccept(s, delivery, 'EUR:0.06') });
    expect(other.body.error.name).toBe('REPLAYED');
    // The same acceptId with different content is refused (and is not mistaken for a replay).
    const next = await order(s, 2, 'article-2', 'EUR:0.03');
    const reused = await post('/accept', { accept: await signAccept(s, next.body as Delivery, 'EUR:0.06', { acceptId: accept.body.acceptId }) });
    expect(reused.body.error.name).toBe('CONFLICT');
    expect((await sessionOf(s)).body).toMatchObject({ count: 1, spent: 'EUR:0.03' });
  });
});

describe('merchant module: the catalogue (FIG 4: encrypted once, signed once)', () => {
  const guide = (content: string, extra: Partial<Product> = {}): Product => ({
    productId: 'field-guide',
    title: 'Field guide',
    description: 'A guide to the birds of the city park, 2026 edition',
    price: 'EUR:0.50',
    contentType: 'text/plain; charset=utf-8',
    content: utf8.encode(content),
    ...extra,
  });
  const versions = async () => (await db.query<{ n: bigint }>(`SELECT count(*) AS n FROM merchant_products WHERE product_id = 'field-guide'`))[0]!.n;

  it('adds a product once; the same again changes nothing; another under the same id needs replace', async () => {
    const added = await agent.addProduct(guide('Blackbird, robin, wren.'));
    expect(added).toMatchObject({ productId: 'field-guide', result: 'added', size: 23, contentHash: await hashB64(utf8.encode('Blackbird, robin, wren.')) });
    expect(await agent.addProduct(guide('Blackbird, robin, wren.'))).toMatchObject({ result: 'unchanged', ciphertextHash: added.ciphertextHash });
    await expect(agent.addProduct(guide('Crow, magpie, jay.'))).rejects.toMatchObject({ name: 'CONFLICT' });
    await expect(agent.addProduct(guide('Blackbird, robin, wren.', { price: 'EUR:0.60' }))).rejects.toMatchObject({ name: 'CONFLICT' });
    expect(await versions()).toBe(1n);
    const described = await verifyMessage((await get('/products/field-guide')).body, 'merchant.description', merchantKeys);
    expect(described.body).toMatchObject({ price: 'EUR:0.50', contentHash: added.contentHash });

    const replaced = await agent.addProduct(guide('Crow, magpie, jay.'), { replace: true });
    expect(replaced).toMatchObject({ result: 'replaced' });
    expect(replaced.ciphertextHash).not.toBe(added.ciphertextHash);
    expect(await versions()).toBe(2n);
    const now = await verifyMessage((await get('/products/field-guide')).body, 'merchant.description', merchantKeys);
    expect(now.body.contentHash).toBe(replaced.contentHash);
    expect((await get('/products')).body.products.filter((p: { productId: string }) => p.productId === 'field-guide')).toHaveLength(1);
  });

  it('refuses bad products with a catalogue error and stores nothing', async () => {
    const before = (await get('/products')).body.products.length;
    const refused = async (p: Product) => agent.addProduct(p).then(() => 'added', (e: { name: string }) => e.name);
    expect(await refused(guide('x', { productId: 'no spaces please' }))).toBe('MALFORMED');
    expect(await refused(guide('x', { productId: 'bad-price', price: 'EUR:0.5' }))).toBe('INVALID_AMOUNT');
    expect(await refused(guide('x', { productId: 'bad-price', price: 'EUR:0.005' }))).toBe('INVALID_AMOUNT');
    expect(await refused(guide('x', { productId: 'kronor', price: 'SEK:5.00' }))).toBe('CURRENCY_MISMATCH');
    expect(await refused(guide('x', { productId: 'no-title', title: '  ' }))).toBe('MALFORMED');
    expect(await refused(guide('x', { productId: 'no-type', contentType: 'text' }))).toBe('MALFORMED');
    expect(await refused(guide('x', { productId: 'long', description: 'x'.repeat(4001) }))).toBe('MALFORMED');
    expect(await refused({ ...guide(''), productId: 'huge', content: new Uint8Array(8 * 1024 * 1024 + 1) })).toBe('MALFORMED');
    expect((await get('/products')).body.products).toHaveLength(before);
  });

  it('sells every shopper the same ciphertext and the same signatures: per purchase only the key is made', async () => {
    const a = await openSession();
    const b = await openSession();
    const one = await buy(a, 1, 'photo', 'EUR:0.05', 'EUR:0.05');
    const two = await buy(b, 1, 'photo', 'EUR:0.05', 'EUR:0.05');
    expect(two.delivery.ciphertext).toBe(one.delivery.ciphertext);
    expect(two.delivery.product).toEqual(one.delivery.product); // the very same signature bytes
    expect(two.delivery.description).toEqual(one.delivery.description);
    // Each key is wrapped with its own session's K1: it opens there and nowhere else.
    expect(two.response.key.body.wrappedK2).not.toBe(one.response.key.body.wrappedK2);
    const k2 = await unwrapProductKey(one.response.key.body.wrappedK2, a.info.body.k1);
    const bytes = await decryptProduct(fromBase64Url(one.delivery.ciphertext), one.delivery.product.body.iv, k2, 'photo');
    expect([...bytes]).toEqual([137, 80, 78, 71, 1, 2, 3]);
    await expect(unwrapProductKey(one.response.key.body.wrappedK2, b.info.body.k1)).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
  });

  it('a delivery made before the product was replaced is still accepted, and its key opens what was delivered', async () => {
    await agent.addProduct(guide('Sparrow, starling.', { productId: 'pocket-guide' }));
    const s = await openSession({ deposit: 'EUR:1.00' });
    const o = await order(s, 1, 'pocket-guide', 'EUR:0.50');
    await agent.addProduct(guide('Heron, egret.', { productId: 'pocket-guide' }), { replace: true });
    const a = await post('/accept', { accept: await signAccept(s, o.body as Delivery, 'EUR:0.50') });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(await openDelivery(s, o.body as Delivery, a.body.key)).toBe('Sparrow, starling.');
  });

  it('prepares the demo shops’ wares (articles and downloads) the same way, once', async () => {
    const wares = [...(await newsCatalogue('EUR').list()), ...(await downloadsCatalogue('EUR').list())];
    const first = await agent.catalogue.sync(wares);
    expect(first.map((p) => p.result)).toEqual(wares.map(() => 'added'));
    const again = await agent.catalogue.sync(wares);
    expect(again.map((p) => p.result)).toEqual(wares.map(() => 'unchanged'));
    const csv = await verifyMessage((await get('/products/rates-2026.csv')).body, 'merchant.description', merchantKeys);
    expect(csv.body).toMatchObject({ contentType: 'text/csv; charset=utf-8', price: 'EUR:0.15' });
  });

  it('adds a product through the administration route, with the shop admin token only', async () => {
    const admin = Fastify();
    await admin.register(merchantModule, { prefix: '/obol', agent, sweepIntervalMs: 0, adminToken: 'shop-admin-token-0123456789' });
    const add = (body: unknown, token?: string) =>
      admin.inject({
        method: 'POST',
        url: '/obol/admin/products',
        payload: body as Record<string, unknown>,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    const body = {
      productId: 'map',
      title: 'A map',
      description: 'The park, 1:5000',
      price: 'EUR:0.20',
      contentType: 'image/svg+xml',
      content: toBase64Url(utf8.encode('<svg/>')),
    };
    const none = await add(body);
    expect(none.statusCode).toBe(401);
    expect(none.json().error.name).toBe('UNAUTHORIZED');
    expect((await add(body, 'wrong-token')).json().error.name).toBe('UNAUTHORIZED');
    // The module mounted without a token refuses the route whatever is sent.
    expect((await app.inject({ method: 'POST', url: '/obol/admin/products', payload: body, headers: { authorization: 'Bearer x' } })).json().error.name).toBe(
      'UNAUTHORIZED',
    );
    expect((await add({ ...body, price: 'EUR:-1' }, 'shop-admin-token-0123456789')).json().error.name).toBe('MALFORMED');
    expect((await get('/products/map')).status).toBe(404);
    const ok = await add(body, 'shop-admin-token-0123456789');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ productId: 'map', result: 'added', size: 6 });
    expect(ok.body).not.toContain('k2');
    expect((await get('/products/map')).body.body).toMatchObject({ title: 'A map', price: 'EUR:0.20' });
    await admin.close();
  });
});

describe('merchant module: stopping and reporting (FIG 3 step 9)', () => {
  it('reports on the wallet’s stop, once, however often the stop arrives', async () => {
    const s = await openSession();
    const { accept } = await buy(s, 1, 'photo', 'EUR:0.05', 'EUR:0.05');
    const stop = await signMessage('wallet.stop', { msgId: randomId(16), transactionId: s.transactionId, reason: 'wallet', time: clock.now() }, s.key.signer);
    const res = await post('/stop', { stop });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ transactionId: s.transactionId, state: 'closing', total: 'EUR:0.05', count: 1 });
    await agent.settled();
    const again = await post('/stop', { stop });
    expect(again.body).toEqual({ transactionId: s.transactionId, state: 'reported', total: 'EUR:0.05', count: 1 });
    await agent.settled();
    const records = recordsFor(s.transactionId);
    expect(records).toHaveLength(1);
    expect(records[0]!.body).toMatchObject({ count: 1, total: 'EUR:0.05', proof: accept });
    expect((await order(s, 2, 'article-1', 'EUR:0.03')).body.error.name).toBe('SESSION_CLOSED');
  });

  it('refuses a stop not signed with the session key', async () => {
    const s = await openSession();
    const stranger = await keyHandle(await generateKeyPair());
    const stop = await signMessage('wallet.stop', { msgId: randomId(16), transactionId: s.transactionId, reason: 'wallet', time: clock.now() }, stranger.signer);
    expect((await post('/stop', { stop })).body.error.name).toBe('UNKNOWN_KEY');
    expect((await sessionOf(s)).body.state).toBe('open');
  });

  it('reports a session without purchases with the empty-list hash and no proof', async () => {
    const s = await openSession();
    await agent.stop(s.transactionId);
    await agent.settled();
    const [record] = recordsFor(s.transactionId);
    expect(record!.body).toMatchObject({ count: 0, total: 'EUR:0.00', proof: null });
    expect(record!.body.purchasesHash).toBe(await purchasesHash(EMPTY_LIST_SALT, []));
    expect(record!.body.purchasesHash).toBe(await recordPurchasesHash(s.listSalt, []));
    expect((await sessionOf(s)).body).toMatchObject({ state: 'reported', closeReason: 'merchant' });
  });

  it('closes and reports expired sessions when the timer sweeps', async () => {
    const s = await openSession({ timeoutSec: 60 });
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    clock.advance(30_000);
    expect((await agent.sweep()).closed).not.toContain(s.transactionId);
    clock.advance(31_000);
    const swept = await agent.sweep();
    expect(swept.closed).toContain(s.transactionId);
    expect(swept.reported).toContain(s.transactionId);
    const [record] = recordsFor(s.transactionId);
    expect(record!.body).toMatchObject({ count: 1, total: 'EUR:0.03' });
    expect((await sessionOf(s)).body).toMatchObject({ state: 'reported', closeReason: 'timer' });
  });

  it('closes each expired session on its own: one that fails waits its back-off, the others close', async () => {
    // The broken session expires first, so it heads the expiry order of every sweep.
    const broken = await openSession({ timeoutSec: 60 });
    await buy(broken, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    const others = [await openSession({ timeoutSec: 61 }), await openSession({ timeoutSec: 62 })];
    for (const s of others) await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    // A stored count that disagrees with the accepted lines: closing it refuses to sign a record.
    await db.query('UPDATE merchant_sessions SET count = count + 5 WHERE transaction_id = $1', [broken.transactionId]);
    clock.advance(63_000);
    const first = await agent.sweep();
    expect(first.failed).toContain(broken.transactionId);
    expect(first.closed).toEqual(expect.arrayContaining(others.map((s) => s.transactionId)));
    expect(first.closed).not.toContain(broken.transactionId);
    // Not tried again before its back-off (10 s); then again, and closed once it can be.
    clock.advance(1_000);
    expect((await agent.sweep()).failed).not.toContain(broken.transactionId);
    await db.query('UPDATE merchant_sessions SET count = count - 5 WHERE transaction_id = $1', [broken.transactionId]);
    clock.advance(15_000);
    expect((await agent.sweep()).closed).toContain(broken.transactionId);
    expect((await sessionOf(broken)).body).toMatchObject({ closeReason: 'timer' });
  });

  it('refuses an order after the session expired and reports it', async () => {
    const s = await openSession({ timeoutSec: 60 });
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    clock.advance(60_000);
    const res = await order(s, 2, 'article-2', 'EUR:0.03');
    expect(res.status).toBe(410);
    expect(res.body.error.name).toBe('SESSION_EXPIRED');
    await agent.settled();
    expect(recordsFor(s.transactionId)).toHaveLength(1);
  });

  it('keeps the record and retries until the operator answers', async () => {
    const s = await openSession();
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    operatorDown = true;
    try {
      await agent.stop(s.transactionId);
      await agent.settled();
      const view = (await sessionOf(s)).body;
      expect(view).toMatchObject({ state: 'closing', report: { sent: false, attempts: 1 } });
      expect(view.report.lastError).toContain('down for maintenance');
      // Not due yet: the first retry waits about a second (the one back-off: 1 s ± 20%).
      expect((await agent.sweep()).failed).not.toContain(s.transactionId);
    } finally {
      operatorDown = false;
    }
    expect(recordsFor(s.transactionId)).toHaveLength(0);
    clock.advance(1_200);
    const swept = await agent.sweep();
    expect(swept.reported).toContain(s.transactionId);
    expect(recordsFor(s.transactionId)).toHaveLength(1);
    expect((await sessionOf(s)).body).toMatchObject({ state: 'reported', report: { sent: true, attempts: 2 } });
  });

  it('stops sending a record the operator refuses for good, and keeps why (found by the reliability simulator, seed 2)', async () => {
    const s = await openSession();
    operatorRefuses = true;
    try {
      await agent.stop(s.transactionId);
      await agent.settled();
      const view = (await sessionOf(s)).body;
      expect(view).toMatchObject({ state: 'reported', report: { sent: true, attempts: 1, operatorState: 'refused' } });
      expect(view.report.lastError).toContain('SESSION_CLOSED');
      // Never due again, however much time passes: no retry for ever.
      clock.advance(3_600_000);
      const swept = await agent.sweep();
      expect([...swept.reported, ...swept.failed]).not.toContain(s.transactionId);
      expect((await sessionOf(s)).body.report).toMatchObject({ attempts: 1 });
    } finally {
      operatorRefuses = false;
    }
  });
});

describe('merchant module: who may read a trading session', () => {
  const path = (transactionId: string) => `/sessions/${transactionId}`;

  it('shows a session to its wallet (a fresh read signed with the session key), once per read', async () => {
    const s = await openSession({ deposit: 'EUR:0.50' });
    await buy(s, 1, 'article-1', 'EUR:0.03', 'EUR:0.03');
    const read = sessionReadAuthorization(await signRead(s));
    const view = await getWith(path(s.transactionId), read);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ transactionId: s.transactionId, state: 'open', deposit: 'EUR:0.50', spent: 'EUR:0.03', count: 1 });
    expect(view.body).toEqual(await agent.session(s.transactionId));
    // The same header again (a log, a proxy, a tab that kept it) is refused: each read counts once.
    const again = await getWith(path(s.transactionId), read);
    expect(again.status).toBe(401);
    expect(again.body.error).toMatchObject({ code: 4100, name: 'UNAUTHORIZED' });
    // Stale, or from the future beyond the window: refused.
    for (const time of [clock.now() - SESSION_READ_WINDOW_MS - 1, clock.now() + SESSION_READ_WINDOW_MS + 1]) {
      const stale = await getWith(path(s.transactionId), sessionReadAuthorization(await signRead(s, { time })));
      expect(stale.status).toBe(401);
      expect(stale.body.error.name).toBe('UNAUTHORIZED');
    }
    // Still readable after the session closed (its wallet follows the report).
    await agent.stop(s.transactionId);
    await agent.settled();
    expect((await sessionOf(s)).body).toMatchObject({ state: 'reported', closeReason: 'merchant', spent: 'EUR:0.03' });
  });

  it('shows a session to the shop’s administration with its token, compared whole', async () => {
    const s = await openSession();
    const admin = await adminSession(s.transactionId);
    expect(admin.status).toBe(200);
    expect(admin.body).toMatchObject({ transactionId: s.transactionId, deposit: 'EUR:0.10' });
    for (const token of ['wrong', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
      const res = await adminSession(s.transactionId, token);
      expect(res.status).toBe(401);
      expect(res.body.error.name).toBe('UNAUTHORIZED');
    }
    // A module mounted without an admin token shows no session to any bearer.
    expect((await getWith(path(s.transactionId), `Bearer ${ADMIN_TOKEN}`)).status).toBe(401);
    expect((await adminSession(newTradeHandle())).status).toBe(404);
  });

  it('tells a stranger nothing: no credential, another session’s key, a forged or tampered read all get the same 401, for real ids and unknown ones', async () => {
    const mine = await openSession();
    const other = await openSession();
    const unknown = { ...(await makeInfo()), transactionId: newTradeHandle() };
    const answers: Array<{ status: number; body: unknown }> = [];
    for (const target of [mine, unknown]) {
      answers.push(await getWith(path(target.transactionId)));
      answers.push(await getWith(path(target.transactionId), 'Basic Zm9vOmJhcg=='));
      answers.push(await getWith(path(target.transactionId), 'Obol-Session not*base64'));
      // Signed with a key the shopper holds, but not this session's.
      answers.push(await getWith(path(target.transactionId), sessionReadAuthorization(await signRead(target, {}, other.key))));
      // The other session's own valid read, sent for this id.
      answers.push(await getWith(path(target.transactionId), sessionReadAuthorization(await signRead(other))));
      // This session's key id with a signature that is not its key's.
      const forged = await signRead(target, {}, other.key);
      answers.push(await getWith(path(target.transactionId), sessionReadAuthorization({ ...forged, kid: mine.key.kid })));
    }
    const first = answers[0]!;
    expect(first.status).toBe(401);
    expect(first.body).toMatchObject({ error: { code: 4100, name: 'UNAUTHORIZED' } });
    for (const a of answers) expect(a).toEqual(first);
    // The real session's own read still works afterwards.
    expect((await sessionOf(mine)).status).toBe(200);
  });

  it('refuses to enumerate: ids next to real ones answer exactly as real ones do', async () => {
    const s = await openSession();
    const [operatorId, logon, n] = s.transactionId.split('.') as [string, string, string];
    const near = [s.transactionId, `${operatorId}.${logon}.${Number(n) + 1}`, `${operatorId}.${logon}.${Number(n) - 1}`, `${operatorId}.${Number(logon) + 1}.1`];
    const seen = new Set<string>();
    for (const id of near) {
      const res = await getWith(path(id));
      seen.add(JSON.stringify(res));
    }
    expect(seen.size).toBe(1);
  });
});

describe('merchant module: errors', () => {
  it('answers malformed requests with MALFORMED and unknown things with 404', async () => {
    const notSigned = await post('/order', { order: { hello: 'world' } });
    expect(notSigned.status).toBe(400);
    expect(notSigned.body.error).toMatchObject({ code: 1000, name: 'MALFORMED' });
    const badJson = await app.inject({ method: 'POST', url: '/obol/accept', headers: { 'content-type': 'application/json' }, payload: '{nope' });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.name).toBe('MALFORMED');
    const wrongType = await post('/info', await signOrder(await makeInfo(), 1, 'article-1', 'EUR:0.03'));
    expect(wrongType.body.error.name).toBe('WRONG_MESSAGE_TYPE');
    const unknownTx = await post('/order', { order: await signOrder({ ...(await makeInfo()), transactionId: newTradeHandle() }, 1, 'article-1', 'EUR:0.03') });
    expect(unknownTx.status).toBe(404);
    expect(unknownTx.body.error.name).toBe('UNKNOWN_TRANSACTION');
    expect((await adminSession('not-a-tx')).body.error.name).toBe('MALFORMED');
    const nowhere = await get('/nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body.error.name).toBe('UNSUPPORTED_METHOD');
  });
});
