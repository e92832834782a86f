import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import {
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
  paywall,
  watchPrompts,
  watchWidgetEvents,
  widgetEvents,
} from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * What the wallet refuses, and how the page learns it: a browser with no wallet gets the honest
 * fallback; a page script that imitates the widget gets a confirmation window it cannot click,
 * and no money; a purchase over the site's budget asks, and a "no" charges nothing and tells the
 * page why. The real wallet, the real shop page, the real operators.
 */

test.describe.configure({ mode: 'serial' });

type Answer = { id: string; result?: Record<string, unknown>; error?: { code: number; name: string; message: string } };

let world: TestWorld;
let browser: ExtensionBrowser;
let customerId: string;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld();
  browser = await launchWithExtension();
  await onboard(browser, world.sek.url, '50');
  const popup = await openPopup(browser);
  customerId = await customerIdIn(popup);
  await popup.close();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

const books = async (op: TestWorld['sek']) => (await world.admin(op, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
const balanceOf = async (op: TestWorld['sek'], account: string) => (await books(op)).find((b) => b.account === account)?.balance;
const heldDeposits = async () =>
  [...(await books(world.sek)), ...(await books(world.eur))].filter((b) => b.kind === 'deposit' && !b.balance.endsWith(':0.00')).map((b) => b.account);

/** The bridge call of the test page's own script (`window.obolCall`, written without the widget). */
function call(page: Page, method: string, params: unknown): Promise<Answer> {
  return page.evaluate(
    ([m, p]) => (window as unknown as { obolCall(m: string, p: unknown): Promise<Answer> }).obolCall(m as string, p),
    [method, params] as const,
  );
}

test('a browser without the wallet: the shop page shows the honest fallback, and nothing pretends to pay', async ({ page }) => {
  // The test's default browser: the same Chromium and flags, no extension loaded.
  await watchWidgetEvents(page);
  await page.goto(`${world.shop.url}/`);
  const article = buyElement(page, 'why-micropayments');
  await expect(article.getByText('Obol wallet needed')).toBeVisible();
  await expect(article.getByText('0.03 EUR')).toBeVisible();
  await expect(page.locator('obol-buy').getByRole('button')).toHaveCount(0);
  await expect.poll(async () => (await widgetEvents(page)).filter((e) => e.type === 'obol:no-wallet').length).toBe(5);
  await expect(paywall(page, 'why-micropayments').getByText('The rest of this article is for sale.')).toBeVisible();
  await page.screenshot({ path: `${artifacts}no-wallet-shop.png`, fullPage: true });
  await article.getByRole('link', { name: 'how to get it' }).click();
  await expect(page.getByRole('heading', { name: 'Getting the Obol wallet' })).toBeVisible();
  await expect(page.getByText('Load unpacked')).toBeVisible();
});

test('a page script that imitates the widget cannot pay without the shopper’s click in the wallet’s window', async () => {
  const before = await balanceOf(world.sek, `customer:${customerId}`);
  // The shop's /bridge-test page: its own script speaks the bridge (window.obolCall), no widget,
  // no click by anyone — what an injected script on a shop's origin could do.
  const page = await browser.context.newPage();
  await page.goto(world.testPageUrl);
  await expect.poll(() => page.evaluate(() => (window as unknown as { obolWallets: unknown[] }).obolWallets.length)).toBeGreaterThan(0);

  const windowOpened = nextConfirmWindow(browser.context);
  const attempt = call(page, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'deposits', price: 'EUR:0.03' });
  const confirm = await windowOpened;
  await expect(confirm.getByRole('heading', { name: 'Pay this site for the first time?' })).toBeVisible();
  await expect(confirm.getByTestId('origin')).toHaveText(world.shop.url);

  // The script tries the wallet's private calls too: the bridge does not carry them.
  const forged = await Promise.race([
    call(page, 'decide', { id: 'any', accept: true }),
    new Promise<'ignored'>((resolve) => setTimeout(() => resolve('ignored'), 1500)),
  ]);
  expect(forged).toBe('ignored');
  // While the window waits, nothing is paid, nor reserved: no deposit is held at either bank, the
  // merchant has nothing, the page has no answer.
  expect(await heldDeposits()).toEqual([]);
  const pending = await Promise.race([attempt.then(() => 'answered'), new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 500))]);
  expect(pending).toBe('waiting');
  expect(await balanceOf(world.eur, 'merchant:news.example')).toBe('EUR:0.00');

  // The shopper closes the window without a click: that is a no.
  await confirm.close();
  const answer = await attempt;
  expect(answer.result).toBeUndefined();
  expect(answer.error).toMatchObject({ code: 4001, name: 'USER_REJECTED' });
  // The site asks no more (no second window), from this page load or after a reload, until the
  // shopper allows it again in the popup.
  const prompts = watchPrompts(browser.context);
  const again = await call(page, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'deposits', price: 'EUR:0.03' });
  expect(again.error).toMatchObject({ code: 4304, name: 'SITE_BLOCKED' });
  await page.reload();
  const reloaded = await call(page, 'obol_pay', { merchant: world.shop.moduleUrl, productId: 'deposits', price: 'EUR:0.03' });
  expect(reloaded.error).toMatchObject({ code: 4304, name: 'SITE_BLOCKED' });
  prompts.stop();
  expect(prompts.count()).toBe(0);
  await page.close();
  const popup = await openPopup(browser, 'Sites');
  await popup.getByTestId('declined-site').filter({ hasText: world.shop.url }).getByRole('button', { name: 'Allow again' }).click();
  await expect(popup.getByTestId('declined-site')).toHaveCount(0);
  await popup.close();

  // Still nothing reserved, nothing moved.
  await world.shop.agent.settled();
  await expect.poll(heldDeposits, { timeout: 20_000 }).toEqual([]);
  expect(await balanceOf(world.sek, `customer:${customerId}`)).toBe(before);
  expect(await balanceOf(world.eur, 'merchant:news.example')).toBe('EUR:0.00');
});

