import { OperatorPaths } from '@obol/protocol/api';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { MERCHANT_INFO_REUSE_MS } from '@obol/protocol/customerAgent/account';
import { decryptProduct, descriptionHash, hashB64, newProductKey, unwrapProductKey, wrapProductKey } from '@obol/protocol/delivery';
import { ObolError } from '@obol/protocol/errors';
import { EvidenceBundle } from '@obol/protocol/evidence';
import { type ExchangeTable, signExchangeTable } from '@obol/protocol/exchangeTable';
import type { Http } from '@obol/protocol/http';
import { keyIdOf, keySigner, type Signer } from '@obol/protocol/keys';
import { type MessageBody, checkSchema } from '@obol/protocol/messages';
import { type CertIssuer, certToBase64, createRootCa, describeCert, generateKeyPair, issueCustomerCert, issueOperatorCert, parseCert } from '@obol/protocol/pki';
import { EMPTY_LIST_SALT, purchaseCommitment, purchasesHash, recordPurchasesHash } from '@obol/protocol/purchaseList';
import { type Signed, signMessage } from '@obol/protocol/signed';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { fromBase64Url, randomId, utf8 } from '@obol/protocol/webcrypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memoryCatalogue } from '../src/merchant/catalogue.ts';
import { type FaultyHttp, faultyHttp } from './support/faultyHttp.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * The customer agent (the wallet core) against the real peers: the shopper's operator (op-sek,
 * SEK), the merchant's operator (op-eur, EUR) and a shop with the real merchant module, all real
 * servers on 127.0.0.1 over PGlite, on one clock the tests move. Every fault a test needs is made
 * on the wire between the wallet and those servers (`faultyHttp`): a request or an answer lost, an
 * answer cut, swapped or re-signed by someone else. No peer is played by the test.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The operators' exchange tables live one hour (the default of `tableLifetimeSec`). */
const TABLE_LIFE = HOUR;
/** The operators' logon sessions live twelve hours. */
const LOGON_LIFE = 12 * HOUR;

const PRODUCTS: Record<string, { price: string; content: string }> = {
  'article-1': { price: 'EUR:0.05', content: 'The first article: micropayments at last.' },
  'article-2': { price: 'EUR:0.03', content: 'The second article.' },
};

let t: TwoOperators;

beforeAll(async () => {
  t = await twoOperators('PGlite', {
    catalogue: memoryCatalogue(
      Object.entries(PRODUCTS).map(([productId, p]) => ({
        productId,
        title: `Title of ${productId}`,
        description: `About ${productId}`,
        price: p.price,
        contentType: 'text/plain',
        content: utf8.encode(p.content),
      })),
    ),
  });
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const bank = () => t.sek.url;
const rootB64 = () => certToBase64(t.world.root.cert);
const article1 = () => ({ merchantUrl: t.shop.moduleUrl, productId: 'article-1', price: 'EUR:0.05', origin: t.shop.url });
const article2 = () => ({ merchantUrl: t.shop.moduleUrl, productId: 'article-2', price: 'EUR:0.03', origin: t.shop.url });

/** A wallet on its own store, talking to the real peers through a faulty network. */
function wallet(opts: { minimum?: string; trustedRoots?: string[] } = {}) {
  const store = new MemoryWalletStore();
  const net = faultyHttp();
  const newAgent = (http: Http = net.http, trustedRoots = opts.trustedRoots ?? [rootB64()]) =>
    new CustomerAgent({ store, http, clock: t.clock, depositPolicy: { minimum: opts.minimum ?? 'SEK:20.00', timeoutSec: 900 }, trustedRoots });
  return { store, net, agent: newAgent(), newAgent };
}

async function fund(customerId: string, amount: string): Promise<void> {
  await t.admin(t.sek, OperatorPaths.adminFund, { customerId, amount });
}

/** A registered wallet with SEK 100.00 at its operator. */
async function registered(opts: { minimum?: string } = {}) {
  const w = wallet(opts);
  const { customerId } = await w.agent.register(bank());
  await fund(customerId, 'SEK:100.00');
  return { ...w, customerId };
}

/** What op-sek has reserved for this wallet's customer (its deposits held). */
async function held(agent: CustomerAgent): Promise<string> {
  return (await agent.balance()).held;
}

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof ObolError) return e.name;
    throw e;
  }
}

/** The shop's session of a transaction: the shop knows it by its trade handle only. */
const merchantSession = (handle: string | undefined) => t.shop.agent.session(handle!);

/** The record the shop signed for its acquirer when it closed a session. */
async function merchantRecord(handle: string): Promise<Signed<'merchant.record'>> {
  const [row] = await t.shopDb.query<{ record: Signed<'merchant.record'> }>('SELECT record FROM merchant_records WHERE transaction_id = $1', [handle]);
  return row!.record;
}

