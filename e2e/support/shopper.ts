import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Amount, parseAmount } from '@obol/protocol/money';
import { type BrowserContext, type Locator, type Page, expect } from '@playwright/test';
import type { ExtensionBrowser } from './extension.ts';

/**
 * What a shopper does with the real wallet and the real shop pages, as steps the journey specs
 * share: onboarding in the extension, the shop page with the widget, the confirmation window, the
 * popup. Everything goes through the UI a person would use; nothing here talks to the wallet or
 * the servers behind the shopper's back.
 */

export const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });

/** Onboarding as a newcomer does it: the operator's URL in the custom field, register, demo top-up. */
export async function onboard(browser: ExtensionBrowser, operatorUrl: string, topUp = '100'): Promise<void> {
  const page = await browser.openPage('onboarding.html');
  await expect(page.getByRole('heading', { name: '1. Choose your bank' })).toBeVisible();
  await page.getByLabel('operator URL').fill(operatorUrl);
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('heading', { name: '2. Add demo money' })).toBeVisible({ timeout: 20_000 });
  await page.getByLabel('top-up amount').fill(topUp);
  await page.getByRole('button', { name: 'Top up' }).click();
  await expect(page.getByRole('heading', { name: '3. Ready' })).toBeVisible();
  await page.close();
}

/** The popup (opened in a tab, as the toolbar would show it), on one of its tabs. */
export async function openPopup(browser: ExtensionBrowser, tab: 'Wallet' | 'Sessions' | 'History' | 'Sites' = 'Wallet'): Promise<Page> {
  const popup = await browser.openPage('popup.html');
  await popup.setViewportSize({ width: 400, height: 560 });
  if (tab !== 'Wallet') await popup.getByRole('tab', { name: tab }).click();
  return popup;
}

/** The customer id the popup shows ("Account c-…"). */
export async function customerIdIn(popup: Page): Promise<string> {
  // The id is in the wallet tab's details view (kept off the main screen, present while folded).
  const id = (await popup.getByTestId('customer-id').textContent())?.trim();
  if (!id) throw new Error('the popup shows no account');
  return id;
}

/**
 * Opens a shop page and records the widget's DOM events (`obol:paid`, `obol:failed`,
 * `obol:no-wallet`, which bubble out of the shadow roots) in `window.widgetEvents`. The listener
 * is added by the test harness before the page's scripts run; the shop's strict CSP stays on.
 */
export async function openShop(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await watchWidgetEvents(page);
  await page.goto(url);
  return page;
}

export async function watchWidgetEvents(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { widgetEvents: Array<{ type: string; product: string | null; detail: unknown }> };
    w.widgetEvents = [];
    for (const type of ['obol:paid', 'obol:failed', 'obol:no-wallet']) {
      document.addEventListener(type, (e) => {
        const detail = (e as CustomEvent).detail as Record<string, unknown> | null;
        w.widgetEvents.push({ type, product: (e.target as Element | null)?.getAttribute?.('product') ?? null, detail: detail ? { ...detail } : null });
      });
    }
  });
}

export interface WidgetEvent {
  type: string;
  product: string | null;
  detail: Record<string, unknown> | null;
}

export const widgetEvents = (page: Page): Promise<WidgetEvent[]> => page.evaluate(() => (window as unknown as { widgetEvents: WidgetEvent[] }).widgetEvents);

/** The real `<obol-buy>` of a product on the page. */
export const buyElement = (page: Page, product: string): Locator => page.locator(`obol-buy[product="${product}"]`);
export const buyButton = (page: Page, product: string): Locator => buyElement(page, product).getByRole('button');
export const paywall = (page: Page, product: string): Locator => page.locator(`obol-paywall[product="${product}"]`);

/** The next confirmation window the wallet opens (windows.create: a new page of the context). */
export function nextConfirmWindow(context: BrowserContext): Promise<Page> {
  return context.waitForEvent('page', { predicate: (p) => p.url().includes('confirm.html'), timeout: 20_000 });
}

/**
 * Clicks a button of the confirmation window. The window closes itself on that click (the wallet
 * closes it as it records the decision), sometimes before the click's own round trip has ended:
 * a click cut short that way did land, since nothing else closes the window.
 */
export async function clickInWindow(window: Page, button: Locator): Promise<void> {
  await expect(button).toBeEnabled();
  try {
    await button.click();
  } catch (e) {
    if (!window.isClosed()) throw e;
  }
}

/** Counts the confirmation windows opened while it watches. */
export function watchPrompts(context: BrowserContext): { count(): number; stop(): void } {
  let n = 0;
  const onPage = (p: Page) => {
    if (p.url().includes('confirm.html')) n++;
  };
  context.on('page', onPage);
  return { count: () => n, stop: () => context.off('page', onPage) };
}

/**
 * Clicks an article's buy button and waits for the widget's paid state and the unlocked paywall.
 * Returns the `obol:paid` detail of this click.
 */
export async function buyAndRead(page: Page, product: string): Promise<Record<string, unknown>> {
  const before = (await widgetEvents(page)).length;
  await buyButton(page, product).click();
  await expect(buyElement(page, product).getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
  await expect(paywall(page, product)).toHaveAttribute('unlocked', '');
  const paid = (await widgetEvents(page)).slice(before).find((e) => e.type === 'obol:paid' && e.product === product);
  if (!paid?.detail) throw new Error(`no obol:paid event for ${product}`);
  return paid.detail;
}

/**
 * "SEK:1.23", "1.23 SEK" or the popup's English display "SEK 1.23" (Intl, with a no-break space;
 * thousands grouped by commas) → amount in minor units.
 */
export function amountOf(text: string): Amount {
  const t = text.trim().replace(/\s+/g, ' ');
  const after = /^(-?[\d.,]+) ([A-Z]{3})$/.exec(t);
  const before = /^(-?)([A-Z]{3}) ?(-?[\d.,]+)$/.exec(t);
  if (after) return parseAmount(`${after[2]}:${after[1]!.replace(/,/g, '')}`);
  if (before) return parseAmount(`${before[2]}:${before[1]}${before[3]!.replace(/,/g, '')}`);
  return parseAmount(t);
}

/** Minor units of one currency, summed. */
export function total(currency: string, amounts: Amount[]): bigint {
  return amounts.reduce((sum, a) => {
    if (a.currency !== currency) throw new Error(`${a.currency} amount in a ${currency} sum`);
    return sum + a.value;
  }, 0n);
}
