import { readFileSync } from 'node:fs';
import type { Clock } from '@obol/protocol/clock';
import { type Amount, formatAmount } from '@obol/protocol/money';
import { type Page, expect, test } from '@playwright/test';
import { clickCall } from '../support/bridgePage.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import {
  amountOf,
  artifacts,
  buyAndRead,
  buyButton,
  buyElement,
  clickInWindow,
  customerIdIn,
  nextConfirmWindow,
  onboard,
  openPopup,
  openShop,
  total,
  watchPrompts,
} from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * The shopper's wallet (issue 14, items 3 and 5) with every part real: a SEK shopper at Svea Bank
 * buying The Daily Obol's EUR articles. Her popup, her receipts, the summary when she ends the
 * session and her bank's signed withdrawal record agree to the öre; a weekly budget renews when
 * the clock passes the week; a purchase her balance cannot cover waits for a top-up and resumes.
 *
 * One clock for everyone: the operators and shops read real time plus `offsetMs`, and the test
 * moves the wallet's clock (Date.now in the extension's service worker) by the same amount.
 */

test.describe.configure({ mode: 'serial' });

let offsetMs = 0;
const clock: Clock = { now: () => Date.now() + offsetMs };
const DAY = 86_400_000;

let world: TestWorld;
let browser: ExtensionBrowser;
let shop: Page;
let customerId: string;
const ARTICLES = ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];