/** op-sek's issuing (CA) key as a message signer: what a careless or compromised operator would sign with. */
async function sekIssuingSigner(): Promise<Signer> {
  const identity = t.sek.ctx.identity;
  return keySigner(await keyIdOf(describeCert(identity.cert).publicKeySpki), identity.issuer.privateKey);
}

// ── the tests ───────────────────────────────────────────────────────────────────────────────

describe('customer agent: account', () => {
  it('registers (certificate chained to the root and holding its key), logs on by itself and reads the balance', async () => {
    const { agent, store, net } = wallet();
    expect(await agent.account()).toBeUndefined();
    expect(await errorName(agent.balance())).toBe('NO_WALLET_ACCOUNT');

    const account = await agent.register(`${bank()}/`);
    expect(account).toMatchObject({ operatorUrl: bank(), operatorId: 'op-sek', currency: 'SEK', customerId: expect.any(String) });
    const stored = (await store.getAccount())!;
    expect(stored.keys.privateKey.extractable).toBe(false);
    expect(describeCert(parseCert(stored.customerCert)).publicKeySpki).toBe(stored.publicKey);
    expect(await errorName(agent.register(bank()))).toBe('CONFLICT');
    await fund(account.customerId, 'SEK:100.00');

    const balance = await agent.balance();
    expect(balance).toMatchObject({ customerId: account.customerId, balance: 'SEK:100.00', available: 'SEK:100.00' });
    expect(net.posts('/v1/login')).toHaveLength(1);
    expect(await agent.demoTopUp('SEK:50.00')).toMatchObject({ balance: 'SEK:150.00' });
    expect(net.posts('/v1/login')).toHaveLength(1); // the login is reused while it lasts
    const balances = (await t.admin(t.sek, OperatorPaths.adminBalances)) as Array<{ account: string; balance: string }>;
    expect(balances.find((b) => b.account === `customer:${account.customerId}`)?.balance).toBe('SEK:150.00');
  });

  it('logs on again when the login has expired by the clock, or when the operator refuses the token once', async () => {
    const { agent, net } = await registered();
    await agent.balance();
    t.clock.advance(LOGON_LIFE + MINUTE);
    await agent.balance();
    expect(net.posts('/v1/login')).toHaveLength(2);
    // The token garbled on the way: the operator itself refuses it (UNAUTHORIZED), once.
    net.faults.push({ path: '/v1/balance', times: 1, headers: (h) => ({ ...h, authorization: `Bearer ${randomId(32)}` }) });
    expect(await agent.balance()).toMatchObject({ balance: 'SEK:100.00' });
    expect(net.posts('/v1/login')).toHaveLength(3);
    expect(net.faults[0]!.times).toBe(0);
  });

  /** A root like ours, same name, other key: what an impostor would make. */
  async function foreignRoot() {
    const keys = await generateKeyPair();
    const now = t.clock.now();
    const root = await createRootCa({ name: 'Obol Interbank Root', keys, notBefore: now - DAY, notAfter: now + 3650 * DAY });
    return { root, issuer: { cert: root, privateKey: keys.privateKey } as CertIssuer };
  }
  /** The operator's registration answer, changed on the way. */
  const registrationChanged = (change: (answer: Record<string, unknown>) => Promise<Record<string, unknown>>) =>
    faultyHttp([{ path: '/v1/customers', method: 'POST', times: 1, answer: change }]).http;

  it('refuses an operator whose chain ends at another root, with OPERATOR_NOT_TRUSTED, storing nothing', async () => {
    const other = await foreignRoot();
    // The operator is honest, but under a root this wallet was not built with.
    const { agent, store } = wallet({ trustedRoots: [certToBase64(other.root)] });
    const e = await agent.register(bank()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ObolError);
    expect((e as ObolError).name).toBe('OPERATOR_NOT_TRUSTED');
    expect((e as ObolError).message).toMatch(/op-sek.*not trusted/);
    expect(await store.getAccount()).toBeUndefined();
    expect(await store.getLogin()).toBeUndefined();
  });

  it('never takes the root from the operator’s answer: a self-made root and operator certificate are refused', async () => {
    const { store, newAgent } = wallet();
    const impostor = await foreignRoot();
    const now = t.clock.now();
    const opKeys = await generateKeyPair();
    const fakeOp = await issueOperatorCert({ operatorId: 'op-sek', publicKey: opKeys.publicKey, issuer: impostor.issuer, notBefore: now - DAY, notAfter: now + DAY });
    const lying = registrationChanged(async (answer) => {
      const customerKey = describeCert(parseCert(answer.customerCert as string)).publicKeySpki;
      const customerCert = await issueCustomerCert({ customerId: answer.customerId as string, publicKey: customerKey, issuer: { cert: fakeOp, privateKey: opKeys.privateKey }, notBefore: now - DAY, notAfter: now + DAY });
      return { ...answer, rootCert: certToBase64(impostor.root), operatorCert: certToBase64(fakeOp), customerCert: certToBase64(customerCert) };
    });
    expect(await errorName(newAgent(lying).register(bank()))).toBe('OPERATOR_NOT_TRUSTED');
    expect(await store.getAccount()).toBeUndefined();
  });

  it('stores the trusted root it checked, whatever root the answer names; several roots may be trusted', async () => {
    const { store, newAgent } = wallet();
    const other = await foreignRoot();
    const misnaming = registrationChanged(async (answer) => ({ ...answer, rootCert: certToBase64(other.root) }));
    await newAgent(misnaming, [certToBase64(other.root), rootB64()]).register(bank());
    expect((await store.getAccount())?.rootCert).toBe(rootB64());
  });

  it('refuses to use an account stored under a root it no longer trusts, and with no root trusts no operator', async () => {
    const { store, net, agent, newAgent } = wallet();
    await agent.register(bank());
    const other = await foreignRoot();
    expect(await errorName(newAgent(net.http, [certToBase64(other.root)]).balance())).toBe('OPERATOR_NOT_TRUSTED');
    const none = new CustomerAgent({ store: new MemoryWalletStore(), http: net.http, clock: t.clock, trustedRoots: [] });
    const e = await none.register(bank()).catch((x: unknown) => x);
    expect([(e as ObolError).name, (e as ObolError).message]).toEqual(['OPERATOR_NOT_TRUSTED', expect.stringMatching(/no trusted interbank root/)]);
    expect(() => new CustomerAgent({ store, http: net.http, clock: t.clock, trustedRoots: ['AAAA'] })).toThrow(ObolError);
  });
});

