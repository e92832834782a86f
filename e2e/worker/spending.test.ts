// Spending control and the shopper's figures (issue 14, items 3 and 5): the wallet core on
// fake-indexeddb against real in-process operators and a shop, all on one clock the test moves.
import 'fake-indexeddb/auto';
import type { BridgeParams } from '@obol/protocol/bridge';
import type { Clock } from '@obol/protocol/clock';
import { certToBase64 } from '@obol/protocol/pki';
import { fetchHttp } from '@obol/protocol/http';
import { Wallet } from '@obol/protocol/customerAgent/wallet';
import { parseAmount } from '@obol/protocol/money';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlFileSink } from '../../backend/src/billing/index.ts';
import { newsCatalogue } from '../../backend/src/demo/catalogues.ts';
import { openDb } from '../../backend/src/store/db.ts';
import { type Shop, startShop } from '../../backend/src/world/shop.ts';
import { DEMO_RATE_LIMITS } from '../../backend/src/world/demoWorld.ts';
import { type World, startOperators } from '../../backend/src/world/world.ts';
import { openWalletDb } from '../../extension/src/background/db.ts';
import { WALLET_INFO } from '../../extension/src/shared/walletInfo.ts';
import { fakePlatform } from '../../extension/test/support.ts';

/** Real time plus what the test moved it by: the operators, the shop and the wallet read this one clock. */
let offsetMs = 0;
const clock: Clock = { now: () => Date.now() + offsetMs };
const DAY = 86_400_000;

let world: World;
let shop: Shop;
let sekUrl: string;
let billingDir: string;
const dbs: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  const d = { sek: await openDb(), eur: await openDb(), shop: await openDb() };
  dbs.push(d.sek, d.eur, d.shop);
  billingDir = mkdtempSync(join(tmpdir(), 'obol-spending-'));
  const dir = billingDir;
  dbs.push({ close: async () => rmSync(dir, { recursive: true, force: true }) });
  world = await startOperators(
    [
      { operatorId: 'op-sek', name: 'Svea Bank', currency: 'SEK', rates: { EUR: '0.0874' }, db: d.sek, sinks: [new JsonlFileSink(join(dir, 'sek.jsonl'))] },
      { operatorId: 'op-eur', name: 'Banque Euro', currency: 'EUR', rates: { SEK: '11.44' }, db: d.eur, sinks: [new JsonlFileSink(join(dir, 'eur.jsonl'))] },
    ],
    { clock, rateLimits: DEMO_RATE_LIMITS },
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
    clock,
    db: d.shop,
    sweepIntervalMs: 0,
  });
}, 240_000);

afterAll(async () => {
  await shop?.close();
  await world?.close();
  for (const db of dbs) await db.close();
});

let dbCount = 0;
let keyCount = 0;
const key = () => `spend${++keyCount}`.padEnd(16, '0');
const pay = (productId: string): BridgeParams<'obol_pay'> => ({ merchant: shop.moduleUrl, productId, price: 'EUR:0.03' });

async function shopper(opts: { topUp: string; budget?: string; autoPayLimit?: string }) {
  const db = await openWalletDb(`spending-${++dbCount}`);
  let wallet: Wallet | undefined;
  let topUps = 0;
  const platform = {
    ...fakePlatform((id) => {
      void wallet?.decide({ id, accept: true, budget: opts.budget ?? '5.00', autoPayLimit: opts.autoPayLimit ?? '1.00' });
    }),
    now: () => clock.now(),
    async showTopUp() {
      topUps++;
    },
  };
  wallet = new Wallet({ db, platform, http: fetchHttp(), info: WALLET_INFO, trustedRoots: [certToBase64(world.root.cert)], resumeDelayMs: 0 });
  await wallet.register(sekUrl);
  await wallet.topUp(opts.topUp);
  const caller = { origin: shop.url, documentId: `doc-${dbCount}`, gesture: true };
  return { wallet, caller, topUpsShown: () => topUps, buy: (productId: string) => wallet!.pay(caller, key(), pay(productId)) };
}