test.beforeAll(async () => {
  test.setTimeout(180_000);
  world = await startWorld({ clock });
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** Moves every party's clock: the servers' (offsetMs) and the wallet's (its service worker's Date.now). */
async function moveClocks(ms: number): Promise<void> {
  offsetMs += ms;
  await setWalletClock(browser);
}

/** The wallet in `b` reads the servers' clock (real time plus offsetMs). */
async function setWalletClock(b: ExtensionBrowser): Promise<void> {
  const worker = await b.serviceWorker();
  await worker.evaluate((offset) => {
    const g = globalThis as unknown as { realNow?: () => number };
    g.realNow ??= Date.now.bind(Date);
    const real = g.realNow;
    Date.now = () => real() + offset;
  }, offsetMs);
}

/** An amount as the popup shows it in the English locale: "SEK 97.60". */
function shown(a: Amount): string {
  const [currency, value] = formatAmount(a).split(':');
  return `${currency} ${value}`;
}

type Rec = { type: string; body: Record<string, unknown> };
function withdrawals(): Rec[] {
  return readFileSync(world.billingFile('op-sek'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec)
    .filter((r) => r.type === 'am.withdrawal' && r.body.customerId === customerId);
}

test('a SEK shopper buys EUR articles: popup, receipts, end summary and withdrawal record agree to the öre', async () => {
  test.setTimeout(180_000);
  await onboard(browser, world.sek.url, '100');
  const wallet = await openPopup(browser);
  customerId = await customerIdIn(wallet);
  await wallet.close();

  shop = await openShop(browser.context, `${world.shop.url}/`);
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'why-micropayments').click();
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('price')).toContainText('SEK 0.34');
  await confirm.getByLabel('Budget for this site').fill('25.00');
  await confirm.getByLabel('Pay without asking up to').fill('1.00');
  await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.34' }));
  await expect(buyElement(shop, 'why-micropayments').getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
  // Six more, with no window: seven articles at 0.03 EUR are 0.21 EUR, which the bank books as
  // 2.40 SEK (half-even of 2.4027… at the pinned 0.0874) — not 7 × 0.34 = 2.38.
  for (const id of ARTICLES.slice(1)) await buyAndRead(shop, id);
  // Two bought again: the widget now opens a bought article without a charge, so the shop's own
  // script buys them on the shopper's click (the bridge test page on the shop's origin).
  const reader = await browser.context.newPage();
  await reader.goto(world.testPageUrl);
  for (const productId of ARTICLES.slice(0, 2)) {
    const answer = await clickCall(reader, 'obol_pay', { merchant: world.shop.moduleUrl, productId, price: 'EUR:0.03' });
    expect(answer.error).toBeUndefined();
  }
  await reader.close();

  const sessions = await openPopup(browser, 'Sessions');
  const session = sessions.getByTestId('session');
  await expect(session.getByTestId('spent-customer')).toHaveText('SEK 2.40');
  await expect(session.getByTestId('refund-customer')).toHaveText('SEK 17.60');
  await sessions.getByRole('tab', { name: 'History' }).click();
  const receiptPrices = sessions.getByTestId('receipt-price');
  await expect(receiptPrices).toHaveCount(7);
  const receiptSum = total('SEK', (await receiptPrices.allTextContents()).map(amountOf));
  expect(receiptSum).toBe(240n);
  await expect(sessions.getByText('shop’s price EUR 0.03').or(sessions.getByText("shop's price EUR 0.03")).first()).toBeVisible();

  await sessions.getByRole('tab', { name: 'Sessions' }).click();
  await sessions.getByTestId('session').getByRole('button', { name: 'End' }).click();
  const summary = sessions.getByTestId('session-summary');
  await expect(summary).toBeVisible({ timeout: 20_000 });
  await expect(summary.getByTestId('summary-spent')).toHaveText('SEK 2.40');
  await expect(summary.getByTestId('summary-returned')).toHaveText('SEK 17.60');
  await expect(summary.getByTestId('summary-receipt')).toHaveCount(7);
  const summarySum = total('SEK', (await summary.getByTestId('summary-receipt-price').allTextContents()).map(amountOf));
  expect(summarySum).toBe(240n);
  await sessions.screenshot({ path: `${artifacts}spending-session-summary.png` });

  // The bank's signed withdrawal record says the same, to the öre.
  await world.shop.agent.settled();
  await expect
    .poll(async () => {
      await world.sek.billing.dispatchDue();
      return withdrawals().length;
    }, { timeout: 20_000 })
    .toBe(1);
  const [w] = withdrawals();
  expect(w!.body).toMatchObject({ amount: 'SEK:2.40', amountMerchant: 'EUR:0.21', count: 7, rate: '0.0874' });
  await sessions.getByRole('tab', { name: 'Wallet' }).click();
  await expect(sessions.getByTestId('balance')).toHaveText(shown({ currency: 'SEK', value: 10_000n - 240n }));
  await sessions.close();
});

test('a weekly budget renews when the clock passes the week', async () => {
  test.setTimeout(180_000);
  const sites = await openPopup(browser, 'Sites');
  const origin = world.shop.url;
  await sites.getByLabel(`budget for ${origin}`).fill('0.70');
  await sites.getByTestId('site').getByRole('button', { name: 'Save' }).click();
  await sites.getByLabel(`Budget renews ${origin}`).selectOption('week');
  await expect(sites.getByTestId('renews-at')).toBeVisible();
  // The period starts now with what was spent so far: 2.40 SEK of a 0.70 SEK budget.
  await expect(sites.getByTestId('site')).toContainText('spent SEK 2.40 of SEK 0.70');
  const firstRenewal = await sites.getByTestId('renews-at').textContent();
  await sites.screenshot({ path: `${artifacts}spending-weekly-budget.png` });
  await sites.close();

  await moveClocks(7 * DAY + 60_000);
  const after = await openPopup(browser, 'Sites');
  await expect(after.getByTestId('site')).toContainText('spent SEK 0.00 of SEK 0.70');
  await expect(after.getByTestId('renews-at')).not.toHaveText(firstRenewal ?? '');
  await after.close();

  // Two articles fit in the renewed week, with no window (0.34 + 0.35 SEK, the bank's steps).
  // Both were bought before (the widget would open them without a charge): the shop's own script
  // buys them again on the shopper's click.
  const prompts = watchPrompts(browser.context);
  const reader = await browser.context.newPage();
  await reader.goto(world.testPageUrl);
  for (const productId of ['pseudonyms', 'deposits']) {
    const answer = await clickCall(reader, 'obol_pay', { merchant: world.shop.moduleUrl, productId, price: 'EUR:0.03' });
    expect(answer.error).toBeUndefined();
  }
  await reader.close();
  prompts.stop();
  expect(prompts.count()).toBe(0);
  const last = await openPopup(browser, 'Sites');
  await expect(last.getByTestId('site')).toContainText('spent SEK 0.69 of SEK 0.70');
  await last.close();
});

test('a purchase the balance cannot cover waits for a top-up and resumes after it', async () => {
  test.setTimeout(180_000);
  const second = await launchWithExtension({ build: false });
  try {
    // This wallet lives in the same (moved) time as the banks: its certificates are issued then.
    await setWalletClock(second);
    await onboard(second, world.sek.url, '10');
    const wallet = await openPopup(second);
    await expect(wallet.getByTestId('low-balance')).toBeVisible();
    await wallet.close();

    const page = await openShop(second.context, `${world.shop.url}/`);
    const windowOpened = nextConfirmWindow(second.context);
    await buyButton(page, 'two-banks').click();
    const confirm = await windowOpened;
    const topUpWindow = second.context.waitForEvent('page', { predicate: (p) => p.url().includes('popup.html?topup=1'), timeout: 30_000 });
    await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.34' }));
    // 10 SEK cannot hold a 20 SEK deposit: the wallet shows its top-up, the page keeps waiting.
    const topUp = await topUpWindow;
    await expect(topUp.getByTestId('needs-top-up')).toBeVisible({ timeout: 20_000 });
    await expect(buyElement(page, 'two-banks').getByRole('status')).not.toHaveText(/^Paid /);
    await topUp.setViewportSize({ width: 420, height: 640 });
    await topUp.screenshot({ path: `${artifacts}spending-needs-top-up.png` });
    await topUp.getByRole('textbox').first().fill('50');
    await topUp.getByRole('button', { name: 'Top up' }).click();
    // The purchase resumes by itself: paid, content unlocked, no second window.
    await expect(buyElement(page, 'two-banks').getByRole('status')).toHaveText(/^Paid /, { timeout: 30_000 });
    await expect(topUp.getByTestId('needs-top-up')).toHaveCount(0);
    await expect(topUp.getByTestId('low-balance')).toHaveCount(0);
  } finally {
    await second.close();
  }
});
