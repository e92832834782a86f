import { beforeEach, describe, expect, it } from 'vitest';
import { RegisterCustomerRequest } from '../src/api.ts';
import { ManualClock } from '../src/clock.ts';
import { CustomerAgent } from '../src/customerAgent.ts';
import { type ErrorName, ObolError } from '../src/errors.ts';
import { type ExchangeTable, depositInMerchantCurrency, rateBetween, rateToString, signExchangeTable } from '../src/exchangeTable.ts';
import { type Http, fetchHttp } from '../src/http.ts';
import { newTradeHandle } from '../src/identity.ts';
import { KeyRing, type KeyHandle, keyHandle, keyIdOf } from '../src/keys.ts';
import { checkSchema } from '../src/messages.ts';
import { add, compare, formatAmount, parseAmount, sub } from '../src/money.ts';
import {
  type CertIssuer,
  certToBase64,
  createRootCa,
  describeCert,
  generateKeyPair,
  issueCustomerCert,
  issueMerchantCert,
  issueOperatorCert,
  issueSigningCert,
  issueTemporaryCert,
  parseCert,
  reissue,
  verifyChain,
} from '../src/pki.ts';
import { EMPTY_LIST_SALT, type PurchaseLine, purchaseCommitment, purchasesHash, recordPurchasesHash } from '../src/purchaseList.ts';
import { type Signed, signMessage, verifyMessage } from '../src/signed.ts';
import { MemoryWalletStore } from '../src/walletStore.ts';
import { type PreparedProduct, decryptProduct, descriptionHash, hashB64, prepareProduct, unwrapProductKey, wrapProductKey } from '../src/delivery.ts';
import { EvidenceBundle } from '../src/evidence.ts';
import { fromBase64Url, randomId, toBase64Url, utf8 } from '../src/webcrypto.ts';

// ── the scripted world: one interbank root, the shopper's operator (SEK), the merchant's
// operator (EUR) and one merchant, all with real keys and certificates, behind an in-memory Http.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 0, 1, 12);
const BANK = 'https://bank.example';
const SHOP = 'https://shop.example/obol';
const ORIGIN = 'https://news.example';
const TABLE_LIFE = 10 * MINUTE;

const PRODUCTS: Record<string, { price: string; content: string; type: string }> = {
  'article-1': { price: 'EUR:0.05', content: 'The first article: micropayments at last.', type: 'text/plain' },
  'article-2': { price: 'EUR:0.03', content: 'The second article.', type: 'text/plain' },
};

interface Pki {
  root: string;
  /** The shopper's operator: `handle` is its message-signing key (certified by `signingCert`); `issuing` its CA key. */
  sek: { cert: string; issuer: CertIssuer; issuing: KeyHandle; handle: KeyHandle; signingCert: string };
  eur: { cert: string; issuer: CertIssuer };
  merchantCertForWallet: string;
  merchant: KeyHandle;
  /** FIG 4: each product encrypted once and signed once by the merchant. */
  prepared: Record<string, PreparedProduct>;
}

let pkiPromise: Promise<Pki> | undefined;

async function signingKey(issuer: CertIssuer): Promise<{ handle: KeyHandle; signingCert: string }> {
  const keys = await generateKeyPair();
  const cert = await issueSigningCert({ operatorId: describeCert(issuer.cert).subjectId, publicKey: keys.publicKey, issuer, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY });
  return { handle: await keyHandle(keys), signingCert: certToBase64(cert) };
}
/** Built once: certificates are valid for a year around NOW; clocks only move forward by hours. */
function pki(): Promise<Pki> {
  pkiPromise ??= (async () => {
    const rootKeys = await generateKeyPair();
    const root = await createRootCa({ name: 'Obol Test Root', keys: rootKeys, notBefore: NOW - DAY, notAfter: NOW + 3650 * DAY });
    const rootIssuer: CertIssuer = { cert: root, privateKey: rootKeys.privateKey };
    const operator = async (operatorId: string) => {
      const keys = await generateKeyPair();
      const cert = await issueOperatorCert({ operatorId, publicKey: keys.publicKey, issuer: rootIssuer, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY });
      return { cert, keys, issuer: { cert, privateKey: keys.privateKey } };
    };
    const sek = await operator('op-sek');
    const eur = await operator('op-eur');
    const merchantKeys = await generateKeyPair();
    const merchantCert = await issueMerchantCert({
      merchantId: 'news-shop',
      origins: [ORIGIN],
      publicKey: merchantKeys.publicKey,
      issuer: eur.issuer,
      notBefore: NOW - DAY,
      notAfter: NOW + 30 * DAY,
    });
    const merchant = await keyHandle(merchantKeys);
    const prepared: Record<string, PreparedProduct> = {};
    for (const [productId, p] of Object.entries(PRODUCTS)) {
      prepared[productId] = await prepareProduct(
        { productId, title: `Title of ${productId}`, description: `About ${productId}`, price: p.price, contentType: p.type, content: utf8.encode(p.content) },
        merchant.signer,
      );
    }
    return {
      root: certToBase64(root),
      sek: { cert: certToBase64(sek.cert), issuer: sek.issuer, issuing: await keyHandle(sek.keys), ...(await signingKey(sek.issuer)) },
      eur: { cert: certToBase64(eur.cert), issuer: eur.issuer },
      // Step 7: the customer's operator re-issues the merchant's certificate for its wallets.
      merchantCertForWallet: certToBase64(await reissue(merchantCert, sek.issuer)),
      merchant,
      prepared,
    };
  })();
  return pkiPromise;
}

function fail(name: ErrorName, message: string = name): never {
  throw new ObolError(name, message);
}

/** The shopper's operator (account manager), played with real signatures and certificates. */
class ScriptedOperator {
  balance = 10_000n; // SEK minor units
  held = 0n;
  tableFetches = 0;
  tableFails = false;
  tableTampered = false;
  /** Sign messages with the operator's issuing (CA) key instead of its signing key: must be refused. */
  signWithIssuingKey = false;
  loginLife = 30 * MINUTE;
  readonly customers = new Map<string, { customerId: string; key: CryptoKey }>(); // by kid
  readonly challenges = new Set<string>();
  readonly sessions = new Map<string, { sessionId: string; customerId: string; expiresAt: number }>(); // by token
  readonly initiations = new Map<string, unknown>(); // ack by msgId
  /** By TransactionIdentity, as a real account manager keeps them; `handle` is what the merchant side knows. */
  readonly transactions = new Map<string, { handle: string; sessionKey: KeyRing; deposit: string; depositMerchant: string; rate: string; records: Signed<'wallet.record'>[] }>();
  private seq1 = 0;
  private seq2 = 0;

  constructor(
    private readonly world: Pki,
    private readonly clock: ManualClock,
    private readonly merchant: ScriptedMerchant,
  ) {}