test('over the site’s budget the wallet asks; declined, nothing is charged and the page is told why', async () => {
  const shop = await openShop(browser.context, `${world.shop.url}/`);
  // First purchase at the site: the shopper allows 0.70 SEK here, i.e. two articles.
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'why-micropayments').click();
  const first = await windowOpened;
  await first.getByLabel('Budget for this site').fill('0.70');
  await first.getByLabel('Pay without asking up to').fill('0.50');
  await clickInWindow(first, first.getByRole('button', { name: 'Pay SEK 0.34' }));
  await expect(buyElement(shop, 'why-micropayments').getByRole('status')).toHaveText('Paid 0.03 EUR. The content is unlocked.', { timeout: 20_000 });
  const transactionId = String((await buyAndRead(shop, 'two-banks')).transactionId);

  // The third would make 1.02 SEK: the wallet asks.
  const overBudget = nextConfirmWindow(browser.context);
  await buyButton(shop, 'fair-exchange').click();
  const ask = await overBudget;
  await expect(ask.getByRole('heading', { name: 'This purchase is over the site’s budget' })).toBeVisible();
  await expect(ask.getByTestId('site-budget')).toHaveText('spent SEK 0.69 of SEK 0.70; pay without asking up to SEK 0.50 per purchase');
  await expect(ask.getByRole('button', { name: 'Pay SEK 0.34' })).toBeEnabled();
  await ask.setViewportSize({ width: 420, height: 640 });
  await ask.screenshot({ path: `${artifacts}over-budget-confirm.png` });
  await clickInWindow(ask, ask.getByRole('button', { name: 'Decline' }));

  const status = buyElement(shop, 'fair-exchange').getByRole('status');
  // She declined: the page says so (the budget was only why she was asked).
  await expect(status).toHaveText('You declined the payment.');
  const failed = (await widgetEvents(shop)).filter((e) => e.type === 'obol:failed');
  expect(failed.map((e) => [e.product, e.detail?.code, e.detail?.name])).toEqual([['fair-exchange', 4001, 'USER_REJECTED']]);
  await expect(paywall(shop, 'fair-exchange')).not.toHaveAttribute('unlocked', '');
  await expect(buyElement(shop, 'fair-exchange').getByRole('button')).toHaveAttribute('aria-disabled', 'false');
  await shop.screenshot({ path: `${artifacts}over-budget-shop.png`, fullPage: true });

  // Nothing charged: the merchant has the two purchases only, the wallet two receipts, the site
  // 0.69 SEK spent of its 0.70 (the bank's figure for 0.06 EUR).
  expect(await world.shop.agent.session(transactionId)).toMatchObject({ count: 2, spent: 'EUR:0.06' });
  const popup = await openPopup(browser, 'Sites');
  await expect(popup.getByTestId('site')).toContainText('spent SEK 0.69 of SEK 0.70');
  await popup.getByRole('tab', { name: 'History' }).click();
  await expect(popup.getByTestId('receipt')).toHaveCount(2);
  await popup.close();
});
