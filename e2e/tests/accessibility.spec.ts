import { readFileSync, writeFileSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, extensionDir, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyAndRead, buyButton, clickInWindow, nextConfirmWindow, openShop } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * axe-core on every page a shopper sees, in the states she sees them: the popup with no account
 * and with an account, open sessions and history (each tab), onboarding (choose, top-up, ready),
 * the confirmation window, and the demo shops' pages (before and after a purchase). No page may
 * have a serious or critical violation (WCAG 2.x A/AA rules and axe's best practices). All of it
 * twice: with the browser in English and in Swedish (the wallet's `_locales`; Swedish words are
 * longer, and the amounts and dates follow the locale). Every page is saved as a screenshot in
 * e2e/artifacts/ (a11y-<page>.png in English, a11y-sv-<page>.png in Swedish), and axe's findings
 * of every severity in e2e/artifacts/axe-report.json.
 */

test.describe.configure({ mode: 'serial' });

const report: Record<string, Array<{ id: string; impact: string | null | undefined; help: string; nodes: string[] }>> = {};
test.afterAll(() => writeFileSync(`${artifacts}axe-report.json`, `${JSON.stringify(report, null, 2)}\n`));

/** The wallet's own words in one language, by message key (as the browser would pick them). */
function wordsIn(language: string): (key: string, ...subs: string[]) => string {
  const messages = JSON.parse(readFileSync(`${extensionDir}/public/_locales/${language}/messages.json`, 'utf8')) as Record<string, { message: string }>;
  return (key, ...subs) => {
    const text = messages[key]?.message;
    if (text === undefined) throw new Error(`no message ${key} in ${language}`);
    return text.replace(/\$(\d)/g, (_, n: string) => subs[Number(n) - 1] ?? '');
  };
}

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

for (const language of ['en', 'sv'] as const) {
  test.describe(language === 'en' ? 'in English' : 'in Swedish', () => {
    const w = wordsIn(language);
    const page = (name: string) => (language === 'en' ? name : `sv-${name}`);
    let world: TestWorld;
    let browser: ExtensionBrowser;
    let shop: Page;

    test.beforeAll(async () => {
      test.setTimeout(120_000);
      world = await startWorld();
      browser = await launchWithExtension({ language });
    });

    test.afterAll(async () => {
      await browser?.close();
      await world?.close();
    });

    /** The popup on one of its tabs (`tab`: the message key of its label). */
    async function popupOn(tab: 'tab_wallet' | 'tab_sessions' | 'tab_history' | 'tab_sites'): Promise<Page> {
      const popup = await browser.openPage('popup.html');
      await popup.setViewportSize({ width: 400, height: 560 });
      await popup.getByRole('tab', { name: w(tab), exact: true }).click();
      await expect(popup.getByRole('tab', { name: w(tab), exact: true })).toHaveAttribute('aria-selected', 'true');
      await popup.waitForLoadState('networkidle');
      await expect(popup.getByText(w('loading'))).toHaveCount(0);
      return popup;
    }

    test('the popup without an account', async () => {
      const popup = await browser.openPage('popup.html');
      await expect(popup.locator('main')).toBeVisible();
      await popup.waitForLoadState('networkidle');
      await expect(popup.locator('html')).toHaveAttribute('lang', language === 'en' ? /^en/ : /^sv/);
      await expect(popup.getByText(w('overview_noAccount'))).toBeVisible();
      await audit(popup, page('popup-no-account'));
      await expectTextAtLeast13px(popup, page('popup-no-account'));
      await popup.close();
    });

    test('onboarding: choose, top up, ready', async () => {
      const onboarding = await browser.openPage('onboarding.html');
      await onboarding.setViewportSize({ width: 800, height: 700 });
      await expect(onboarding.getByRole('heading', { name: w('onboarding_chooseHeading') })).toBeVisible();
      await audit(onboarding, page('onboarding-choose'));
      await expectTextAtLeast13px(onboarding, page('onboarding-choose'));
      await onboarding.getByLabel(w('onboarding_operatorUrl')).fill(world.sek.url);
      await onboarding.getByRole('button', { name: w('onboarding_create') }).click();
      await expect(onboarding.getByRole('heading', { name: w('onboarding_topUpHeading') })).toBeVisible({ timeout: 20_000 });
      await audit(onboarding, page('onboarding-top-up'));
      await expectTextAtLeast13px(onboarding, page('onboarding-top-up'));
      await onboarding.getByLabel(w('onboarding_topUpAmount')).fill('100');
      await onboarding.getByRole('button', { name: w('onboarding_topUp'), exact: true }).click();
      await expect(onboarding.getByRole('heading', { name: w('onboarding_readyHeading') })).toBeVisible();
      // The balance in the locale's own way: "SEK 100.00" in English, "100,00 SEK" in Swedish.
      await expect(onboarding.getByTestId('balance')).toHaveText(language === 'en' ? 'SEK 100.00' : '100,00 SEK');
      await audit(onboarding, page('onboarding-ready'));
      await expectTextAtLeast13px(onboarding, page('onboarding-ready'));
      await onboarding.close();
    });

    test('the demo shops’ pages', async () => {
      for (const [name, url] of [
        ['shop-news', world.shop.url],
        ['shop-downloads', world.downloads.url],
        ['shop-help', `${world.shop.url}/how-to-get-obol`],
      ] as const) {
        const shopPage = await openShop(browser.context, url);
        await shopPage.waitForLoadState('networkidle');
        await audit(shopPage, page(name));
        await expectTextAtLeast13px(shopPage, page(name));
        await shopPage.close();
      }
    });

    test('the confirmation window, then the shop after a purchase', async () => {
      shop = await openShop(browser.context, world.shop.url);
      const opened = nextConfirmWindow(browser.context);
      await buyButton(shop, 'why-micropayments').click();
      const confirm = await opened;
      await confirm.setViewportSize({ width: 420, height: 640 });
      await expect(confirm.getByRole('heading', { name: w('confirm_title_first') })).toBeVisible();
      // The words a shopper uses: the product's signed title, her bank by name, every figure
      // with its currency, and what "pay without asking up to" means (per purchase).
      await expect(confirm.getByTestId('title')).toHaveText('Why micropayments failed, and why they need not');
      await expect(confirm.getByTestId('price')).toContainText(language === 'en' ? 'SEK 0.34' : '0,34 SEK');
      await expect(confirm.getByTestId('price')).toContainText(language === 'en' ? 'EUR 0.03' : '0,03 EUR');
      await expect(confirm.getByText(w('confirm_autoPayField', 'SEK'))).toBeVisible();
      await expect(confirm.getByText(w('confirm_autoPayMeans'))).toBeVisible();
      // The amount fields in the locale's decimal mark too (the wallet reads either back).
      await expect(confirm.getByLabel(w('confirm_budgetField', 'SEK'))).toHaveValue(language === 'en' ? '1.70' : '1,70');
      await expect(confirm.locator('main')).toContainText('Svea Bank');
      await expect(confirm.getByTestId('product-id')).toBeHidden(); // ids only in the details view
      const pay = confirm.getByRole('button', { name: w('confirm_pay', language === 'en' ? 'SEK 0.34' : '0,34 SEK') });
      await expect(pay).toBeEnabled();
      await audit(confirm, page('confirm'));
      await expectTextAtLeast13px(confirm, page('confirm'));
      await clickInWindow(confirm, pay);
      await expect(shop.locator('obol-buy[product="why-micropayments"]').getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
      await buyAndRead(shop, 'two-banks');
      await audit(shop, page('shop-news-after-purchase'));
    });

    test('the popup with an account, a session and history: every tab', async () => {
      for (const tab of ['tab_wallet', 'tab_sessions', 'tab_history', 'tab_sites'] as const) {
        const popup = await popupOn(tab);
        const name = page(`popup-${tab.slice(4)}`);
        if (tab === 'tab_wallet') {
          await expect(popup.getByText(w('overview_balanceAt', 'Svea Bank'))).toBeVisible();
          await expect(popup.getByTestId('customer-id')).toBeHidden(); // in the details view
        }
        if (tab === 'tab_history') {
          const receipts = popup.getByTestId('receipt');
          await expect(receipts).toHaveCount(2);
          await expect(receipts.getByTestId('receipt-title').first()).toBeVisible();
          await expect(popup.getByTestId('receipt-transaction').first()).toBeHidden();
          await expect(receipts.first()).toContainText(language === 'en' ? /EUR\s0\.03|SEK\s0\.34/ : /0,03\sEUR|0,34\sSEK/);
        }
        await audit(popup, name);
        await expectTextAtLeast13px(popup, name);
        if (tab === 'tab_history') {
          // The details view, opened: the ids are there for whoever needs them.
          await popup.getByTestId('receipt').first().getByText(w('details'), { exact: true }).click();
          await expect(popup.getByTestId('receipt-transaction').first()).toBeVisible();
          await audit(popup, page('popup-history-details'));
        }
        await popup.close();
      }
    });
  });
}