  table(): ExchangeTable {
    const now = this.clock.now();
    return { operatorId: 'op-sek', base: 'SEK', rates: { EUR: '0.0874' }, issuedAt: now, expiresAt: now + TABLE_LIFE };
  }

  private auth(headers: Record<string, string>) {
    const token = /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
    const session = token ? this.sessions.get(token) : undefined;
    if (!session) fail('UNAUTHORIZED', 'no such token');
    if (session.expiresAt <= this.clock.now()) fail('SESSION_EXPIRED', 'log on again');
    return session;
  }

  revokeTokens(): void {
    this.sessions.clear();
  }

  async handle(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<unknown> {
    const now = this.clock.now();
    const w = this.world;
    const route = `${method} ${path}`;
    if (route === 'GET /v1/operator') {
      return { operatorId: 'op-sek', name: 'Bank SE', currency: 'SEK', url: BANK, operatorCert: w.sek.cert, signingCert: w.sek.signingCert, rootCert: w.root, demo: true };
    }
    if (route === 'POST /v1/customers') {
      checkSchema(RegisterCustomerRequest, body);
      const customerId = `c-${this.customers.size + 1}`;
      const cert = await issueCustomerCert({ customerId, publicKey: body.publicKey, issuer: w.sek.issuer, notBefore: now - HOUR, notAfter: now + 90 * DAY });
      const ring = new KeyRing();
      const kid = await ring.addSpki(body.publicKey);
      this.customers.set(kid, { customerId, key: ring.get(kid)! });
      return { customerId, customerCert: certToBase64(cert), operatorCert: w.sek.cert, signingCert: w.sek.signingCert, rootCert: w.root, currency: 'SEK' };
    }
    if (route === 'POST /v1/login/challenge') {
      const challenge = randomId(32);
      this.challenges.add(challenge);
      return { challenge, expiresAt: now + MINUTE };
    }
    if (route === 'POST /v1/login') {
      const login = await verifyMessage(body, 'wallet.login', (kid) => this.customers.get(kid)?.key);
      if (!this.challenges.delete(login.body.challenge)) fail('UNAUTHORIZED', 'unknown challenge');
      if (this.customers.get(login.kid)?.customerId !== login.body.customerId) fail('UNAUTHORIZED', 'not your account');
      const session = { sessionId: `op-sek.${++this.seq1}`, customerId: login.body.customerId, expiresAt: now + this.loginLife };
      const token = randomId(32);
      this.sessions.set(token, session);
      return { sessionId: session.sessionId, token, expiresAt: session.expiresAt, balance: formatAmount({ currency: 'SEK', value: this.balance }) };
    }
    if (route === 'GET /v1/balance') {
      const s = this.auth(headers);
      const sek = (value: bigint) => formatAmount({ currency: 'SEK', value });
      return { customerId: s.customerId, balance: sek(this.balance), available: sek(this.balance - this.held), held: sek(this.held), creditLimit: 'SEK:0.00' };
    }
    if (route === 'POST /v1/demo/top-up') {
      this.auth(headers);
      this.balance += parseAmount((body as { amount: string }).amount).value;
      return {};
    }
    if (route === 'GET /v1/exchange-table') {
      this.tableFetches++;
      if (this.tableFails) fail('UNAVAILABLE', 'the table service is down');
      const signed = await signExchangeTable(this.table(), (this.signWithIssuingKey ? w.sek.issuing : w.sek.handle).signer);
      return this.tableTampered ? { ...signed, body: { ...signed.body, rates: { EUR: '0.1' } } } : signed;
    }
    if (route === 'POST /v1/initiate') return this.initiate(body, now);
    if (route === 'POST /v1/records') {
      const record = body as Signed<'wallet.record'>;
      // The record names the trade handle (it is for the acquirer too): translated back here.
      const tx = [...this.transactions.values()].find((t) => t.handle === record.body?.transactionId);
      if (!tx) fail('UNKNOWN_TRANSACTION');
      const checked = await verifyMessage(record, 'wallet.record', tx.sessionKey.resolve);
      if (!tx.records.some((r) => r.body.msgId === checked.body.msgId)) tx.records.push(checked);
      return { transactionId: checked.body.transactionId, state: 'reported' };
    }
    const status = /^GET \/v1\/transactions\/(.+)$/.exec(route);
    if (status) {
      this.auth(headers);
      const id = decodeURIComponent(status[1]!);
      const tx = this.transactions.get(id) ?? fail('UNKNOWN_TRANSACTION');
      const record = tx.records[0];
      return {
        transactionId: id,
        state: record ? 'cleared' : 'open',
        depositCustomer: tx.deposit,
        depositMerchant: tx.depositMerchant,
        rate: tx.rate,
        ...(record ? { chargedMerchant: record.body.total, outcome: 'agreed', flagged: false } : {}),
      };
    }
    return fail('UNSUPPORTED_METHOD', `no route ${route}`);
  }

  private async initiate(body: unknown, now: number): Promise<unknown> {
    const msg = await verifyMessage(body, 'wallet.initiate', (kid) => this.customers.get(kid)?.key);
    const done = this.initiations.get(msg.body.msgId);
    if (done) return done; // a msgId is handled once
    const session = [...this.sessions.values()].find((s) => s.sessionId === msg.body.sessionId);
    if (!session || session.expiresAt <= now) fail('SESSION_EXPIRED', 'log on again');
    const deposit = parseAmount(msg.body.deposit);
    if (this.balance - this.held < deposit.value) fail('INSUFFICIENT_FUNDS');
    const rate = rateBetween(this.table(), 'SEK', 'EUR');
    const depositMerchant = formatAmount(depositInMerchantCurrency(deposit, 'EUR', rate));
    this.held += deposit.value;
    const transactionId = `${msg.body.sessionId}.${++this.seq2}`;
    const handle = newTradeHandle();
    const expiresAt = now + msg.body.timeoutSec * 1000;
    const tempCert = await issueTemporaryCert({
      handle,
      publicKey: msg.body.sessionPublicKey,
      issuer: this.world.sek.issuer,
      notBefore: now - MINUTE,
      notAfter: expiresAt,
    });
    const sessionKey = new KeyRing();
    await sessionKey.addSpki(msg.body.sessionPublicKey);
    this.transactions.set(transactionId, { handle, sessionKey, deposit: msg.body.deposit, depositMerchant, rate: rateToString(rate), records: [] });
    // Steps 3–6, compressed: the merchant's operator re-issues the temporary certificate for its merchant.
    await this.merchant.open(handle, certToBase64(await reissue(tempCert, this.world.eur.issuer)), depositMerchant, msg.body.k1);
    const ack = await signMessage(
      'am.ack',
      {
        msgId: randomId(),
        transactionId,
        handle,
        rate: rateToString(rate),
        depositCustomer: msg.body.deposit,
        depositMerchant,
        merchantCert: this.world.merchantCertForWallet,
        merchantUrl: SHOP,
        tempCert: certToBase64(tempCert),
        expiresAt,
        time: now,
      },
      (this.signWithIssuingKey ? this.world.sek.issuing : this.world.sek.handle).signer,
    );
    this.initiations.set(msg.body.msgId, ack);
    return ack;
  }
}

interface MerchantSession {
  ring: KeyRing;
  deposit: string;
  k1: string;
  cumulative: string;
  count: number;
  closed: boolean;
  delivered?: { n: number; productId: string; price: string; ciphertextHash: string; descriptionHash: string };
  accepts: Map<string, { n: number; response: unknown }>;
  lines: PurchaseLine[];
  listSalt?: string;
  stops: Signed<'wallet.stop'>[];
}

/**
 * How the scripted merchant misbehaves on its next deliveries:
 * - cut: the ciphertext arrives short (a broken transfer);
 * - description: the delivery carries another product's signed description;
 * - signature: the encrypted product's signature is broken;
 * - key: the accept is answered with a key wrapped with another K1 (it opens nothing).
 */
type Tamper = 'cut' | 'description' | 'signature' | 'key';

/** The merchant module: checks every order and accept with the session key from its operator (FIG 4 delivery). */
class ScriptedMerchant {
  readonly sessions = new Map<string, MerchantSession>();
  tamper: Tamper | undefined;
  /** How many more deliveries the tamper applies to (Infinity: all). */
  tamperTimes = Number.POSITIVE_INFINITY;
  refuseNextOrder: ErrorName | undefined;
  infoOrigins = [ORIGIN];

