import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Page, expect, test } from '@playwright/test';
import { call, clickCall } from '../support/bridgePage.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * The wallet extension in headless Chromium against real operators and a real shop: onboarding,
 * the confirmation window of a first purchase, a second purchase without a prompt, a stopped
 * service worker in the middle of a session, and the popup's session with its End button.
 */
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;
let shopPage: Page;

/** Holds the shop's answers to one merchant-module path while a test stops the service worker. */
const hold: { path?: string; seen?: () => void; release?: Promise<void> } = {};

test.beforeAll(async () => {
  // Two operators, two shops and Chromium: as in the other specs, room for a loaded machine.
  test.setTimeout(120_000);
  world = await startWorld({
    pages: (app) => {
      app.addHook('onRequest', async (req) => {
        if (hold.path && req.url.startsWith(hold.path) && hold.release) {
          hold.seen?.();
          await hold.release;
        }
      });
    },
  });
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

function text(base64url: string): string {
  return Buffer.from(base64url, 'base64url').toString('utf8');
}

test('onboarding: register at the test operator, top up, and the popup shows the balance', async () => {
  const page = await browser.openPage('onboarding.html');
  await expect(page.getByRole('heading', { name: '1. Choose your bank' })).toBeVisible();
  await expect(page.getByText('Svea Bank (SEK)')).toBeVisible(); // the demo operators are offered
  await page.getByLabel('operator URL').fill(world.sek.url);
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('heading', { name: '2. Add demo money' })).toBeVisible({ timeout: 20_000 });
  await page.getByLabel('top-up amount').fill('100');
  await page.getByRole('button', { name: 'Top up' }).click();
  await expect(page.getByTestId('balance')).toHaveText('SEK 100.00');
  await page.close();

  const popup = await browser.openPage('popup.html');
  await expect(popup.getByTestId('balance')).toHaveText('SEK 100.00');
  await expect(popup.getByTestId('table-state')).toContainText(/Exchange table: (valid|refreshed)/);
  await popup.setViewportSize({ width: 400, height: 520 });
  await popup.screenshot({ path: `${artifacts}popup-balance.png` });
  await popup.close();
});

test('the page finds the wallet; until the shopper approves the site it learns nothing of her bank, currency or rates', async () => {
  shopPage = await browser.context.newPage();
  await shopPage.goto(world.testPageUrl);
  await expect.poll(() => shopPage.evaluate(() => (window as unknown as { obolWallets: Array<{ rdns: string }> }).obolWallets.map((w) => w.rdns))).toContain('org.obol.wallet');
  const info = await call(shopPage, 'obol_getInfo', {});
  expect(info.result).toEqual({ wallet: expect.objectContaining({ rdns: 'org.obol.wallet' }), hasAccount: true });
  const quote = await call(shopPage, 'obol_quote', { prices: ['EUR:0.03', 'SEK:1.00'] });
  expect(quote.result).toEqual({ tableStatus: 'withheld', quotes: [{ price: 'EUR:0.03' }, { price: 'SEK:1.00' }] });
  // A method outside the public surface never reaches the wallet.
  const refused = await Promise.race([
    call(shopPage, 'overview', {}),
    new Promise<'ignored'>((resolve) => setTimeout(() => resolve('ignored'), 1500)),
  ]);
  expect(refused).toBe('ignored');
});

test('the first purchase at a site opens a confirmation window; only its click pays', async () => {
  const windowOpened = browser.context.waitForEvent('page', { predicate: (p) => p.url().includes('confirm.html') });
  const paid = call(shopPage, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'two-banks', price: 'EUR:0.03' });
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('merchant-id')).toHaveText('news.example');
  await expect(confirm.getByTestId('origin')).toHaveText(world.shop.url);
  await expect(confirm.getByTestId('price')).toContainText('SEK 0.34');
  await expect(confirm.getByTestId('price')).toContainText('EUR 0.03');
  await expect(confirm.getByTestId('deposit')).toContainText('SEK 20.00');
  await confirm.getByLabel('Budget for this site').fill('5.00');
  await confirm.getByLabel('Pay without asking up to').fill('1.00');
  const pay = confirm.getByRole('button', { name: /^Pay/ });
  await expect(pay).toBeEnabled();
  await confirm.setViewportSize({ width: 420, height: 560 });
  await confirm.screenshot({ path: `${artifacts}confirm-window.png` });
  // The window closes itself once it has paid, sometimes before the click's own bookkeeping ends.
  await pay.click().catch((e: unknown) => {
    if (!confirm.isClosed()) throw e;
  });
  const answer = await paid;
  expect(answer.error).toBeUndefined();
  expect(answer.result?.productId).toBe('two-banks');
  expect(text(answer.result?.content as string)).toContain('Two banks, one click');
});

