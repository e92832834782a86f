// The wallet's service-worker logic (extension/src/background) on fake-indexeddb against real
// in-process operators and a shop. It lives in e2e/ because it starts backend servers: extension/
// itself imports nothing but protocol/.
import 'fake-indexeddb/auto';
import type { BridgeParams } from '@obol/protocol/bridge';
import { systemClock } from '@obol/protocol/clock';
import { certToBase64, certToPem } from '@obol/protocol/pki';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { ObolError } from '@obol/protocol/errors';
import { type Http, fetchHttp } from '@obol/protocol/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlFileSink } from '../../backend/src/billing/index.ts';
import { walletBuy } from '../../backend/src/cli/walletCommands.ts';
import { newsCatalogue } from '../../backend/src/demo/catalogues.ts';
import { createRoot } from '../../backend/src/operator/identity.ts';
import { openDb } from '../../backend/src/store/db.ts';
import { type Shop, startShop } from '../../backend/src/world/shop.ts';
import { DEMO_RATE_LIMITS } from '../../backend/src/world/demoWorld.ts';
import { type World, startOperators } from '../../backend/src/world/world.ts';
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import { DatabaseWalletStore } from '@obol/protocol/walletStore';
import { type IdbWalletDatabase as WalletDb, openWalletDb } from '../../extension/src/background/db.ts';
import { WALLET_INFO } from '../../extension/src/shared/walletInfo.ts';
import { fakePlatform, getRecord, putRecord } from '../../extension/test/support.ts';

/**
 * The service worker's logic on fake-indexeddb against real operators and a real shop (in-process,
 * real HTTP): the wallet core on IndexedDB, prompts, budgets, blocking, concurrency, and a worker
 * stopped with a purchase in flight.
 */
let world: World;
let shop: Shop;
let sekUrl: string;
let billingDir: string;
const dbs: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  const d = { sek: await openDb(), eur: await openDb(), shop: await openDb() };
  dbs.push(d.sek, d.eur, d.shop);
  const billing = mkdtempSync(join(tmpdir(), 'obol-billing-'));
  billingDir = billing;
  dbs.push({ close: async () => rmSync(billing, { recursive: true, force: true }) });
  world = await startOperators(
    [
      { operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874' }, db: d.sek, sinks: [new JsonlFileSink(join(billing, 'sek.jsonl'))] },
      { operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44' }, db: d.eur, sinks: [new JsonlFileSink(join(billing, 'eur.jsonl'))] },
    ],
    // Every client here is 127.0.0.1 and this file registers a shopper per test: the demo's room.
    { clock: systemClock, rateLimits: DEMO_RATE_LIMITS },
  );
  sekUrl = world.operators['op-sek']!.url;
  shop = await startShop({
    merchantId: 'news.example',
    name: 'The Daily Obol',
    operatorUrl: world.operators['op-eur']!.url,
    operatorId: 'op-eur',
    currency: 'EUR',
    adminToken: world.adminToken,
    catalogue: newsCatalogue('EUR'),
    clock: systemClock,
    db: d.shop,
    sweepIntervalMs: 0,
  });
});

afterAll(async () => {
  await shop?.close();
  await world?.close();
  for (const db of dbs) await db.close();
});

let dbCount = 0;
type Shopper = { say: 'yes' | 'no'; budget?: string; autoPayLimit?: string };

const trustedRoots = () => [certToBase64(world.root.cert)];