  constructor(
    private readonly world: Pki,
    private readonly clock: ManualClock,
  ) {}

  async open(transactionId: string, tempCert: string, deposit: string, k1: string): Promise<void> {
    const d = await verifyChain(tempCert, { trustedIssuers: [parseCert(this.world.eur.cert)] }, { now: this.clock.now(), expectKind: 'temporary' });
    expect(d.transactionId).toBe(transactionId);
    const ring = new KeyRing();
    await ring.addSpki(d.publicKeySpki);
    this.sessions.set(transactionId, { ring, deposit, k1, cumulative: 'EUR:0.00', count: 0, closed: false, accepts: new Map(), lines: [], stops: [] });
  }

  private session(transactionId: unknown): MerchantSession {
    return (typeof transactionId === 'string' && this.sessions.get(transactionId)) || fail('UNKNOWN_TRANSACTION');
  }

  private tampering(kind: Tamper): boolean {
    if (this.tamper !== kind || this.tamperTimes <= 0) return false;
    this.tamperTimes--;
    return true;
  }

  async handle(method: string, path: string, body: unknown): Promise<unknown> {
    const route = `${method} ${path}`;
    if (route === 'GET /merchant') {
      return { merchantId: 'news-shop', name: 'News Shop', operatorId: 'op-eur', operatorUrl: 'https://bank-eu.example', currency: 'EUR', origins: this.infoOrigins };
    }
    const described = /^GET \/products\/(.+)$/.exec(route);
    if (described) return (this.world.prepared[decodeURIComponent(described[1]!)] ?? fail('UNKNOWN_PRODUCT')).description;
    if (route === 'POST /order') {
      const raw = (body as { order: Signed<'wallet.order'> }).order;
      const s = this.session(raw?.body?.transactionId);
      const { body: o } = await verifyMessage(raw, 'wallet.order', s.ring.resolve);
      if (s.closed) fail('SESSION_CLOSED');
      if (this.refuseNextOrder) {
        const name = this.refuseNextOrder;
        this.refuseNextOrder = undefined;
        if (name === 'DEPOSIT_EXHAUSTED') s.closed = true;
        fail(name);
      }
      if (o.n !== s.count + 1) fail('OUT_OF_SEQUENCE', `expected order ${s.count + 1}`);
      const prepared = this.world.prepared[o.productId] ?? fail('UNKNOWN_PRODUCT');
      if (o.price !== PRODUCTS[o.productId]!.price) fail('CONFLICT', 'wrong price');
      if (compare(add(parseAmount(s.cumulative), parseAmount(o.price)), parseAmount(s.deposit)) > 0) {
        s.closed = true;
        fail('DEPOSIT_EXHAUSTED');
      }
      s.listSalt ??= o.listSalt;
      expect(o.listSalt).toBe(s.listSalt);
      s.delivered = {
        n: o.n,
        productId: o.productId,
        price: o.price,
        ciphertextHash: prepared.product.body.ciphertextHash,
        descriptionHash: prepared.descriptionHash,
      };
      const other = Object.values(this.world.prepared).find((p) => p !== prepared)!;
      let ciphertext = prepared.ciphertext;
      if (this.tampering('cut')) ciphertext = ciphertext.slice(0, ciphertext.length - 5);
      let product = prepared.product;
      if (this.tampering('signature')) product = { ...product, sig: other.product.sig };
      const description = this.tampering('description') ? other.description : prepared.description;
      return { transactionId: o.transactionId, n: o.n, productId: o.productId, price: o.price, product, description, ciphertext: toBase64Url(ciphertext) };
    }
    if (route === 'POST /accept') {
      const raw = (body as { accept: Signed<'wallet.accept'> }).accept;
      const s = this.session(raw?.body?.transactionId);
      const { body: a } = await verifyMessage(raw, 'wallet.accept', s.ring.resolve);
      const seen = s.accepts.get(a.acceptId);
      if (seen) return seen.response; // counted once, however often it is replayed
      if (s.closed) fail('SESSION_CLOSED');
      const d = s.delivered;
      if (
        !d ||
        d.n !== a.n ||
        !s.listSalt ||
        a.commitment !==
          (await purchaseCommitment(s.listSalt, { n: d.n, productId: d.productId, price: d.price, receivedHash: d.ciphertextHash, descriptionHash: d.descriptionHash }))
      ) {
        fail('NO_ACCEPT', 'not what was delivered');
      }
      const cumulative = add(parseAmount(s.cumulative), parseAmount(d.price));
      if (formatAmount(cumulative) !== a.cumulative) fail('CONFLICT', 'wrong cumulative');
      s.cumulative = a.cumulative;
      s.count = a.n;
      s.lines.push({ n: a.n, productId: d.productId, price: d.price });
      s.delivered = undefined;
      const k1 = this.tampering('key') ? randomId(32) : s.k1;
      const key = await signMessage(
        'merchant.key',
        { transactionId: a.transactionId, n: a.n, productId: d.productId, acceptId: a.acceptId, wrappedK2: await wrapProductKey(this.world.prepared[d.productId]!.k2, k1) },
        this.world.merchant.signer,
      );
      const response = { transactionId: a.transactionId, n: a.n, charged: d.price, remaining: formatAmount(sub(parseAmount(s.deposit), cumulative)), key };
      s.accepts.set(a.acceptId, { n: a.n, response });
      return response;
    }
    if (route === 'POST /stop') {
      const raw = (body as { stop: Signed<'wallet.stop'> }).stop;
      const s = this.session(raw?.body?.transactionId);
      const stop = await verifyMessage(raw, 'wallet.stop', s.ring.resolve);
      s.stops.push(stop);
      if (s.closed) fail('SESSION_CLOSED');
      s.closed = true;
      return { transactionId: stop.body.transactionId, state: 'closed', total: s.cumulative, count: s.count };
    }
    return fail('UNSUPPORTED_METHOD', `no route ${route}`);
  }
}

interface Fault {
  method: 'GET' | 'POST';
  path: string;
  /** before: the request never arrives; after: it is handled but the answer is lost. */
  when: 'before' | 'after';
  times: number;
}

/** An Http that routes to the scripted parties through JSON, as the network would, with faults. */
class ScriptedHttp implements Http {
  readonly log: { method: string; url: string; body: unknown }[] = [];
  readonly faults: Fault[] = [];