describe('customer agent: exchange table', () => {
  it('caches the verified table, refreshes it after expiry, and says "unavailable" when it cannot', async () => {
    const { agent, net, store } = await registered();
    const first = await agent.exchangeTable();
    expect(first.status).toBe('refreshed');
    expect((await agent.exchangeTable()).status).toBe('valid');
    expect(await agent.quote('EUR:0.05')).toBe('SEK:0.57'); // 0.05 / 0.0874 = 0.572…, half-even
    expect(await agent.quote('SEK:3.00')).toBe('SEK:3.00');
    expect(net.gets('/v1/exchange-table')).toBe(1);
    expect((await store.getTable())?.signed.type).toBe('operator.exchangeTable');

    t.clock.advance(TABLE_LIFE + MINUTE);
    const second = await agent.exchangeTable();
    expect(second.status).toBe('refreshed');
    expect(second.table?.issuedAt).toBe(t.clock.now());
    expect(net.gets('/v1/exchange-table')).toBe(2);

    // The table service cannot be reached for the next while.
    net.faults.push({ path: '/v1/exchange-table', times: 99, lose: 'request' });
    t.clock.advance(TABLE_LIFE + MINUTE);
    const stale = await agent.exchangeTable();
    expect(stale).toMatchObject({ status: 'unavailable', table: { issuedAt: second.table?.issuedAt }, error: { name: 'UNAVAILABLE' } });
    expect(await errorName(agent.quote('EUR:0.05'))).toBe('EXCHANGE_TABLE_EXPIRED');
  });

  it('never uses a table whose signature does not verify', async () => {
    const { agent, net } = await registered();
    const table = await t.sek.app.inject({ method: 'GET', url: OperatorPaths.exchangeTable });
    expect(table.json()).toMatchObject({ body: { rates: { EUR: '0.0874' } } });
    net.faults.push({ path: '/v1/exchange-table', times: 99, answer: (b) => ({ ...b, body: { ...(b.body as object), rates: { EUR: '0.1' } } }) });
    const result = await agent.exchangeTable();
    expect(result).toMatchObject({ status: 'unavailable', error: { name: 'BAD_SIGNATURE' } });
    expect(result.table).toBeUndefined();
    expect(await errorName(agent.quote('EUR:0.05'))).toBe('EXCHANGE_TABLE_MISSING');
  });

  it('verifies the operator’s messages with its signing key only: a table or an ack signed with the issuing (CA) key is refused', async () => {
    const { agent, net, store } = await registered();
    const ca = await sekIssuingSigner();
    // The operator's own table, signed again on the way with its CA key.
    const tableByCa = { path: '/v1/exchange-table', times: 1, answer: (b: Record<string, unknown>) => signExchangeTable(b.body as ExchangeTable, ca) };
    net.faults.push(tableByCa);
    const result = await agent.exchangeTable();
    expect(result).toMatchObject({ status: 'unavailable', error: { name: 'UNKNOWN_KEY' } });
    expect(await store.getTable()).toBeUndefined();
    expect((await agent.exchangeTable()).status).toBe('refreshed');
    // The operator's own ack, signed again on the way with its CA key.
    net.faults.push({ path: '/v1/initiate', times: 1, answer: (b) => signMessage('am.ack', b.body as MessageBody<'am.ack'>, ca) });
    expect(await errorName(agent.buy(article1()))).toBe('UNKNOWN_KEY');
  });

  it('an account stored without the signing certificate fetches it from the operator and checks it', async () => {
    const { store, net, newAgent } = await registered();
    const { operatorSigningCert: _, ...old } = (await store.getAccount())!;
    await store.putAccount(old);
    const asked = net.gets('/v1/operator');
    expect((await newAgent().exchangeTable()).status).toBe('refreshed');
    expect(net.gets('/v1/operator')).toBe(asked + 1);
    expect((await store.getAccount())?.operatorSigningCert).toBe(t.sek.ctx.identity.signingCertB64);
  });
});