/** The SEK operator's signed withdrawal record of a transaction, as its billing sink wrote it. */
async function withdrawal(transactionId: string): Promise<{ amount: string; amountMerchant: string; count: number } | undefined> {
  await world.operators['op-sek']!.billing.dispatchDue();
  const file = join(billingDir, 'sek.jsonl');
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { type: string; body: { transactionId?: string; amount: string; amountMerchant: string; count: number } };
    if (r.type === 'am.withdrawal' && r.body.transactionId === transactionId) return r.body;
  }
  return undefined;
}

describe('figures that add up (SEK shopper, EUR articles)', { timeout: 120_000 }, () => {
  it('the receipts, the session’s spent and left, and the end summary equal the withdrawal record to the öre', async () => {
    const s = await shopper({ topUp: '100' });
    for (const product of ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits', 'two-banks', 'fair-exchange']) await s.buy(product);
    const [session] = await s.wallet.handleCoreApiRequest('sessions', {});
    const transactionId = session!.transactionId!;
    const history = await s.wallet.handleCoreApiRequest('history', {});
    const receipts = history.receipts.filter((r) => r.receipt.transactionId === transactionId);
    expect(receipts).toHaveLength(7);
    const receiptSum = receipts.reduce((sum, r) => sum + parseAmount(r.priceCustomer!).value, 0n);
    // Seven articles at EUR 0.03 = EUR 0.21 → SEK 2.40 (half-even of 2.4027…), while seven prices
    // shown one by one (SEK 0.34 each) would make SEK 2.38.
    expect(receiptSum).toBe(240n);
    expect(session).toMatchObject({ spentCustomer: 'SEK:2.40', remainingCustomer: 'SEK:17.60' });

    const ended = await s.wallet.handleCoreApiRequest('endSession', { transactionId });
    expect(ended.summary).toMatchObject({ deposit: 'SEK:20.00', spent: 'SEK:2.40', returned: 'SEK:17.60', spentMerchant: 'EUR:0.21' });
    expect(ended.summary.receipts).toHaveLength(7);
    await shop.agent.settled();
    await expect.poll(async () => (await withdrawal(transactionId))?.amount, { timeout: 10_000 }).toBe('SEK:2.40');
    expect(await withdrawal(transactionId)).toMatchObject({ amountMerchant: 'EUR:0.21', count: 7 });
    const settled = await s.wallet.handleCoreApiRequest('settlement', { transactionId });
    expect(settled.clearing).toMatchObject({ chargedCustomer: ended.summary.spent, refundCustomer: ended.summary.returned });
    expect((await s.wallet.handleCoreApiRequest('overview', {})).balance?.balance).toBe('SEK:97.60');
  });
});

describe('spending control', { timeout: 120_000 }, () => {
  it('a weekly budget renews when the clock passes the week; spent counts from the new period', async () => {
    const s = await shopper({ topUp: '100', budget: '1.00', autoPayLimit: '0.50' });
    await s.buy('why-micropayments'); // the first window, accepted with a budget of SEK 1.00
    await s.wallet.handleCoreApiRequest('setSite', { origin: shop.url, period: 'week' });
    await s.buy('two-banks');
    let [site] = await s.wallet.handleCoreApiRequest('sites', {});
    // Two articles: SEK 0.34 and 0.35, the steps the bank's figure takes (0.03 → 0.06 EUR is 0.34 → 0.69 SEK).
    expect(site).toMatchObject({ budget: 'SEK:1.00', spent: 'SEK:0.69', period: 'week' });
    const renews = site!.renewsAt!;
    expect(renews - clock.now()).toBeGreaterThan(7 * DAY - 60_000);
    // A week (and a minute) later, on the one clock every party reads: the budget has renewed.
    offsetMs += 7 * DAY + 60_000;
    [site] = await s.wallet.handleCoreApiRequest('sites', {});
    expect(site).toMatchObject({ spent: 'SEK:0.00', period: 'week' });
    expect(site!.renewsAt).toBe(renews + 7 * DAY);
    await s.buy('fair-exchange');
    [site] = await s.wallet.handleCoreApiRequest('sites', {});
    expect(site).toMatchObject({ spent: 'SEK:0.34' });
    await expect(s.wallet.handleCoreApiRequest('setSite', { origin: shop.url, period: 'fortnight' })).rejects.toMatchObject({ name: 'MALFORMED' });
  });

  it('the shopper chooses the deposit size within the limits; a new session opens with it', async () => {
    const s = await shopper({ topUp: '100' });
    await expect(s.wallet.handleCoreApiRequest('setSettings', { deposit: '1000' })).rejects.toMatchObject({ name: 'INVALID_AMOUNT', message: 'a deposit is between SEK:5.00 and SEK:500.00' });
    await expect(s.wallet.handleCoreApiRequest('setSettings', { deposit: 'EUR:5.00' })).rejects.toMatchObject({ name: 'CURRENCY_MISMATCH' });
    await expect(s.wallet.handleCoreApiRequest('setSettings', { idleCloseMinutes: -1 })).rejects.toMatchObject({ name: 'MALFORMED' });
    const view = await s.wallet.handleCoreApiRequest('setSettings', { deposit: '50', idleCloseMinutes: 10 });
    expect(view).toMatchObject({ deposit: 'SEK:50.00', defaultDeposit: 'SEK:20.00', idleCloseMinutes: 10, depositLimits: { min: 'SEK:5.00', max: 'SEK:500.00' } });
    await s.buy('two-banks');
    const [session] = await s.wallet.handleCoreApiRequest('sessions', {});
    expect(session).toMatchObject({ depositCustomer: 'SEK:50.00', depositMerchant: 'EUR:4.37' });
  });

  it('an idle session ends by itself and its unused deposit comes back', async () => {
    const s = await shopper({ topUp: '100' });
    await s.wallet.handleCoreApiRequest('setSettings', { idleCloseMinutes: 30 });
    await s.buy('two-banks');
    expect(await s.wallet.handleCoreApiRequest('tick', {})).toEqual({ ended: 0 });
    expect((await s.wallet.handleCoreApiRequest('overview', {})).balance).toMatchObject({ held: 'SEK:20.00' });
    offsetMs += 31 * 60_000;
    expect(await s.wallet.handleCoreApiRequest('tick', {})).toEqual({ ended: 1 });
    expect(await s.wallet.handleCoreApiRequest('sessions', {})).toEqual([]);
    await shop.agent.settled();
    await expect.poll(async () => (await s.wallet.handleCoreApiRequest('overview', {})).balance, { timeout: 10_000 }).toMatchObject({ balance: 'SEK:99.66', held: 'SEK:0.00' });
  });

  it('a low balance is shown; a purchase that needs a top-up waits, and resumes once the shopper tops up', async () => {
    const s = await shopper({ topUp: '10' });
    const overview = await s.wallet.handleCoreApiRequest('overview', {});
    expect(overview.lowBalance).toEqual({ available: 'SEK:10.00', deposit: 'SEK:20.00' });
    const bought = s.buy('two-banks');
    await expect.poll(async () => (await s.wallet.handleCoreApiRequest('overview', {})).needsTopUp, { timeout: 15_000 }).toEqual([
      { origin: shop.url, productId: 'two-banks', price: 'EUR:0.03', priceCustomer: 'SEK:0.34', title: 'Two banks, one click' },
    ]);
    expect(s.topUpsShown()).toBe(1);
    await s.wallet.handleCoreApiRequest('topUp', { amount: '50' });
    const result = await bought;
    expect(result).toMatchObject({ productId: 'two-banks', n: 1 });
    const after = await s.wallet.handleCoreApiRequest('overview', {});
    expect(after.needsTopUp).toBeUndefined();
    expect(after.lowBalance).toBeUndefined();
    // 60 SEK topped up, 20 of it held in the deposit the resumed purchase opened.
    expect(after.balance).toMatchObject({ balance: 'SEK:40.00', held: 'SEK:20.00' });
  });
});