  constructor(
    private readonly operator: ScriptedOperator,
    private readonly merchant: ScriptedMerchant,
  ) {}

  get(url: string, headers?: Record<string, string>): Promise<unknown> {
    return this.call('GET', url, undefined, headers ?? {});
  }

  post(url: string, body: unknown, headers?: Record<string, string>): Promise<unknown> {
    return this.call('POST', url, body, headers ?? {});
  }

  posts(path: string): unknown[] {
    return this.log.filter((r) => r.method === 'POST' && r.url.endsWith(path)).map((r) => r.body);
  }

  private async call(method: 'GET' | 'POST', url: string, body: unknown, headers: Record<string, string>): Promise<unknown> {
    const wire = body === undefined ? undefined : JSON.parse(JSON.stringify(body));
    this.log.push({ method, url, body: wire });
    const fault = this.faults.find((f) => f.method === method && url.endsWith(f.path) && f.times > 0);
    if (fault) fault.times--;
    if (fault?.when === 'before') throw new ObolError('UNAVAILABLE', 'injected: the request was lost');
    let result: unknown;
    try {
      if (url.startsWith(`${BANK}/`)) result = await this.operator.handle(method, url.slice(BANK.length), wire, headers);
      else if (url.startsWith(`${SHOP}/`)) result = await this.merchant.handle(method, url.slice(SHOP.length), wire);
      else throw new ObolError('UNAVAILABLE', `no server at ${url}`);
    } catch (e) {
      // Errors cross the wire as { error: { code, name, message } }.
      if (e instanceof ObolError) throw ObolError.fromJSON(JSON.parse(JSON.stringify(e)));
      throw e;
    }
    if (fault?.when === 'after') throw new ObolError('UNAVAILABLE', 'injected: the answer was lost');
    return result === undefined ? undefined : JSON.parse(JSON.stringify(result));
  }
}

async function world(opts: { minimum?: string } = {}) {
  const w = await pki();
  const clock = new ManualClock(NOW);
  const merchant = new ScriptedMerchant(w, clock);
  const operator = new ScriptedOperator(w, clock, merchant);
  const http = new ScriptedHttp(operator, merchant);
  const store = new MemoryWalletStore();
  const depositPolicy = { minimum: opts.minimum ?? 'SEK:20.00', timeoutSec: 900 };
  const newAgent = () => new CustomerAgent({ store, http, clock, depositPolicy, trustedRoots: [w.root] });
  return { w, clock, merchant, operator, http, store, agent: newAgent(), newAgent };
}

async function registered(opts: { minimum?: string } = {}) {
  const x = await world(opts);
  await x.agent.register(BANK);
  return x;
}

const article1 = { merchantUrl: SHOP, productId: 'article-1', price: 'EUR:0.05', origin: ORIGIN };
const article2 = { merchantUrl: SHOP, productId: 'article-2', price: 'EUR:0.03', origin: ORIGIN };

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
}

// ── the tests ───────────────────────────────────────────────────────────────────────────────