describe('customer agent: buying', () => {
  let x: Awaited<ReturnType<typeof registered>>;
  beforeEach(async () => {
    x = await registered();
  });

  it('opens a deposit, then orders and accepts with the session key; the merchant verifies both', async () => {
    const { agent, net, store } = x;
    const bought = await agent.buy(article1());
    expect(utf8.decode(bought.content)).toBe(PRODUCTS['article-1']!.content);
    expect(bought.contentType).toBe('text/plain');
    expect(bought.receipt).toMatchObject({ n: 1, productId: 'article-1', price: 'EUR:0.05', merchantId: 'news.example', origin: t.shop.url });

    // The initiation (FIG 2 step 2): long-term key, deposit = the policy minimum in SEK.
    const [initiate] = net.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    const login = (await store.getLogin())!;
    expect(initiate!.body).toMatchObject({ sessionId: login.sessionId, merchantId: 'news.example', merchantOperatorId: 'op-eur', firstPrice: 'EUR:0.05', deposit: 'SEK:20.00', timeoutSec: 900 });
    expect(initiate!.kid).toBe((await store.getAccount())!.kid);
    expect(await held(agent)).toBe('SEK:20.00');

    const tx = (await store.getTransaction(bought.receipt.transactionId))!;
    expect(tx).toMatchObject({ state: 'open', depositCustomer: 'SEK:20.00', depositMerchant: 'EUR:1.74', cumulative: 'EUR:0.05', nextN: 2 });
    expect(tx.sessionKeys.privateKey.extractable).toBe(false);
    const sessionKid = await keyIdOf(describeCert(parseCert(tx.tempCert!)).publicKeySpki);

    const order = (net.posts('/order') as { order: Signed<'wallet.order'> }[])[0]!.order;
    expect(order.kid).toBe(sessionKid);
    // Toward the merchant the transaction is its trade handle, never the TransactionIdentity.
    expect(tx.handle).toMatch(/^t-[A-Za-z0-9_-]{22}$/);
    expect(order.body).toMatchObject({ transactionId: tx.handle, n: 1, productId: 'article-1', price: 'EUR:0.05', origin: t.shop.url, listSalt: tx.listSalt });
    const accept = (net.posts('/accept') as { accept: Signed<'wallet.accept'> }[])[0]!.accept;
    expect(accept.kid).toBe(sessionKid);
    // The accept is the merchant's proof toward its operator: the cumulative, and the purchase only
    // as a salted commitment — no product id, price or catalogue hash in clear.
    expect(Object.keys(accept.body).sort()).toEqual(['acceptId', 'commitment', 'cumulative', 'n', 'time', 'transactionId']);
    expect(accept.body).toMatchObject({ n: 1, cumulative: 'EUR:0.05' });
    // FIG 4: it commits to the ciphertext received (the merchant-signed hash) and the description chosen.
    const delivery = (net.answers('/order') as Array<{ ciphertext: string; product: Signed<'merchant.product'>; description: Signed<'merchant.description'> }>)[0]!;
    const listed = (await t.shop.agent.products()).find((p) => p.productId === 'article-1')!;
    expect(delivery.description).toEqual(listed.signedDescription);
    const opening = {
      n: 1,
      productId: 'article-1',
      price: 'EUR:0.05',
      receivedHash: await hashB64(fromBase64Url(delivery.ciphertext)),
      descriptionHash: await descriptionHash(delivery.description.body),
    };
    expect(opening.receivedHash).toBe(delivery.product.body.ciphertextHash);
    expect(accept.body.commitment).toBe(await purchaseCommitment(tx.listSalt, opening));
    expect(bought.receipt.opening).toEqual({ listSalt: tx.listSalt, ...opening });
    expect(bought.receipt.accept).toEqual(accept);
    // The receipt holds what a dispute needs, the key included; the wallet opens it again on demand.
    expect(bought.receipt).toMatchObject({ status: 'delivered', receiptId: accept.body.acceptId, title: 'Title of article-1', description: delivery.description, product: delivery.product });
    expect(bought.receipt.key?.body).toMatchObject({ acceptId: accept.body.acceptId, n: 1 });
    expect(utf8.decode((await agent.openReceipt(bought.receipt.receiptId)).content)).toBe(PRODUCTS['article-1']!.content);

    // A second purchase stays in the same transaction, no operator involved.
    const second = await agent.buy(article2());
    expect(second.receipt).toMatchObject({ transactionId: tx.transactionId, n: 2 });
    expect(net.posts('/v1/initiate')).toHaveLength(1);
    expect(await merchantSession(tx.handle)).toMatchObject({ state: 'open', count: 2, spent: 'EUR:0.08' });
    expect(await agent.receipts(tx.transactionId)).toHaveLength(2);
    expect(await agent.listTransactions()).toMatchObject([{ state: 'open', count: 2, cumulative: 'EUR:0.08', remaining: 'EUR:1.66' }]);
  });

  it('ends a transaction: stop to the merchant, then a record whose hash matches the merchant’s list', async () => {
    const { agent, net } = x;
    const { receipt } = await agent.buy(article1());
    await agent.buy(article2());
    const ended = await agent.endTransaction(receipt.transactionId);
    expect(ended).toMatchObject({ closeReason: 'wallet', count: 2 });
    // Reported; the real operators may have cleared it already by the time the wallet looks.
    expect(['reported', 'cleared']).toContain(ended.state);
    expect((net.posts('/stop') as { stop: Signed<'wallet.stop'> }[]).map((s) => s.stop.body.reason)).toEqual(['wallet']);
    expect(await merchantSession(receipt.handle)).toMatchObject({ closeReason: 'wallet', count: 2, spent: 'EUR:0.08' });
    const [record] = net.posts('/v1/records') as Signed<'wallet.record'>[];
    expect(record!.body).toMatchObject({ transactionId: receipt.handle, count: 2, total: 'EUR:0.08' });
    const fromMerchant = await merchantRecord(receipt.handle);
    expect(fromMerchant.body).toMatchObject({ count: 2, total: 'EUR:0.08' });
    expect(record!.body.purchasesHash).toBe(fromMerchant.body.purchasesHash);

    await t.shop.agent.settled(); // the shop's record reaches its acquirer; the operators clear
    const status = await agent.transactionStatus(receipt.transactionId);
    expect(status.state).toBe('cleared');
    expect(await agent.transaction(receipt.transactionId)).toMatchObject({ state: 'cleared', clearing: { outcome: 'agreed', chargedMerchant: 'EUR:0.08' } });
  });

  /** A delivery cut short: the last bytes of the ciphertext never arrived. */
  const cut = (b: Record<string, unknown>) => ({ ...b, ciphertext: String(b.ciphertext).slice(0, -5) });

  it('a delivery cut short is asked for again: one cut is recovered, one accept', async () => {
    const { agent, net } = x;
    net.faults.push({ path: '/order', times: 1, answer: cut });
    const { receipt, content } = await agent.buy(article1());
    expect(utf8.decode(content)).toBe(PRODUCTS['article-1']!.content);
    const orders = net.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders).toHaveLength(2);
    expect(orders[1]).toEqual(orders[0]); // the same order, asked again
    expect(net.posts('/accept')).toHaveLength(1);
    expect(receipt.status).toBe('delivered');
  });

  it('a delivery that keeps arriving cut is given up: no accept is sent, nothing is paid', async () => {
    const { agent, net, store } = x;
    const cutForGood = { path: '/order', times: 99, answer: cut };
    net.faults.push(cutForGood);
    const refused = agent.buy(article1());
    await expect(refused).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    await expect(refused).rejects.toThrow(/nothing was paid/);
    expect(net.posts('/order')).toHaveLength(3);
    expect(net.posts('/accept')).toHaveLength(0);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ state: 'open', lines: [], cumulative: 'EUR:0.00', nextN: 1 });
    expect(tx!.pending).toBeUndefined();
    expect(await agent.receipts()).toHaveLength(0);
    expect(await merchantSession(tx!.handle)).toMatchObject({ count: 0, spent: 'EUR:0.00' });

    cutForGood.times = 0;
    const { receipt } = await agent.buy(article1());
    expect(receipt).toMatchObject({ transactionId: tx!.transactionId, n: 1 });
  });

  it('a wrong product (another product’s description) is refused before any accept: PRODUCT_MISMATCH', async () => {
    const { agent, net, store } = x;
    const other = (await t.shop.agent.products()).find((p) => p.productId === 'article-2')!.signedDescription;
    net.faults.push({ path: '/order', times: 99, answer: (b) => ({ ...b, description: other }) });
    expect(await errorName(agent.buy(article1()))).toBe('PRODUCT_MISMATCH');
    expect(net.posts('/order')).toHaveLength(1); // not asked again: it is not a broken transfer
    expect(net.posts('/accept')).toHaveLength(0);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ lines: [], cumulative: 'EUR:0.00' });
    expect(tx!.pending).toBeUndefined();
  });

  it('a product whose signature is not the merchant’s is refused before any accept: BAD_SIGNATURE', async () => {
    const { agent, net } = x;
    const other = (await t.shop.agent.products()).find((p) => p.productId === 'article-2')!.signedDescription;
    net.faults.push({ path: '/order', times: 99, answer: (b) => ({ ...b, product: { ...(b.product as object), sig: other.sig } }) });
    expect(await errorName(agent.buy(article1()))).toBe('BAD_SIGNATURE');
    expect(net.posts('/accept')).toHaveLength(0);
    expect(await agent.receipts()).toHaveLength(0);
  });

  it('a price the merchant’s signed description does not name is refused before any deposit', async () => {
    const { agent, net } = x;
    expect(await errorName(agent.buy({ ...article1(), price: 'EUR:0.04' }))).toBe('PRODUCT_MISMATCH');
    expect(net.posts('/v1/initiate')).toHaveLength(0);
    expect(await held(agent)).toBe('SEK:0.00');
    expect(await errorName(agent.buy({ ...article1(), productId: 'no-such-thing' }))).toBe('UNKNOWN_PRODUCT');
  });

  it('a key that does not open the product: charged (the merchant holds the accept), the receipt is disputable and its evidence exportable', async () => {
    const { agent, net, store } = x;
    // The shop's answer to the accept, its key swapped on the way for one wrapped with another K1
    // and signed with the shop's own key: what a dishonest merchant would send.
    net.faults.push({
      path: '/accept',
      times: 1,
      answer: async (b) => {
        const key = b.key as Signed<'merchant.key'>;
        const wrappedK2 = await wrapProductKey(newProductKey(), randomId(32));
        return { ...b, key: await signMessage('merchant.key', { ...key.body, wrappedK2 }, t.shop.key.signer) };
      },
    });
    const failed = agent.buy(article1());
    await expect(failed).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    await expect(failed).rejects.toThrow(/charged/);
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ lines: [{ n: 1, productId: 'article-1' }], cumulative: 'EUR:0.05', nextN: 2 });
    expect(tx!.pending).toBeUndefined();
    expect(await merchantSession(tx!.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
    const [receipt] = await agent.receipts();
    expect(receipt).toMatchObject({ status: 'disputable', problem: { name: 'PRODUCT_MISMATCH' } });
    expect(receipt!.key).toBeDefined();
    const evidence = await agent.exportEvidence(receipt!.receiptId);
    checkSchema(EvidenceBundle, JSON.parse(JSON.stringify(evidence)));
    expect(evidence).toMatchObject({ presentedBy: 'shopper', transactionId: tx!.handle, n: 1, merchantId: 'news.example', merchantOperatorId: 'op-eur' });
    expect(evidence.key).toEqual(receipt!.key);
    expect(evidence.operatorCerts).toEqual([t.sek.ctx.identity.certB64]);
    // The wallet's own K1 does not open the merchant's key: what the arbiter will find too.
    await expect(unwrapProductKey((evidence.key as Signed<'merchant.key'>).body.wrappedK2, tx!.k1)).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    expect(await agent.exportEvidence({ transactionId: tx!.transactionId!, n: 1 })).toMatchObject({ accept: receipt!.accept });
    expect(await errorName(agent.exportEvidence({ transactionId: tx!.transactionId!, n: 7 }))).toBe('UNKNOWN_TRANSACTION');
    expect(await errorName(agent.exportEvidence('no-such-receipt'))).toBe('UNKNOWN_TRANSACTION');
    // The content itself is still what the merchant encrypted: only the key was wrong. The key the
    // shop really sent opens it with the wallet's K1.
    const realKey = (net.answers('/accept')[0] as { key: Signed<'merchant.key'> }).key;
    const k2 = await unwrapProductKey(realKey.body.wrappedK2, tx!.k1);
    expect(utf8.decode(await decryptProduct(fromBase64Url(evidence.ciphertext), (evidence.product as Signed<'merchant.product'>).body.iv, k2, 'article-1'))).toBe(PRODUCTS['article-1']!.content);
  });

  it('DEPOSIT_EXHAUSTED: the old transaction is closed and reported, a new one opened, ordering again with n = 1', async () => {
    const { agent, net, store } = x;
    const first = await agent.buy(article1());
    // The merchant's refusal, as it comes when its view of the deposit is spent (made on the way:
    // an honest shop and wallet agree on what is left, so the real shop never says it here).
    net.faults.push({ path: '/order', times: 1, refuse: 'DEPOSIT_EXHAUSTED' });
    const second = await agent.buy(article2());
    expect(second.receipt.transactionId).not.toBe(first.receipt.transactionId);
    expect(second.receipt.n).toBe(1);
    const orders = net.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders.at(-1)!.order.body).toMatchObject({ transactionId: second.receipt.handle, n: 1, productId: 'article-2' });
    expect(net.posts('/v1/initiate')).toHaveLength(2);
    expect(await store.getTransaction(first.receipt.transactionId)).toMatchObject({ state: 'reported', closeReason: 'deposit-used' });
    const [record] = net.posts('/v1/records') as Signed<'wallet.record'>[];
    expect(record!.body).toMatchObject({ transactionId: first.receipt.handle, count: 1, total: 'EUR:0.05' });
    expect(await merchantSession(second.receipt.handle)).toMatchObject({ count: 1, spent: 'EUR:0.03' });
  });

  it('a deposit too small for the next price is ended by the wallet itself and a new one opened', async () => {
    const small = await registered({ minimum: 'SEK:1.00' }); // 1 SEK → EUR:0.08
    const first = await small.agent.buy(article1());
    expect((await small.agent.transaction(first.receipt.transactionId))?.depositMerchant).toBe('EUR:0.08');
    const second = await small.agent.buy(article1());
    expect(second.receipt).toMatchObject({ n: 1 });
    expect(second.receipt.transactionId).not.toBe(first.receipt.transactionId);
    expect((small.net.posts('/stop') as { stop: Signed<'wallet.stop'> }[]).map((s) => s.stop.body.reason)).toEqual(['deposit-used']);
    // The shop closes a session the wallet stops as closed by the wallet, whatever the wallet's reason.
    expect(await merchantSession(first.receipt.handle)).toMatchObject({ closeReason: 'wallet', count: 1 });
    expect(['reported', 'cleared']).toContain((await small.agent.transaction(first.receipt.transactionId))?.state);
  });

  it('an initiation refused for a stale logon is signed again under a new logon (new msgId): one deposit', async () => {
    const { agent, net, store } = x;
    // The logon's end, as the wallet hears it, is a day later than the operator's: the wallet
    // goes on using the logon after the operator has ended it.
    net.faults.push({ path: '/v1/login', times: 1, answer: (b) => ({ ...b, expiresAt: (b.expiresAt as number) + DAY }) });
    await agent.balance(); // logged on
    const stale = (await store.getLogin())!.sessionId;
    t.clock.advance(LOGON_LIFE + MINUTE);
    const { receipt } = await agent.buy(article1());
    const initiations = net.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    const fresh = (await store.getLogin())!.sessionId;
    expect(fresh).not.toBe(stale);
    expect(initiations.map((m) => m.body.sessionId)).toEqual([stale, fresh]);
    expect(initiations[0]!.body.msgId).not.toBe(initiations[1]!.body.msgId);
    expect(await held(agent)).toBe('SEK:20.00');
    expect(receipt.transactionId.startsWith(`${fresh}.`)).toBe(true);
  });

  it('refuses a merchant whose certificate does not name the page origin, and reports the empty transaction', async () => {
    const { agent, net, store } = x;
    const evil = 'https://evil.example';
    expect(await errorName(agent.buy({ ...article1(), origin: evil }))).toBe('MERCHANT_NOT_TRUSTED');
    expect(await held(agent)).toBe('SEK:0.00'); // refused before any deposit

    // The merchant's information claims the origin on the way; its certificate does not.
    net.faults.push({ path: '/obol/merchant', method: 'GET', times: 99, answer: (b) => ({ ...b, origins: [...(b.origins as string[]), evil] }) });
    t.clock.advance(MERCHANT_INFO_REUSE_MS); // the wallet asks the merchant again (it keeps the answer this long)
    expect(await errorName(agent.buy({ ...article1(), origin: evil }))).toBe('MERCHANT_NOT_TRUSTED');
    const [tx] = await store.listTransactions();
    expect(tx).toMatchObject({ state: 'reported', error: { name: 'MERCHANT_NOT_TRUSTED' } });
    const [record] = net.posts('/v1/records') as Signed<'wallet.record'>[];
    expect(record!.body).toMatchObject({ transactionId: tx!.handle, count: 0, total: 'EUR:0.00' });
    // The empty list rule: one constant, the one the merchant (who may never have seen our salt) uses too.
    expect(record!.body.purchasesHash).toBe(await purchasesHash(EMPTY_LIST_SALT, []));
    expect(record!.body.purchasesHash).toBe(await recordPurchasesHash(tx!.listSalt, []));
  });
});