async function newWallet(opts: { db?: WalletDb; http?: Http; shopper?: Shopper; deposits?: Record<string, string>; trustedRoots?: string[] } = {}) {
  const db = opts.db ?? (await openWalletDb(`wallet-test-${++dbCount}`));
  const shopper: Shopper = opts.shopper ?? { say: 'yes' };
  let wallet: Wallet | undefined;
  const platform = fakePlatform((id) => {
    void wallet?.decide({ id, accept: shopper.say === 'yes', ...(shopper.budget ? { budget: shopper.budget } : {}), ...(shopper.autoPayLimit ? { autoPayLimit: shopper.autoPayLimit } : {}) });
  });
  wallet = new Wallet({ db, platform, http: opts.http ?? fetchHttp(), info: WALLET_INFO, trustedRoots: opts.trustedRoots ?? trustedRoots(), resumeDelayMs: 0, ...(opts.deposits ? { deposits: opts.deposits } : {}) });
  return { wallet, db, platform, shopper };
}

async function onboarded(shopper?: Shopper) {
  const w = await newWallet(shopper ? { shopper } : {});
  await w.wallet.register(sekUrl);
  await w.wallet.topUp('100');
  return w;
}

const origin = () => shop.url;
const pay = (productId: string): BridgeParams<'obol_pay'> => ({ merchant: shop.moduleUrl, productId, price: 'EUR:0.03' });
let keyCount = 0;
const key = () => `key${++keyCount}`.padEnd(16, '0');
const text = (b64: string) => Buffer.from(b64, 'base64url').toString('utf8');

describe('the wallet trusts only the roots it was built with', () => {
  it('refuses an operator under another interbank root, OPERATOR_NOT_TRUSTED, and keeps no account', async () => {
    const elsewhere = await createRoot('Obol Interbank Root', Date.now()); // the same name, another key
    const w = await newWallet({ trustedRoots: [certToBase64(elsewhere.cert)] });
    const e = await w.wallet.register(sekUrl).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'OPERATOR_NOT_TRUSTED' });
    expect(await new DatabaseWalletStore(w.db).getAccount()).toBeUndefined();
    // A wallet built with no roots at all trusts nobody, and says so.
    const none = await newWallet({ trustedRoots: [] });
    expect(await none.wallet.register(sekUrl).catch((x: unknown) => x)).toMatchObject({ name: 'OPERATOR_NOT_TRUSTED' });
  });

  it('a root the shopper pastes in onboarding is trusted for her account only, also after a restart; only a root certificate is taken', async () => {
    const elsewhere = await createRoot('Obol Interbank Root', Date.now());
    const builtIn = [certToBase64(elsewhere.cert)];
    const w = await newWallet({ trustedRoots: builtIn });
    const sekOperatorCert = world.operators['op-sek']!.ctx.identity.cert;
    expect(await w.wallet.handleCoreApiRequest('register', { operatorUrl: sekUrl, trustedRoot: certToPem(sekOperatorCert) }).catch((x: unknown) => x)).toMatchObject({ name: 'CERT_WRONG_KIND' });
    const overview = await w.wallet.handleCoreApiRequest('register', { operatorUrl: sekUrl, trustedRoot: certToPem(world.root.cert) });
    expect(overview.account?.operatorId).toBe('op-sek');
    expect(await new DatabaseWalletStore(w.db).getAccount()).toMatchObject({ rootAddedByShopper: true, rootCert: certToBase64(world.root.cert) });
    await w.wallet.topUp('10');
    // The service worker starts again: the account's own root is still trusted, and nothing else is.
    const restarted = new Wallet({ db: w.db, platform: w.platform, http: fetchHttp(), info: WALLET_INFO, trustedRoots: builtIn, resumeDelayMs: 0 });
    expect((await restarted.topUp('5')).balance?.balance).toBe('SEK:15.00');
    const other = await newWallet({ trustedRoots: builtIn });
    expect(await other.wallet.register(sekUrl).catch((x: unknown) => x)).toMatchObject({ name: 'OPERATOR_NOT_TRUSTED' });
  });
});

