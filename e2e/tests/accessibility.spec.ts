import { writeFileSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyAndRead, buyButton, clickInWindow, nextConfirmWindow, openPopup, openShop } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * axe-core on every page a shopper sees, in the states she sees them: the popup with no account
 * and with an account, open sessions and history (each tab), onboarding (choose, top-up, ready),
 * the confirmation window, and the demo shops' pages (before and after a purchase). No page may
 * have a serious or critical violation (WCAG 2.x A/AA rules and axe's best practices). Every page
 * is saved as a screenshot in e2e/artifacts/, and axe's findings of every severity in
 * e2e/artifacts/axe-report.json.
 */

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;
let shop: Page;
const report: Record<string, Array<{ id: string; impact: string | null | undefined; help: string; nodes: string[] }>> = {};

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld();
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  writeFileSync(`${artifacts}axe-report.json`, `${JSON.stringify(report, null, 2)}\n`);
  await browser?.close();
  await world?.close();
});

/** Runs axe on the page as it is now, saves a screenshot, and expects no serious or critical violation. */
async function audit(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${artifacts}a11y-${name}.png`, fullPage: true });
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']).analyze();
  report[name] = result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`) }));
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ rule: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`) }));
  expect(serious, `${name}: serious or critical axe violations`).toEqual([]);
}

/** Every text node of the page is at least 13 px (the floor). */
async function expectTextAtLeast13px(page: Page, name: string): Promise<void> {
  const small = await page.evaluate(() => {
    const found: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || !n.textContent?.trim()) continue;
      const size = Number.parseFloat(getComputedStyle(el).fontSize);
      if (size < 13) found.push(`${el.tagName.toLowerCase()}.${el.className} ${size}px: ${n.textContent.trim().slice(0, 40)}`);
    }
    return found;
  });
  expect(small, `${name}: text under 13 px`).toEqual([]);
}

test('the popup without an account', async () => {
  const popup = await openPopup(browser);
  await expect(popup.locator('main')).toBeVisible();
  await popup.waitForLoadState('networkidle');
  await audit(popup, 'popup-no-account');
  await expectTextAtLeast13px(popup, 'popup-no-account');
  await popup.close();
});

test('onboarding: choose, top up, ready', async () => {
  const page = await browser.openPage('onboarding.html');
  await page.setViewportSize({ width: 800, height: 700 });
  await expect(page.getByRole('heading', { name: '1. Choose your bank' })).toBeVisible();
  await audit(page, 'onboarding-choose');
  await expectTextAtLeast13px(page, 'onboarding-choose');
  await page.getByLabel('operator URL').fill(world.sek.url);
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('heading', { name: '2. Add demo money' })).toBeVisible({ timeout: 20_000 });
  await audit(page, 'onboarding-top-up');
  await expectTextAtLeast13px(page, 'onboarding-top-up');
  await page.getByLabel('top-up amount').fill('100');
  await page.getByRole('button', { name: 'Top up' }).click();
  await expect(page.getByRole('heading', { name: '3. Ready' })).toBeVisible();
  await audit(page, 'onboarding-ready');
  await expectTextAtLeast13px(page, 'onboarding-ready');
  await page.close();
});

test('the demo shops’ pages', async () => {
  for (const [name, url] of [
    ['shop-news', world.shop.url],
    ['shop-downloads', world.downloads.url],
    ['shop-help', `${world.shop.url}/how-to-get-obol`],
  ] as const) {
    const page = await openShop(browser.context, url);
    await page.waitForLoadState('networkidle');
    await audit(page, name);
    await expectTextAtLeast13px(page, name);
    await page.close();
  }
});

test('the confirmation window, then the shop after a purchase', async () => {
  shop = await openShop(browser.context, world.shop.url);
  const opened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'why-micropayments').click();
  const confirm = await opened;
  await confirm.setViewportSize({ width: 420, height: 640 });
  await expect(confirm.getByRole('heading', { name: 'Pay this site for the first time?' })).toBeVisible();
  const pay = confirm.getByRole('button', { name: /^Pay / });
  await expect(pay).toBeEnabled();
  await audit(confirm, 'confirm');
  await expectTextAtLeast13px(confirm, 'confirm');
  await clickInWindow(confirm, pay);
  await expect(shop.locator('obol-buy[product="why-micropayments"]').getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
  await buyAndRead(shop, 'two-banks');
  await audit(shop, 'shop-news-after-purchase');
});

test('the popup with an account, a session and history: every tab', async () => {
  for (const tab of ['Wallet', 'Sessions', 'History', 'Sites'] as const) {
    const popup = await openPopup(browser, tab);
    await expect(popup.getByRole('tab', { name: tab })).toHaveAttribute('aria-selected', 'true');
    await popup.waitForLoadState('networkidle');
    await expect(popup.getByText('Loading…')).toHaveCount(0);
    await audit(popup, `popup-${tab.toLowerCase()}`);
    await expectTextAtLeast13px(popup, `popup-${tab.toLowerCase()}`);
    await popup.close();
  }
});