test('once a confirmed purchase succeeded, the site gets prices in the shopper’s currency', async () => {
  const info = await call(shopPage, 'obol_getInfo', {});
  expect(info.result).toMatchObject({ hasAccount: true, currency: 'SEK', operatorId: 'op-sek' });
  const quote = await call(shopPage, 'obol_quote', { prices: ['EUR:0.03', 'SEK:1.00'] });
  expect(quote.result?.tableStatus).toMatch(/valid|refreshed/);
  expect(quote.result?.quotes).toEqual([
    { price: 'EUR:0.03', converted: 'SEK:0.34' },
    { price: 'SEK:1.00', converted: 'SEK:1.00' },
  ]);
});

test('a second purchase within the budget goes through without a prompt, on the shopper’s click on the page', async () => {
  let prompted = false;
  const onPage = (p: Page) => {
    if (p.url().includes('confirm.html')) prompted = true;
  };
  browser.context.on('page', onPage);
  const answer = await clickCall(shopPage, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'fair-exchange', price: 'EUR:0.03' });
  browser.context.off('page', onPage);
  expect(answer.error).toBeUndefined();
  expect(answer.result?.n).toBe(2);
  expect(prompted).toBe(false);
});

test('the service worker stopped in the middle of a session: the next purchase still works, no purchase is paid twice', async () => {
  const before = (await clickCall(shopPage, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'pseudonyms', price: 'EUR:0.03' })).result;
  expect(before?.n).toBe(3);
  await browser.stopServiceWorker();
  const after = await clickCall(shopPage, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'deposits', price: 'EUR:0.03' });
  expect(after.error).toBeUndefined();
  expect(after.result?.transactionId).toBe(before?.transactionId);
  expect(after.result?.n).toBe(4);

  // Stopped with a purchase in flight: the accept is signed, stored and on its way when the worker
  // stops. The content script sends the request again; the wallet resends the very same accept and
  // the page gets its article, charged once.
  let release = () => {};
  const seen = new Promise<void>((resolve) => {
    hold.seen = resolve;
  });
  hold.release = new Promise<void>((resolve) => {
    release = resolve;
  });
  hold.path = '/obol/accept';
  const inFlight = clickCall(shopPage, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'why-micropayments', price: 'EUR:0.03' });
  await seen;
  await browser.stopServiceWorker();
  hold.path = undefined;
  release();
  const answer = await inFlight;
  expect(answer.error).toBeUndefined();
  expect(answer.result?.n).toBe(5);
  expect(text(answer.result?.content as string)).toContain('Why micropayments failed');
  const session = await world.shop.agent.session(before?.transactionId as string);
  expect(session.count).toBe(5);
  expect(session.spent).toBe('EUR:0.15');
});

test('the popup shows the open session with the deposit left and ends it with End', async () => {
  const popup = await browser.openPage('popup.html');
  await popup.setViewportSize({ width: 400, height: 520 });
  await popup.getByRole('tab', { name: 'Sessions' }).click();
  const session = popup.getByTestId('session');
  await expect(session).toHaveCount(1);
  await expect(session).toContainText('The Daily Obol');
  await expect(session.getByTestId('deposit-left')).toContainText('EUR');
  await expect(session.getByTestId('time-left')).toContainText('min');
  await popup.screenshot({ path: `${artifacts}popup-session.png` });
  await session.getByRole('button', { name: 'End' }).click();
  await expect(popup.getByTestId('no-sessions')).toBeVisible({ timeout: 20_000 });
  await popup.getByRole('tab', { name: 'History' }).click();
  await expect(popup.getByTestId('receipt').first()).toBeVisible();
  await popup.screenshot({ path: `${artifacts}popup-history.png` });
  await popup.close();
});