describe('customer agent: stopping at any await', () => {
  let x: Awaited<ReturnType<typeof registered>>;
  beforeEach(async () => {
    x = await registered();
  });

  const acceptIds = (net: FaultyHttp) => (net.posts('/accept') as { accept: Signed<'wallet.accept'> }[]).map((b) => b.accept.body.acceptId);

  it('an accept lost on the way is resent: the very same accept (same acceptId)', async () => {
    const { agent, net } = x;
    net.faults.push({ path: '/accept', times: 1, lose: 'request' });
    const { receipt } = await agent.buy(article1());
    const ids = acceptIds(net);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    expect(receipt.accept.body.acceptId).toBe(ids[0]);
    expect(await merchantSession(receipt.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
  });

  it('an accept whose answer was lost is resent and counted once by the merchant', async () => {
    const { agent, net } = x;
    net.faults.push({ path: '/accept', times: 1, lose: 'answer' });
    const { receipt } = await agent.buy(article1());
    expect(new Set(acceptIds(net)).size).toBe(1);
    expect(acceptIds(net)).toHaveLength(2);
    expect(await merchantSession(receipt.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
  });

  it('a wallet stopped between storing the accept and getting it through resends the same accept after restart', async () => {
    const { agent, net, store, newAgent } = x;
    // Every try of the first agent is lost (it asks DELIVERY_ATTEMPTS times in all).
    net.faults.push({ path: '/accept', times: 3, lose: 'request' });
    expect(await errorName(agent.buy(article1()))).toBe('UNAVAILABLE');
    const [tx] = await store.listTransactions();
    const stored = tx!.pending!.accept!;
    expect(await merchantSession(tx!.handle)).toMatchObject({ count: 0 });
    // The accept was signed and sent: the receipt is there already, waiting for the key.
    expect(await agent.receipts()).toMatchObject([{ status: 'awaiting-key', accept: stored }]);

    const restarted = newAgent();
    expect(await restarted.recover()).toMatchObject([{ transactionId: tx!.transactionId, state: 'open' }]);
    const ids = acceptIds(net);
    expect(ids).toEqual([stored.body.acceptId, stored.body.acceptId, stored.body.acceptId, stored.body.acceptId]);
    expect(await merchantSession(tx!.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
    const [receipt] = await restarted.receipts();
    expect(receipt!.accept).toEqual(stored);
    expect(receipt!.status).toBe('delivered');
    expect(await restarted.transaction(tx!.transactionId!)).toMatchObject({ count: 1, pending: false });
  });

  it('clicking buy again after a restart delivers the purchase in flight instead of paying twice', async () => {
    const { agent, net, newAgent } = x;
    net.faults.push({ path: '/accept', times: 3, lose: 'answer' });
    expect(await errorName(agent.buy(article1()))).toBe('UNAVAILABLE');
    const again = await newAgent().buy(article1());
    expect(utf8.decode(again.content)).toBe(PRODUCTS['article-1']!.content);
    expect(net.posts('/order')).toHaveLength(1);
    expect(new Set(acceptIds(net)).size).toBe(1);
    expect(await merchantSession(again.receipt.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
  });

  it('an order whose answer was lost is sent again with the same number', async () => {
    const { agent, net } = x;
    net.faults.push({ path: '/order', times: 1, lose: 'answer' });
    const { receipt } = await agent.buy(article1());
    const orders = net.posts('/order') as { order: Signed<'wallet.order'> }[];
    expect(orders).toHaveLength(2);
    expect(orders[1]).toEqual(orders[0]);
    expect(receipt.n).toBe(1);
    expect(await merchantSession(receipt.handle)).toMatchObject({ count: 1, spent: 'EUR:0.05' });
  });

  it('a record the operator never got is resent unchanged after restart, and the transaction is reported', async () => {
    const { agent, net, store, newAgent } = x;
    const { receipt } = await agent.buy(article1());
    net.faults.push({ path: '/v1/records', times: 2, lose: 'request' });
    // Ending it says the operator could not be reached; the record is stored, the transaction closed.
    await expect(agent.endTransaction(receipt.transactionId)).rejects.toMatchObject({ name: 'UNAVAILABLE' });
    const closed = (await store.getTransaction(receipt.transactionId))!;
    expect(closed).toMatchObject({ state: 'closed', closeReason: 'wallet' });
    const stored = closed.record!;
    expect(net.posts('/v1/records')).toEqual([stored, stored]);

    const steps = await newAgent().recover();
    expect(steps).toMatchObject([{ transactionId: receipt.transactionId }]);
    expect(['reported', 'cleared']).toContain(steps[0]!.state);
    expect(net.posts('/v1/records')).toEqual([stored, stored, stored]);
  });

  it('an initiation whose answer was lost is resent unchanged after restart: one deposit, not two', async () => {
    const { agent, net, store, newAgent } = x;
    net.faults.push({ path: '/v1/initiate', times: 2, lose: 'answer' });
    expect(await errorName(agent.buy(article1()))).toBe('UNAVAILABLE');
    const [tx] = await store.listTransactions();
    expect(tx!.state).toBe('initiating');
    expect(await held(agent)).toBe('SEK:20.00');

    const { receipt } = await newAgent().buy(article1());
    const initiations = net.posts('/v1/initiate') as Signed<'wallet.initiate'>[];
    expect(initiations).toHaveLength(3);
    expect(new Set(initiations.map((m) => m.body.msgId)).size).toBe(1);
    expect(await held(agent)).toBe('SEK:20.00');
    expect(await store.listTransactions()).toHaveLength(1);
    expect(receipt).toMatchObject({ n: 1 });
  });
});
