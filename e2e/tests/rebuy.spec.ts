import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyButton, buyElement, clickInWindow, customerIdIn, nextConfirmWindow, onboard, openPopup, openShop, paywall, watchPrompts } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * Issue 14, "never pay twice by accident", with the real extension: an article bought at The Daily
 * Obol shows as bought after a reload, in a new tab, after the service worker was stopped and after
 * the session was ended and cleared; a click opens it again — delivered again by the merchant on
 * the wallet's proof — without a charge and without a confirmation window. The balance at the
 * bank, the popup's balance and the merchant's session stay as they were.
 */

test.describe.configure({ mode: 'serial' });

const BOUGHT = 'why-micropayments';
const TITLE = 'Why micropayments failed, and why they need not';
const OTHER = 'two-banks';

let world: TestWorld;
let browser: ExtensionBrowser;
let shop: Page;
let customerId: string;
let transactionId: string;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  world = await startWorld();
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** What the shopper has, as the bank and the wallet's popup say it: nothing of it may move on an open. */
async function money(): Promise<{ bank: Array<{ account: string; balance: string }>; popup: string | null }> {
  const balances = (await world.admin(world.sek, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
  const bank = balances.filter((b) => b.account === `customer:${customerId}` || b.kind === 'deposit').map(({ account, balance }) => ({ account, balance }));
  const popup = await openPopup(browser);
  await expect(popup.getByTestId('balance')).toBeVisible();
  const shown = await popup.getByTestId('balance').textContent();
  await popup.close();
  return { bank, popup: shown };
}

/** The bought article's button offers to open it (and the others still to buy); a click opens it with no window. */
async function opensAgainWithoutCharge(page: Page, screenshot?: string): Promise<void> {
  await expect(buyButton(page, BOUGHT)).toHaveText(/^✓ Bought: open/, { timeout: 20_000 });
  await expect(buyButton(page, OTHER)).toContainText('Buy');
  await expect(paywall(page, BOUGHT)).not.toHaveAttribute('unlocked', '');
  if (screenshot) await page.screenshot({ path: `${artifacts}${screenshot}`, fullPage: true });
  const before = await money();
  const merchantBefore = await world.shop.agent.session(transactionId);
  const prompts = watchPrompts(browser.context);
  await buyButton(page, BOUGHT).click();
  await expect(buyElement(page, BOUGHT).getByRole('status')).toHaveText('Opened again, not charged. The content is unlocked.', { timeout: 20_000 });
  await expect(paywall(page, BOUGHT).getByRole('region', { name: 'Purchased content' })).toContainText(TITLE);
  await expect(paywall(page, BOUGHT).getByRole('region', { name: 'Purchased content' })).toContainText('Card fees start at thirty.');
  prompts.stop();
  expect(prompts.count()).toBe(0);
  expect(await money()).toEqual(before);
  expect(await world.shop.agent.session(transactionId)).toEqual(merchantBefore);
  expect(merchantBefore).toMatchObject({ count: 1, spent: 'EUR:0.03' });
}

test('the shopper buys one article, confirming in the wallet’s window', async () => {
  await onboard(browser, world.sek.url, '100');
  const popup = await openPopup(browser);
  customerId = await customerIdIn(popup);
  await popup.close();
  shop = await openShop(browser.context, `${world.shop.url}/`);
  // Nothing bought yet (and the site not approved): every button offers to buy.
  await expect(buyButton(shop, BOUGHT)).toContainText('Buy');
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, BOUGHT).click();
  const confirm = await windowOpened;
  await clickInWindow(confirm, confirm.getByRole('button', { name: /^Pay / }));
  await expect(buyElement(shop, BOUGHT).getByRole('status')).toHaveText('Paid 0.03 EUR. The content is unlocked.', { timeout: 20_000 });
  const events = await shop.evaluate(() => (window as unknown as { widgetEvents: Array<{ type: string; detail: Record<string, unknown> }> }).widgetEvents);
  transactionId = String(events.find((e) => e.type === 'obol:paid')?.detail.transactionId);
  expect(await world.shop.agent.session(transactionId)).toMatchObject({ state: 'open', count: 1, spent: 'EUR:0.03' });
});

test('after a reload it shows as bought and opens again: no charge, no window, balance unchanged', async () => {
  await shop.reload();
  await opensAgainWithoutCharge(shop, 'rebuy-bought.png');
  await shop.screenshot({ path: `${artifacts}rebuy-opened.png`, fullPage: true });
});

test('in a new tab too', async () => {
  const tab = await openShop(browser.context, `${world.shop.url}/`);
  await opensAgainWithoutCharge(tab);
  await tab.close();
});

test('with the service worker stopped (and started again by the page’s request)', async () => {
  await browser.stopServiceWorker();
  await shop.reload();
  await opensAgainWithoutCharge(shop);
});

test('after the shopper ended the session and it was cleared', async () => {
  const popup = await openPopup(browser, 'Sessions');
  await popup.getByTestId('session').getByRole('button', { name: 'End' }).click();
  await expect(popup.getByTestId('no-sessions')).toBeVisible({ timeout: 20_000 });
  await popup.close();
  await world.shop.agent.settled();
  await expect.poll(async () => (await world.shop.agent.session(transactionId)).state, { timeout: 20_000 }).toMatch(/^(reported|cleared)$/);
  // The deposit's rest went back: no deposit is held any more.
  const held = ((await world.admin(world.sek, '/v1/admin/balances')) as Array<{ kind: string; balance: string }>).filter((b) => b.kind === 'deposit' && !b.balance.endsWith(':0.00'));
  expect(held).toEqual([]);
  await browser.stopServiceWorker();
  await shop.reload();
  await opensAgainWithoutCharge(shop);
});