describe('customer agent: account', () => {
  it('registers (certificate chained to the root and holding its key), logs on by itself and reads the balance', async () => {
    const { agent, store, http, operator } = await world();
    expect(await agent.account()).toBeUndefined();
    expect(await errorName(agent.balance())).toBe('NO_WALLET_ACCOUNT');

    const account = await agent.register(`${BANK}/`);
    expect(account).toMatchObject({ operatorUrl: BANK, operatorId: 'op-sek', currency: 'SEK', customerId: 'c-1' });
    const stored = (await store.getAccount())!;
    expect(stored.keys.privateKey.extractable).toBe(false);
    expect(describeCert(parseCert(stored.customerCert)).publicKeySpki).toBe(stored.publicKey);
    expect(await errorName(agent.register(BANK))).toBe('CONFLICT');

    const balance = await agent.balance();
    expect(balance).toMatchObject({ customerId: 'c-1', balance: 'SEK:100.00', available: 'SEK:100.00' });
    expect(http.posts('/v1/login')).toHaveLength(1);
    expect(await agent.demoTopUp('SEK:50.00')).toMatchObject({ balance: 'SEK:150.00' });
    expect(http.posts('/v1/login')).toHaveLength(1); // the login is reused while it lasts
    expect(operator.balance).toBe(15_000n);
  });

  it('logs on again when the login has expired by the clock, or when the operator refuses the token once', async () => {
    const { agent, http, clock, operator } = await registered();
    await agent.balance();
    clock.advance(31 * MINUTE);
    await agent.balance();
    expect(http.posts('/v1/login')).toHaveLength(2);
    operator.revokeTokens();
    expect(await agent.balance()).toMatchObject({ balance: 'SEK:100.00' });
    expect(http.posts('/v1/login')).toHaveLength(3);
  });

  /** A root like ours, same name, other key: what an impostor would make. */
  async function foreignRoot() {
    const keys = await generateKeyPair();
    const root = await createRootCa({ name: 'Obol Test Root', keys, notBefore: NOW - DAY, notAfter: NOW + 3650 * DAY });
    return { root, issuer: { cert: root, privateKey: keys.privateKey } as CertIssuer };
  }
  /** The operator's registration answer, changed on the way. */
  const tamper = (http: Http, change: (answer: Record<string, unknown>) => Promise<Record<string, unknown>>): Http => ({
    get: (url, headers) => http.get(url, headers),
    post: async (url, body, headers) => {
      const answer = await http.post(url, body, headers);
      return url.endsWith('/v1/customers') ? change(answer as Record<string, unknown>) : answer;
    },
  });

  it('refuses an operator whose chain ends at another root, with OPERATOR_NOT_TRUSTED, storing nothing', async () => {
    const { store, http, clock } = await world();
    const other = await foreignRoot();
    // The operator is honest, but under a root this wallet was not built with.
    const agent = new CustomerAgent({ store, http, clock, trustedRoots: [certToBase64(other.root)] });
    const e = await agent.register(BANK).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ObolError);
    expect((e as ObolError).name).toBe('OPERATOR_NOT_TRUSTED');
    expect((e as ObolError).message).toMatch(/op-sek.*not trusted/);
    expect(await store.getAccount()).toBeUndefined();
    expect(await store.getLogin()).toBeUndefined();
  });

  it('never takes the root from the operator’s answer: a self-made root and operator certificate are refused', async () => {
    const { w, store, http, clock } = await world();
    const impostor = await foreignRoot();
    const opKeys = await generateKeyPair();
    const fakeOp = await issueOperatorCert({ operatorId: 'op-sek', publicKey: opKeys.publicKey, issuer: impostor.issuer, notBefore: NOW - DAY, notAfter: NOW + DAY });
    const lying = tamper(http, async (answer) => {
      const customerKey = describeCert(parseCert(answer.customerCert as string)).publicKeySpki;
      const customerCert = await issueCustomerCert({ customerId: 'c-1', publicKey: customerKey, issuer: { cert: fakeOp, privateKey: opKeys.privateKey }, notBefore: NOW - DAY, notAfter: NOW + DAY });
      return { ...answer, rootCert: certToBase64(impostor.root), operatorCert: certToBase64(fakeOp), customerCert: certToBase64(customerCert) };
    });
    const agent = new CustomerAgent({ store, http: lying, clock, trustedRoots: [w.root] });
    expect(await errorName(agent.register(BANK))).toBe('OPERATOR_NOT_TRUSTED');
    expect(await store.getAccount()).toBeUndefined();
  });

  it('stores the trusted root it checked, whatever root the answer names; several roots may be trusted', async () => {
    const { w, store, http, clock } = await world();
    const other = await foreignRoot();
    const misnaming = tamper(http, async (answer) => ({ ...answer, rootCert: certToBase64(other.root) }));
    const agent = new CustomerAgent({ store, http: misnaming, clock, trustedRoots: [certToBase64(other.root), w.root] });
    await agent.register(BANK);
    expect((await store.getAccount())?.rootCert).toBe(w.root);
  });

  it('refuses to use an account stored under a root it no longer trusts, and with no root trusts no operator', async () => {
    const { store, http, clock, agent } = await world();
    await agent.register(BANK);
    const other = await foreignRoot();
    const later = new CustomerAgent({ store, http, clock, trustedRoots: [certToBase64(other.root)] });
    expect(await errorName(later.balance())).toBe('OPERATOR_NOT_TRUSTED');
    const none = new CustomerAgent({ store: new MemoryWalletStore(), http, clock, trustedRoots: [] });
    const e = await none.register(BANK).catch((x: unknown) => x);
    expect([(e as ObolError).name, (e as ObolError).message]).toEqual(['OPERATOR_NOT_TRUSTED', expect.stringMatching(/no trusted interbank root/)]);
    expect(() => new CustomerAgent({ store, http, clock, trustedRoots: ['AAAA'] })).toThrow(ObolError);
  });
});

describe('customer agent: exchange table', () => {
  it('caches the verified table, refreshes it after expiry, and says "unavailable" when it cannot', async () => {
    const { agent, clock, operator, store } = await registered();
    const first = await agent.exchangeTable();
    expect(first.status).toBe('refreshed');
    expect((await agent.exchangeTable()).status).toBe('valid');
    expect(await agent.quote('EUR:0.05')).toBe('SEK:0.57'); // 0.05 / 0.0874 = 0.572…, half-even
    expect(await agent.quote('SEK:3.00')).toBe('SEK:3.00');
    expect(operator.tableFetches).toBe(1);
    expect((await store.getTable())?.signed.type).toBe('operator.exchangeTable');

    clock.advance(TABLE_LIFE + MINUTE);
    const second = await agent.exchangeTable();
    expect(second.status).toBe('refreshed');
    expect(second.table?.issuedAt).toBe(NOW + TABLE_LIFE + MINUTE);
    expect(operator.tableFetches).toBe(2);

    operator.tableFails = true;
    clock.advance(TABLE_LIFE + MINUTE);
    const stale = await agent.exchangeTable();
    expect(stale).toMatchObject({ status: 'unavailable', table: { issuedAt: second.table?.issuedAt }, error: { name: 'UNAVAILABLE' } });
    expect(await errorName(agent.quote('EUR:0.05'))).toBe('EXCHANGE_TABLE_EXPIRED');
  });

  it('never uses a table whose signature does not verify', async () => {
    const { agent, operator } = await registered();
    operator.tableTampered = true;
    const result = await agent.exchangeTable();
    expect(result).toMatchObject({ status: 'unavailable', error: { name: 'BAD_SIGNATURE' } });
    expect(result.table).toBeUndefined();
    expect(await errorName(agent.quote('EUR:0.05'))).toBe('EXCHANGE_TABLE_MISSING');
  });

  it('verifies the operator’s messages with its signing key only: a table or an ack signed with the issuing (CA) key is refused', async () => {
    const { agent, operator, store } = await registered();
    operator.signWithIssuingKey = true;
    const result = await agent.exchangeTable();
    expect(result).toMatchObject({ status: 'unavailable', error: { name: 'UNKNOWN_KEY' } });
    expect(await store.getTable()).toBeUndefined();
    operator.signWithIssuingKey = false;
    expect((await agent.exchangeTable()).status).toBe('refreshed');
    operator.signWithIssuingKey = true;
    expect(await errorName(agent.buy(article1))).toBe('UNKNOWN_KEY');
  });

  it('an account stored without the signing certificate fetches it from the operator and checks it', async () => {
    const { w, agent, store, http } = await registered();
    const { operatorSigningCert: _, ...old } = (await store.getAccount())!;
    await store.putAccount(old);
    const again = new CustomerAgent({ store, http, clock: new ManualClock(NOW), trustedRoots: [w.root] });
    expect((await again.exchangeTable()).status).toBe('refreshed');
    expect((await store.getAccount())?.operatorSigningCert).toBe(w.sek.signingCert);
    expect(agent).toBeDefined();
  });
});