describe('DatabaseWalletStore carries the customer agent', () => {
  it('registers, keeps non-extractable keys in IndexedDB, and buys; a new agent on the same store carries on', async () => {
    const db = await openWalletDb(`agent-store-${++dbCount}`);
    const store = new DatabaseWalletStore(db);
    const agent = new CustomerAgent({ store, http: fetchHttp(), clock: systemClock, depositPolicy: { minimum: 'SEK:10.00' }, trustedRoots: trustedRoots() });
    await agent.register(sekUrl);
    const account = await store.getAccount();
    expect(account?.keys.privateKey.extractable).toBe(false);
    await agent.demoTopUp('SEK:50.00');
    const first = await agent.buy({ merchantUrl: shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03', origin: origin() });
    expect(new TextDecoder().decode(first.content)).toContain('Two banks');
    const again = new CustomerAgent({ store: new DatabaseWalletStore(db), http: fetchHttp(), clock: systemClock, trustedRoots: trustedRoots() });
    const second = await again.buy({ merchantUrl: shop.moduleUrl, productId: 'pseudonyms', price: 'EUR:0.03', origin: origin() });
    expect(second.receipt.transactionId).toBe(first.receipt.transactionId);
    expect(second.receipt.n).toBe(2);
    expect((await again.receipts()).map((r) => r.n)).toEqual([1, 2]);
    expect(await store.getTransaction(first.receipt.transactionId)).toMatchObject({ state: 'open', nextN: 3 });
    // The content is kept beside each delivered receipt.
    expect(await getRecord(db, 'deliveries', [first.receipt.transactionId, 1])).toMatchObject({ contentType: 'text/plain; charset=utf-8' });
  });
});

describe('paying from a page', () => {
  it('asks once, then pays within the budget without asking (one gesture each); asks again over the budget', async () => {
    const { wallet, platform, shopper } = await onboarded({ say: 'yes', budget: '0.80', autoPayLimit: '0.50' });
    const caller = { origin: origin(), documentId: 'doc-1', gesture: true };
    const first = await wallet.pay(caller, key(), pay('two-banks'));
    expect(text(first.content)).toContain('Two banks');
    expect(platform.opened).toHaveLength(1);
    const prompt = await wallet.prompt(platform.opened[0]!);
    expect(prompt).toMatchObject({ kind: 'first', merchantId: 'news.example', certifiedOrigins: [origin()], priceCustomer: 'SEK:0.34', deposit: { customer: 'SEK:20.00', openedForPrompt: false } });
    // What a shopper would choose: a few purchases at this price, auto-pay up to this price.
    expect(prompt?.suggested).toEqual({ budget: 'SEK:1.70', autoPayLimit: 'SEK:0.34' });
    // The merchant-signed title, checked before the window opened.
    expect(prompt?.signed?.title).toBeTruthy();
    expect(prompt?.deposit.transactionId).toBeUndefined(); // nothing reserved before the click
    // Without a gesture on the page, an approved site still cannot take a payment without a window.
    await expect(wallet.pay({ ...caller, gesture: false }, key(), pay('fair-exchange'))).rejects.toMatchObject({ name: 'USER_ACTIVATION_REQUIRED', code: 4305 });
    await wallet.pay(caller, key(), pay('fair-exchange'));
    expect(platform.opened).toHaveLength(1); // 0.69 of 0.80 (the bank's figure for 0.06 EUR): no prompt
    // 0.69 + 0.34 > 0.80: asked again; the shopper says no → USER_REJECTED (she declined; the budget only asked), and this site asks no more.
    shopper.say = 'no';
    await expect(wallet.pay(caller, key(), pay('pseudonyms'))).rejects.toMatchObject({ name: 'USER_REJECTED', code: 4001 });
    expect(platform.opened).toHaveLength(2);
    await expect(wallet.pay(caller, key(), pay('pseudonyms'))).rejects.toMatchObject({ name: 'SITE_BLOCKED', code: 4304 });
    // Nor after a reload (a new document), nor from another tab.
    await expect(wallet.pay({ ...caller, documentId: 'doc-2' }, key(), pay('pseudonyms'))).rejects.toMatchObject({ name: 'SITE_BLOCKED' });
    expect(platform.opened).toHaveLength(2);
    // The shopper allows it again in the popup: it asks again.
    expect((await wallet.declinedSites()).map((d) => d.origin)).toEqual([origin()]);
    await wallet.allowAgain(origin());
    shopper.say = 'yes';
    shopper.budget = '5.00';
    const after = await wallet.pay({ ...caller, documentId: 'doc-2' }, key(), pay('pseudonyms'));
    expect(after.n).toBe(3);
    const [site] = await wallet.sites();
    // Spent is what the bank books for the session's 0.09 EUR (1.0297… → 1.03), not 3 × 0.34.
    expect(site).toMatchObject({ budget: 'SEK:5.00', spent: 'SEK:1.03', reserved: 'SEK:0.00' });
  });

  it('an unapproved site learns that a wallet exists, and nothing of the bank, the currency or the rates', async () => {
    const { wallet } = await onboarded({ say: 'yes' });
    const caller = { origin: origin(), documentId: 'doc-i', gesture: true };
    expect(await wallet.getInfo(caller)).toEqual({ wallet: WALLET_INFO, hasAccount: true });
    expect(await wallet.quote(caller, { prices: ['EUR:0.03'] })).toEqual({ tableStatus: 'withheld', quotes: [{ price: 'EUR:0.03' }] });
    await wallet.pay(caller, key(), pay('two-banks')); // confirmed, and it succeeded: approved
    expect(await wallet.getInfo(caller)).toMatchObject({ currency: 'SEK', operatorId: 'op-sek' });
    expect(await wallet.quote(caller, { prices: ['EUR:0.03'] })).toMatchObject({ quotes: [{ price: 'EUR:0.03', converted: 'SEK:0.34' }] });
    // Another site still learns nothing.
    expect(await wallet.getInfo({ origin: 'https://other.example' })).toEqual({ wallet: WALLET_INFO, hasAccount: true });
  });

  it('a bait product opens no window and approves nothing; a wrong price is refused before any window', async () => {
    const { wallet, platform } = await onboarded({ say: 'yes', budget: '20.00', autoPayLimit: '5.00' });
    const caller = { origin: origin(), documentId: 'doc-b', gesture: true };
    await expect(wallet.pay(caller, key(), { ...pay('this-is-free'), price: 'EUR:0.01' })).rejects.toMatchObject({ name: 'UNKNOWN_PRODUCT' });
    await expect(wallet.pay(caller, key(), { ...pay('two-banks'), price: 'EUR:0.01' })).rejects.toMatchObject({ name: 'PRODUCT_MISMATCH' });
    expect(platform.opened).toHaveLength(0);
    expect(await wallet.sites()).toEqual([]);
    expect(await wallet.store.listTransactions()).toHaveLength(0);
  });

  it('a description the merchant did not sign opens no window (BAD_SIGNATURE)', async () => {
    // Someone between the wallet and the shop rewrites the product's title.
    const real = fetchHttp();
    const tampering: Http = {
      get: async (url, h) => {
        const body = await real.get(url, h);
        if (!url.includes('/products/')) return body;
        const signed = body as { body: { title: string } };
        return { ...signed, body: { ...signed.body, title: 'This is free' } };
      },
      post: (url, body, h) => real.post(url, body, h),
    };
    const w = await newWallet({ http: tampering });
    await w.wallet.register(sekUrl);
    await w.wallet.topUp('10');
    await expect(w.wallet.pay({ origin: origin(), documentId: 'doc-sig', gesture: true }, key(), pay('two-banks'))).rejects.toMatchObject({ name: 'BAD_SIGNATURE' });
    expect(w.platform.opened).toHaveLength(0);
    expect(await w.wallet.sites()).toEqual([]);
  });

  it('a confirmed purchase that then fails leaves the site unapproved: its budget is not granted', async () => {
    // The merchant refuses the order after the shopper clicked (as for an item it does not sell).
    const real = fetchHttp();
    const refusing: Http = {
      get: (url, h) => real.get(url, h),
      post: async (url, body, h) => {
        if (url.endsWith('/order')) throw new ObolError('UNKNOWN_PRODUCT', 'no such product');
        return real.post(url, body, h);
      },
    };
    const w = await newWallet({ http: refusing, shopper: { say: 'yes', budget: '20.00', autoPayLimit: '5.00' } });
    await w.wallet.register(sekUrl);
    await w.wallet.topUp('100');
    const caller = { origin: origin(), documentId: 'doc-f', gesture: true };
    await expect(w.wallet.pay(caller, key(), pay('two-banks'))).rejects.toMatchObject({ name: 'UNKNOWN_PRODUCT' });
    expect(w.platform.opened).toHaveLength(1);
    const [site] = await w.wallet.sites();
    expect(site).toMatchObject({ approved: false, spent: 'SEK:0.00', reserved: 'SEK:0.00' });
    expect(await w.wallet.getInfo(caller)).toEqual({ wallet: WALLET_INFO, hasAccount: true });
    // The next purchase asks again: no standing approval, no 20 SEK budget.
    w.shopper.say = 'no';
    await expect(w.wallet.pay(caller, key(), pay('fair-exchange'))).rejects.toMatchObject({ name: 'USER_REJECTED' });
    expect(w.platform.opened).toHaveLength(2);
  });

  it('a declined first prompt: USER_REJECTED, no deposit was ever opened, and the site is blocked', async () => {
    const { wallet, platform } = await onboarded({ say: 'no' });
    const caller = { origin: origin(), documentId: 'doc-x', gesture: true };
    await expect(wallet.pay(caller, key(), pay('two-banks'))).rejects.toMatchObject({ name: 'USER_REJECTED', code: 4001 });
    const prompt = await wallet.prompt(platform.opened[0]!);
    expect(prompt?.deposit.transactionId).toBeUndefined();
    expect(await wallet.store.listTransactions()).toHaveLength(0); // the bank never saw a deposit
    await expect(wallet.pay(caller, key(), pay('two-banks'))).rejects.toMatchObject({ name: 'SITE_BLOCKED' });
  });

  it('refuses a page the merchant is not certified for (MERCHANT_NOT_TRUSTED), before any prompt', async () => {
    const { wallet, platform } = await onboarded();
    await expect(wallet.pay({ origin: 'https://evil.example', documentId: 'd' }, key(), pay('two-banks'))).rejects.toMatchObject({ name: 'MERCHANT_NOT_TRUSTED' });
    expect(platform.opened).toHaveLength(0);
  });

  it('concurrent clicks at one site: one prompt, the rest queue behind it and never overspend', async () => {
    const { wallet, platform } = await onboarded({ say: 'yes', budget: '1.10', autoPayLimit: '0.50' });
    const caller = { origin: origin(), documentId: 'doc-c', gesture: true };
    const products = ['two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];
    const outcomes = await Promise.allSettled(products.map((p) => wallet.pay(caller, key(), pay(p))));
    expect(platform.opened).toHaveLength(2); // the first prompt; then one more when the budget (3 × 0.34) is used
    const paid = outcomes.filter((o) => o.status === 'fulfilled');
    expect(paid.length).toBe(4); // the fake shopper says yes to the second prompt too
    const [site] = await wallet.sites();
    expect(site?.spent).toBe('SEK:1.37'); // 0.12 EUR as the bank books it (1.373… → 1.37)
    expect(site?.reserved).toBe('SEK:0.00');
  });

  it('a used-up deposit renews within the budget without asking', async () => {
    // Deposits of SEK 0.70 (EUR 0.06): room for two articles each.
    const w = await newWallet({ shopper: { say: 'yes', budget: '5.00', autoPayLimit: '1.00' }, deposits: { SEK: 'SEK:0.70' } });
    await w.wallet.register(sekUrl);
    await w.wallet.topUp('10');
    const caller = { origin: origin(), documentId: 'doc-r', gesture: true };
    const bought = [];
    for (const p of ['two-banks', 'fair-exchange', 'pseudonyms']) bought.push(await w.wallet.pay(caller, key(), pay(p)));
    expect(bought.map((b) => b.n)).toEqual([1, 2, 1]);
    expect(bought[2]?.transactionId).not.toBe(bought[0]?.transactionId);
    expect(w.platform.opened).toHaveLength(1);
  });
});

describe('a stopped service worker', () => {
  it('with a purchase in flight: the page’s resent request finishes it once, with its content', async () => {
    const { wallet, db } = await onboarded({ say: 'yes', budget: '5.00', autoPayLimit: '1.00' });
    const caller = { origin: origin(), documentId: 'doc-s', gesture: true };
    const first = await wallet.pay(caller, key(), pay('two-banks'));

    // This life of the worker dies while the accept is on its way: the request reaches the merchant,
    // the answer never comes back.
    const real = fetchHttp();
    let dead = false;
    const dying: Http = {
      get: (url, h) => real.get(url, h),
      post: async (url, body, h) => {
        if (url.endsWith('/accept')) {
          await real.post(url, body, h);
          dead = true;
          return new Promise(() => {}); // never answers
        }
        return real.post(url, body, h);
      },
    };
    const stopped = await newWallet({ db, http: dying });
    const k = key();
    void stopped.wallet.pay(caller, k, pay('fair-exchange'));
    await expect.poll(() => dead).toBe(true);

    // The next life: the same request (same key) comes again.
    const next = await newWallet({ db });
    const again = await next.wallet.pay(caller, k, pay('fair-exchange'));
    expect(again.n).toBe(2);
    expect(text(again.content)).toContain('fair exchange');
    const session = await shop.agent.session(first.transactionId);
    expect(session.count).toBe(2);
    expect(session.spent).toBe('EUR:0.06');
    // Asked once more: the stored answer, not a third purchase.
    expect((await next.wallet.pay(caller, k, pay('fair-exchange'))).n).toBe(2);
    const [site] = await next.wallet.sites();
    expect(site).toMatchObject({ spent: 'SEK:0.69', reserved: 'SEK:0.00' });
  });

  it('without a page: start-up finishes a purchase under way and releases one that never started', async () => {
    const { wallet, db } = await onboarded({ say: 'yes', budget: '5.00', autoPayLimit: '1.00' });
    const caller = { origin: origin(), documentId: 'doc-t', gesture: true };
    const first = await wallet.pay(caller, key(), pay('two-banks'));
    const real = fetchHttp();
    let dead = false;
    const dying: Http = {
      get: (url, h) => real.get(url, h),
      post: async (url, body, h) => {
        if (url.endsWith('/accept')) {
          await real.post(url, body, h);
          dead = true;
          return new Promise(() => {});
        }
        return real.post(url, body, h);
      },
    };
    const stopped = await newWallet({ db, http: dying });
    const k = key();
    void stopped.wallet.pay(caller, k, pay('deposits'));
    await expect.poll(() => dead).toBe(true);
    // A payment authorized but never ordered (the worker died right after reserving).
    await putRecord(db, 'payments', { key: `${origin()} never`, origin: origin(), merchantUrl: shop.moduleUrl, productId: 'pseudonyms', price: 'EUR:0.03', state: 'authorized', createdAt: Date.now(), updatedAt: Date.now() });
    await putRecord(db, 'reservations', { paymentKey: `${origin()} never`, origin: origin(), amount: 'SEK:0.34', createdAt: Date.now() });

    const next = await newWallet({ db });
    await next.wallet.start();
    await next.wallet.recovered;
    expect((await getRecord(db, 'payments', `${origin()} ${k}`))?.state).toBe('done');
    expect((await getRecord(db, 'payments', `${origin()} never`))?.state).toBe('failed');
    const session = await shop.agent.session(first.transactionId);
    expect(session.count).toBe(2);
    const [site] = await next.wallet.sites();
    expect(site).toMatchObject({ spent: 'SEK:0.69', reserved: 'SEK:0.00' });
  });
});

describe('the popup’s view', () => {
  it('shows balance, table, sessions, history and exports evidence', async () => {
    const { wallet } = await onboarded();
    const paid = await wallet.pay({ origin: origin(), documentId: 'p', gesture: true }, key(), pay('two-banks'));
    const overview = await wallet.overview();
    expect(overview.account?.currency).toBe('SEK');
    expect(overview.table?.status).toMatch(/valid|refreshed/);
    const [session] = await wallet.sessions();
    expect(session).toMatchObject({ merchantName: 'The Daily Obol', remaining: 'EUR:1.71', state: 'open' });
    const history = await wallet.history();
    expect(history.receipts[0]?.receipt.productId).toBe('two-banks');
    // The page was told the merchant's name for the transaction; the wallet keeps its own bank's.
    const receipt = history.receipts[0]!.receipt;
    expect(paid.transactionId).toBe(receipt.handle);
    expect(paid.transactionId).not.toBe(receipt.transactionId);
    expect(await wallet.content(receipt.transactionId, paid.n)).toMatchObject({ contentType: 'text/plain; charset=utf-8' });
    if (history.evidence) expect(await wallet.evidence(receipt.transactionId, paid.n)).toBeTruthy();
    await wallet.endSession(receipt.transactionId);
    expect(await wallet.sessions()).toHaveLength(0);
  });
});

/** The SEK operator's signed withdrawal record of a transaction, as its billing sink wrote it (due records sent first). */
async function withdrawalRecord(transactionId: string): Promise<{ amount: string; amountMerchant: string; rate: string } | undefined> {
  await world.operators['op-sek']!.billing.dispatchDue();
  const file = join(billingDir, 'sek.jsonl');
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const record = JSON.parse(line) as { type: string; body: { transactionId?: string; amount: string; amountMerchant: string; rate: string } };
    if (record.type === 'am.withdrawal' && record.body.transactionId === transactionId) return record.body;
  }
  return undefined;
}

describe('a purchase that needs the shopper, through the core’s one entry point', () => {
  it('waits as a prompt the platform shows; needsShopper lists it, decide answers it, and the page gets its purchase', async () => {
    const db = await openWalletDb(`wallet-test-${++dbCount}`);
    const platform = fakePlatform(); // shows windows, never clicks: the test is the shopper
    const core = new Wallet({ db, platform, http: fetchHttp(), info: WALLET_INFO, trustedRoots: trustedRoots(), resumeDelayMs: 0 });
    await core.handleCoreApiRequest('register', { operatorUrl: sekUrl });
    await core.handleCoreApiRequest('topUp', { amount: '50' });
    const paying = core.handleCoreApiRequest('pay', { caller: { origin: origin(), documentId: 'ns', gesture: true }, key: key(), params: pay('two-banks') });
    await expect.poll(async () => (await core.handleCoreApiRequest('needsShopper', {})).length).toBe(1);
    const [prompt] = await core.handleCoreApiRequest('needsShopper', {});
    expect(prompt).toMatchObject({ kind: 'first', status: 'waiting', productId: 'two-banks', priceCustomer: 'SEK:0.34', merchantId: 'news.example' });
    expect(platform.opened).toEqual([prompt!.id]);
    await core.handleCoreApiRequest('decide', { id: prompt!.id, accept: true, budget: '1.00', autoPayLimit: '0.50' });
    expect(text((await paying).content)).toContain('Two banks');
    expect(await core.handleCoreApiRequest('needsShopper', {})).toEqual([]);
    const [site] = await core.handleCoreApiRequest('sites', {});
    expect(site).toMatchObject({ budget: 'SEK:1.00', spent: 'SEK:0.34', reserved: 'SEK:0.00' });
    await expect(core.handleCoreApiRequest('endSession', {} as never)).rejects.toMatchObject({ name: 'MALFORMED' });
    await expect(core.handleCoreApiRequest('noSuchOperation', {})).rejects.toMatchObject({ name: 'UNSUPPORTED_METHOD' });
  });
});

describe('what the shopper sees is what the bank books (SEK shopper, EUR merchant)', () => {
  it('the session’s spent and left, as the core gives them to the popup, equal the operator’s withdrawal and refund to the minor unit', async () => {
    const { wallet } = await onboarded();
    const core = wallet;
    const before = (await core.handleCoreApiRequest('overview', {})).balance?.balance;
    expect(before).toBe('SEK:100.00');
    // A deposit of SEK 20.00 is EUR 1.74 at the pinned 0.0874 (floor); one article of EUR 0.03.
    await core.handleCoreApiRequest('pay', { caller: { origin: origin(), documentId: 'fx', gesture: true }, key: key(), params: pay('two-banks') });
    const [session] = await core.handleCoreApiRequest('sessions', {});
    expect(session).toMatchObject({ depositCustomer: 'SEK:20.00', depositMerchant: 'EUR:1.74', remaining: 'EUR:1.71' });
    // EUR 0.03 back at 1/0.0874 is SEK 0.343… → 0.34 (half-even): SEK 19.66 comes back. (Scaling the
    // deposit by what is left, 20.00 × 1.71 / 1.74, would have shown a truncated SEK 19.65.)
    expect(session).toMatchObject({ spentCustomer: 'SEK:0.34', remainingCustomer: 'SEK:19.66' });
    const transactionId = session!.transactionId!;

    await core.handleCoreApiRequest('endSession', { transactionId });
    await shop.agent.settled();
    const settled = await core.handleCoreApiRequest('settlement', { transactionId });
    expect(settled.state).toBe('cleared');
    expect(settled.clearing).toMatchObject({ chargedCustomer: session!.spentCustomer, refundCustomer: session!.remainingCustomer });
    await expect.poll(async () => (await withdrawalRecord(transactionId))?.amount).toBe(session!.spentCustomer);
    expect(await withdrawalRecord(transactionId)).toMatchObject({ amountMerchant: 'EUR:0.03', rate: session!.rate });
    // And the balance moved by exactly what the popup said was spent.
    expect((await core.handleCoreApiRequest('overview', {})).balance?.balance).toBe('SEK:99.66');
  });

  it('the CLI wallet runs the same core: its session figures are the ones its bank settles', async () => {
    const rootFile = join(billingDir, 'root.cert.pem');
    writeFileSync(rootFile, certToPem(world.root.cert));
    const out = await walletBuy(
      { operator: sekUrl, merchant: shop.moduleUrl, product: ['two-banks', 'fair-exchange'], price: 'EUR:0.03', topUp: 'SEK:50.00', trustedRoot: [rootFile] },
      fetchHttp(),
    );
    expect(out.bought.map((b) => b.n)).toEqual([1, 2]);
    const [session] = out.sessions;
    // EUR 0.06 at 1/0.0874 is SEK 0.686… → 0.69.
    expect(session).toMatchObject({ cumulative: 'EUR:0.06', spentCustomer: 'SEK:0.69', remainingCustomer: 'SEK:19.31' });
    expect(out.settled[0]?.transactionId).toBe(session?.transactionId);
    // The bank's own record of that session, once the shop has reported and it is cleared.
    await shop.agent.settled();
    await expect.poll(async () => (await withdrawalRecord(session!.transactionId!))?.amount).toBe(session!.spentCustomer);
  });
});