describe('customer agent: buying', () => {
  let x: Awaited<ReturnType<typeof registered>>;
  beforeEach(async () => {
    x = await registered();
  });

  it('opens a deposit, then orders and accepts with the session key; the merchant verifies both', async () => {
    const { agent, http, merchant, store, operator } = x;
    const bought = await agent.buy(article1);
    expect(utf8.decode(bought.content)).toBe(PRODUCTS['article-1']!.content);
    expect(bought.contentType).toBe('text/plain');
    expect(bought.receipt).toMatchObject({ n: 1, productId: 'article-1', price: 'EUR:0.05', merchantId: 'news-shop', origin: ORIGIN });

    // The initiation (FIG 2 step 2): long-term key, deposit = the policy minimum in SEK.
    const [initiate] = http.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    expect(initiate!.body).toMatchObject({ sessionId: 'op-sek.1', merchantId: 'news-shop', merchantOperatorId: 'op-eur', firstPrice: 'EUR:0.05', deposit: 'SEK:20.00', timeoutSec: 900 });
    expect(initiate!.kid).toBe((await store.getAccount())!.kid);
    expect(operator.held).toBe(2000n);

    const tx = (await store.getTransaction(bought.receipt.transactionId))!;
    expect(tx).toMatchObject({ state: 'open', depositCustomer: 'SEK:20.00', depositMerchant: 'EUR:1.74', cumulative: 'EUR:0.05', nextN: 2 });
    expect(tx.sessionKeys.privateKey.extractable).toBe(false);
    const sessionKid = await keyIdOf(describeCert(parseCert(tx.tempCert!)).publicKeySpki);

    const order = (http.posts('/order') as { order: Signed<'wallet.order'> }[])[0]!.order;
    expect(order.kid).toBe(sessionKid);
    // Toward the merchant the transaction is its trade handle, never the TransactionIdentity.
    expect(tx.handle).toMatch(/^t-[A-Za-z0-9_-]{22}$/);
    expect(order.body).toMatchObject({ transactionId: tx.handle, n: 1, productId: 'article-1', price: 'EUR:0.05', origin: ORIGIN, listSalt: tx.listSalt });
    const accept = (http.posts('/accept') as { accept: Signed<'wallet.accept'> }[])[0]!.accept;
    expect(accept.kid).toBe(sessionKid);
    // The accept is the merchant's proof toward its operator: the cumulative, and the purchase only
    // as a salted commitment — no product id, price or catalogue hash in clear.
    expect(Object.keys(accept.body).sort()).toEqual(['acceptId', 'commitment', 'cumulative', 'n', 'time', 'transactionId']);
    expect(accept.body).toMatchObject({ n: 1, cumulative: 'EUR:0.05' });
    // FIG 4: it commits to the ciphertext received (the merchant-signed hash) and the description chosen.
    const prepared = x.w.prepared['article-1']!;
    const opening = {
      n: 1,
      productId: 'article-1',
      price: 'EUR:0.05',
      receivedHash: await hashB64(prepared.ciphertext),
      descriptionHash: await descriptionHash(prepared.description.body),
    };
    expect(opening.receivedHash).toBe(prepared.product.body.ciphertextHash);
    expect(accept.body.commitment).toBe(await purchaseCommitment(tx.listSalt, opening));
    expect(bought.receipt.opening).toEqual({ listSalt: tx.listSalt, ...opening });
    expect(bought.receipt.accept).toEqual(accept);
    // The receipt holds what a dispute needs, the key included; the wallet opens it again on demand.
    expect(bought.receipt).toMatchObject({ status: 'delivered', receiptId: accept.body.acceptId, title: 'Title of article-1', description: prepared.description, product: prepared.product });
    expect(bought.receipt.key?.body).toMatchObject({ acceptId: accept.body.acceptId, n: 1 });
    expect(utf8.decode((await agent.openReceipt(bought.receipt.receiptId)).content)).toBe(PRODUCTS['article-1']!.content);

    // A second purchase stays in the same transaction, no operator involved.
    const second = await agent.buy(article2);
    expect(second.receipt).toMatchObject({ transactionId: tx.transactionId, n: 2 });
    expect(http.posts('/v1/initiate')).toHaveLength(1);
    const m = merchant.sessions.get(tx.handle!)!;
    expect(m).toMatchObject({ count: 2, cumulative: 'EUR:0.08' });
    expect(await agent.receipts(tx.transactionId)).toHaveLength(2);
    expect(await agent.listTransactions()).toMatchObject([{ state: 'open', count: 2, cumulative: 'EUR:0.08', remaining: 'EUR:1.66' }]);
  });

  it('ends a transaction: stop to the merchant, then a record whose hash matches the merchant’s list', async () => {
    const { agent, merchant, operator } = x;
    const { receipt } = await agent.buy(article1);
    await agent.buy(article2);
    const ended = await agent.endTransaction(receipt.transactionId);
    expect(ended).toMatchObject({ state: 'reported', closeReason: 'wallet', count: 2 });
    const m = merchant.sessions.get(receipt.handle)!;
    expect(m.stops.map((s) => s.body.reason)).toEqual(['wallet']);
    const [record] = operator.transactions.get(receipt.transactionId)!.records;
    expect(record!.body).toMatchObject({ transactionId: receipt.handle, count: 2, total: 'EUR:0.08' });
    expect(record!.body.purchasesHash).toBe(await purchasesHash(m.listSalt!, m.lines));

    const status = await agent.transactionStatus(receipt.transactionId);
    expect(status.state).toBe('cleared');
    expect(await agent.transaction(receipt.transactionId)).toMatchObject({ state: 'cleared', clearing: { outcome: 'agreed', chargedMerchant: 'EUR:0.08' } });
  });

  it('a delivery cut short is asked for again: one cut is recovered, one accept', async () => {
    const { agent, http, merchant } = x;
    merchant.tamper = 'cut';
    merchant.tamperTimes = 1;
    const { receipt, content } = await agent.buy(article1);
    expect(utf8.decode(content)).toBe(PRODUCTS['article-1']!.content);
    const orders = http.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders).toHaveLength(2);
    expect(orders[1]).toEqual(orders[0]); // the same order, asked again
    expect(http.posts('/accept')).toHaveLength(1);
    expect(receipt.status).toBe('delivered');
  });

  it('a delivery that keeps arriving cut is given up: no accept is sent, nothing is paid', async () => {
    const { agent, http, merchant, store } = x;
    merchant.tamper = 'cut';
    const refused = agent.buy(article1);
    await expect(refused).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    await expect(refused).rejects.toThrow(/nothing was paid/);
    expect(http.posts('/order')).toHaveLength(3);
    expect(http.posts('/accept')).toHaveLength(0);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ state: 'open', lines: [], cumulative: 'EUR:0.00', nextN: 1 });
    expect(tx!.pending).toBeUndefined();
    expect(await agent.receipts()).toHaveLength(0);

    merchant.tamper = undefined;
    const { receipt } = await agent.buy(article1);
    expect(receipt).toMatchObject({ transactionId: tx!.transactionId, n: 1 });
  });

  it('a wrong product (another product’s description) is refused before any accept: PRODUCT_MISMATCH', async () => {
    const { agent, http, merchant, store } = x;
    merchant.tamper = 'description';
    expect(await errorName(agent.buy(article1))).toBe('PRODUCT_MISMATCH');
    expect(http.posts('/order')).toHaveLength(1); // not asked again: it is not a broken transfer
    expect(http.posts('/accept')).toHaveLength(0);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ lines: [], cumulative: 'EUR:0.00' });
    expect(tx!.pending).toBeUndefined();
  });

  it('a product whose signature is not the merchant’s is refused before any accept: BAD_SIGNATURE', async () => {
    const { agent, http, merchant } = x;
    merchant.tamper = 'signature';
    expect(await errorName(agent.buy(article1))).toBe('BAD_SIGNATURE');
    expect(http.posts('/accept')).toHaveLength(0);
    expect(await agent.receipts()).toHaveLength(0);
  });

  it('a price the merchant’s signed description does not name is refused before any deposit', async () => {
    const { agent, http, operator } = x;
    expect(await errorName(agent.buy({ ...article1, price: 'EUR:0.04' }))).toBe('PRODUCT_MISMATCH');
    expect(http.posts('/v1/initiate')).toHaveLength(0);
    expect(operator.held).toBe(0n);
    expect(await errorName(agent.buy({ ...article1, productId: 'no-such-thing' }))).toBe('UNKNOWN_PRODUCT');
  });

  it('a key that does not open the product: charged (the merchant holds the accept), the receipt is disputable and its evidence exportable', async () => {
    const { agent, merchant, store } = x;
    merchant.tamper = 'key';
    const failed = agent.buy(article1);
    await expect(failed).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    await expect(failed).rejects.toThrow(/charged/);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ lines: [{ n: 1, productId: 'article-1' }], cumulative: 'EUR:0.05', nextN: 2 });
    expect(tx!.pending).toBeUndefined();
    const [receipt] = await agent.receipts();
    expect(receipt).toMatchObject({ status: 'disputable', problem: { name: 'PRODUCT_MISMATCH' } });
    expect(receipt!.key).toBeDefined();
    const evidence = await agent.exportEvidence(receipt!.receiptId);
    checkSchema(EvidenceBundle, JSON.parse(JSON.stringify(evidence)));
    expect(evidence).toMatchObject({ presentedBy: 'shopper', transactionId: tx!.handle, n: 1, merchantId: 'news-shop', merchantOperatorId: 'op-eur' });
    expect(evidence.key).toEqual(receipt!.key);
    expect(evidence.operatorCerts).toEqual([x.w.sek.cert]);
    // The wallet's own K1 does not open the merchant's key: what the arbiter will find too.
    await expect(unwrapProductKey((evidence.key as Signed<'merchant.key'>).body.wrappedK2, tx!.k1)).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    expect(await agent.exportEvidence({ transactionId: tx!.transactionId!, n: 1 })).toMatchObject({ accept: receipt!.accept });
    expect(await errorName(agent.exportEvidence({ transactionId: tx!.transactionId!, n: 7 }))).toBe('UNKNOWN_TRANSACTION');
    expect(await errorName(agent.exportEvidence('no-such-receipt'))).toBe('UNKNOWN_TRANSACTION');
    // The content itself is still what the merchant encrypted: only the key was wrong.
    const k2 = await unwrapProductKey(await wrapProductKey(x.w.prepared['article-1']!.k2, tx!.k1), tx!.k1);
    expect(utf8.decode(await decryptProduct(fromBase64Url(evidence.ciphertext), (evidence.product as Signed<'merchant.product'>).body.iv, k2, 'article-1'))).toBe(PRODUCTS['article-1']!.content);
  });

  it('DEPOSIT_EXHAUSTED: the old transaction is closed and reported, a new one opened, ordering again with n = 1', async () => {
    const { agent, http, merchant, operator, store } = x;
    const first = await agent.buy(article1);
    merchant.refuseNextOrder = 'DEPOSIT_EXHAUSTED';
    const second = await agent.buy(article2);
    expect(second.receipt.transactionId).not.toBe(first.receipt.transactionId);
    expect(second.receipt.n).toBe(1);
    const orders = http.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders.at(-1)!.order.body).toMatchObject({ transactionId: second.receipt.handle, n: 1, productId: 'article-2' });
    expect(http.posts('/v1/initiate')).toHaveLength(2);
    expect(await store.getTransaction(first.receipt.transactionId)).toMatchObject({ state: 'reported', closeReason: 'deposit-used' });
    const [record] = operator.transactions.get(first.receipt.transactionId)!.records;
    expect(record!.body).toMatchObject({ count: 1, total: 'EUR:0.05' });
  });

  it('a deposit too small for the next price is ended by the wallet itself and a new one opened', async () => {
    const small = await registered({ minimum: 'SEK:1.00' }); // 1 SEK → EUR:0.08
    const first = await small.agent.buy(article1);
    expect((await small.agent.transaction(first.receipt.transactionId))?.depositMerchant).toBe('EUR:0.08');
    const second = await small.agent.buy(article1);
    expect(second.receipt).toMatchObject({ n: 1 });
    expect(second.receipt.transactionId).not.toBe(first.receipt.transactionId);
    expect(small.merchant.sessions.get(first.receipt.handle)!.stops.map((s) => s.body.reason)).toEqual(['deposit-used']);
    expect(await small.agent.transaction(first.receipt.transactionId)).toMatchObject({ state: 'reported' });
  });

  it('an initiation refused for a stale logon is signed again under a new logon (new msgId): one deposit', async () => {
    const { agent, http, operator } = x;
    await agent.balance(); // logged on
    operator.revokeTokens(); // the operator forgets the logon session
    const { receipt } = await agent.buy(article1);
    const initiations = http.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    expect(initiations.map((m) => m.body.sessionId)).toEqual(['op-sek.1', 'op-sek.2']);
    expect(initiations[0]!.body.msgId).not.toBe(initiations[1]!.body.msgId);
    expect(operator.held).toBe(2000n);
    expect(receipt.transactionId).toBe('op-sek.2.1');
  });

  it('refuses a merchant whose certificate does not name the page origin, and reports the empty transaction', async () => {
    const { agent, merchant, operator, store } = x;
    expect(await errorName(agent.buy({ ...article1, origin: 'https://evil.example' }))).toBe('MERCHANT_NOT_TRUSTED');
    expect(operator.held).toBe(0n); // refused before any deposit

    merchant.infoOrigins = [ORIGIN, 'https://evil.example']; // the merchant claims it; its certificate does not
    expect(await errorName(agent.buy({ ...article1, origin: 'https://evil.example' }))).toBe('MERCHANT_NOT_TRUSTED');
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ state: 'reported', error: { name: 'MERCHANT_NOT_TRUSTED' } });
    const [record] = operator.transactions.get(tx!.transactionId!)!.records;
    // The empty list rule: one constant, the one the merchant (who may never have seen our salt) uses too.
    expect(record!.body).toMatchObject({ count: 0, total: 'EUR:0.00', purchasesHash: await purchasesHash(EMPTY_LIST_SALT, []) });
    expect(record!.body.purchasesHash).toBe(await recordPurchasesHash(tx!.listSalt, []));
  });
});

describe('customer agent: stopping at any await', () => {
  let x: Awaited<ReturnType<typeof registered>>;
  beforeEach(async () => {
    x = await registered();
  });

  const acceptIds = (http: ScriptedHttp) => (http.posts('/accept') as { accept: Signed<'wallet.accept'> }[]).map((b) => b.accept.body.acceptId);

  it('an accept lost on the way is resent: the very same accept (same acceptId)', async () => {
    const { agent, http, merchant } = x;
    http.faults.push({ method: 'POST', path: '/accept', when: 'before', times: 1 });
    const { receipt } = await agent.buy(article1);
    const ids = acceptIds(http);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    expect(receipt.accept.body.acceptId).toBe(ids[0]);
    expect(merchant.sessions.get(receipt.handle)).toMatchObject({ count: 1, cumulative: 'EUR:0.05' });
  });

  it('an accept whose answer was lost is resent and counted once by the merchant', async () => {
    const { agent, http, merchant } = x;
    http.faults.push({ method: 'POST', path: '/accept', when: 'after', times: 1 });
    const { receipt } = await agent.buy(article1);
    expect(new Set(acceptIds(http)).size).toBe(1);
    expect(acceptIds(http)).toHaveLength(2);
    expect(merchant.sessions.get(receipt.handle)).toMatchObject({ count: 1, cumulative: 'EUR:0.05' });
  });

  it('a wallet stopped between storing the accept and getting it through resends the same accept after restart', async () => {
    const { agent, http, merchant, store, newAgent } = x;
    // Every try of the first agent is lost (it asks DELIVERY_ATTEMPTS times in all).
    http.faults.push({ method: 'POST', path: '/accept', when: 'before', times: 3 });
    expect(await errorName(agent.buy(article1))).toBe('UNAVAILABLE');
    const [tx] = await store.listTransactions();
    const stored = tx!.pending!.accept!;
    expect(merchant.sessions.get(tx!.handle!)!.count).toBe(0);
    // The accept was signed and sent: the receipt is there already, waiting for the key.
    expect(await agent.receipts()).toMatchObject([{ status: 'awaiting-key', accept: stored }]);

    const restarted = newAgent();
    expect(await restarted.recover()).toMatchObject([{ transactionId: tx!.transactionId, state: 'open' }]);
    const ids = acceptIds(http);
    expect(ids).toEqual([stored.body.acceptId, stored.body.acceptId, stored.body.acceptId, stored.body.acceptId]);
    expect(merchant.sessions.get(tx!.handle!)).toMatchObject({ count: 1, cumulative: 'EUR:0.05' });
    const [receipt] = await restarted.receipts();
    expect(receipt!.accept).toEqual(stored);
    expect(receipt!.status).toBe('delivered');
    expect(await restarted.transaction(tx!.transactionId!)).toMatchObject({ count: 1, pending: false });
  });

  it('clicking buy again after a restart delivers the purchase in flight instead of paying twice', async () => {
    const { agent, http, merchant, newAgent } = x;
    http.faults.push({ method: 'POST', path: '/accept', when: 'after', times: 3 });
    expect(await errorName(agent.buy(article1))).toBe('UNAVAILABLE');
    const again = await newAgent().buy(article1);
    expect(utf8.decode(again.content)).toBe(PRODUCTS['article-1']!.content);
    expect(http.posts('/order')).toHaveLength(1);
    expect(new Set(acceptIds(http)).size).toBe(1);
    expect(merchant.sessions.get(again.receipt.handle)).toMatchObject({ count: 1, cumulative: 'EUR:0.05' });
  });

  it('an order whose answer was lost is sent again with the same number', async () => {
    const { agent, http } = x;
    http.faults.push({ method: 'POST', path: '/order', when: 'after', times: 1 });
    const { receipt } = await agent.buy(article1);
    const orders = http.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders).toHaveLength(2);
    expect(orders[1]).toEqual(orders[0]);
    expect(receipt.n).toBe(1);
  });

  it('an initiation whose answer was lost is resent unchanged after restart: one deposit, not two', async () => {
    const { agent, http, operator, store, newAgent } = x;
    http.faults.push({ method: 'POST', path: '/v1/initiate', when: 'after', times: 2 });
    expect(await errorName(agent.buy(article1))).toBe('UNAVAILABLE');
    const [tx] = await store.listTransactions();
    expect(tx!.state).toBe('initiating');
    expect(operator.held).toBe(2000n);

    const { receipt } = await newAgent().buy(article1);
    const initiations = http.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    expect(initiations).toHaveLength(3);
    expect(new Set(initiations.map((m) => m.body.msgId)).size).toBe(1);
    expect(operator.held).toBe(2000n);
    expect(operator.transactions.size).toBe(1);
    expect(receipt).toMatchObject({ n: 1 });
  });
});

describe('fetchHttp', () => {
  const respond = (status: number, body: string | null) => async () => new Response(body, { status, headers: { 'content-type': 'application/json' } });

  it('sends JSON with the given headers and returns the JSON answer', async () => {
    const seen: { url: string; init?: RequestInit }[] = [];
    const http = fetchHttp(async (url, init) => {
      seen.push({ url, init });
      return new Response(JSON.stringify({ ok: true }), { status: 200 });
    });
    expect(await http.post('https://bank.example/v1/x', { a: 1 }, { authorization: 'Bearer t' })).toEqual({ ok: true });
    expect(seen[0]!.init).toMatchObject({ method: 'POST', body: '{"a":1}' });
    expect(seen[0]!.init!.headers).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer t' });
    expect(await fetchHttp(respond(204, null)).get('https://bank.example/v1/y')).toBeUndefined();
  });

  it('turns error bodies into ObolErrors, lost connections into UNAVAILABLE', async () => {
    const body = JSON.stringify({ error: { code: 3001, name: 'DEPOSIT_EXHAUSTED', message: 'spent' } });
    expect(await errorName(fetchHttp(respond(409, body)).post('https://shop.example/order', {}))).toBe('DEPOSIT_EXHAUSTED');
    expect(await errorName(fetchHttp(respond(503, 'busy')).get('https://shop.example/merchant'))).toBe('UNAVAILABLE');
    expect(await errorName(fetchHttp(respond(401, '')).get('https://bank.example/v1/balance'))).toBe('UNAUTHORIZED');
    expect(await errorName(fetchHttp(respond(500, 'oops')).get('https://bank.example/v1/balance'))).toBe('INTERNAL');
    expect(await errorName(fetchHttp(respond(200, 'not json')).get('https://bank.example/v1/balance'))).toBe('MALFORMED');
    const refused = fetchHttp(async () => {
      throw new TypeError('fetch failed');
    });
    expect(await errorName(refused.get('https://bank.example/v1/operator'))).toBe('UNAVAILABLE');
  });
});
