import type { Server } from 'node:http';
import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyButton, buyElement, clickInWindow, nextConfirmWindow, onboard, openPopup, openShop, paywall, widgetEvents } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * A SEK shopper on a EUR shop: the widget shows each price converted by the wallet with the
 * exchange table her own bank signed, from the wallet's cache; and when that table has expired
 * and her bank cannot be reached for a new one, she is told so instead of shown a stale number.
 *
 * The clock is the real one (the browser has no other), so the operators here publish tables that
 * live 15 s; "her bank cannot be reached" is Svea Bank's server no longer listening.
 */

test.describe.configure({ mode: 'serial' });

const LIFETIME_SEC = 15;

let world: TestWorld;
let browser: ExtensionBrowser;
let shop: Page;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld({ tableLifetimeSec: LIFETIME_SEC });
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** Svea Bank stops answering: its listener is closed and open connections are cut. */
async function cutOff(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

test('a SEK shopper sees The Daily Obol’s EUR prices in SEK, at her own bank’s signed rate', async () => {
  await onboard(browser, world.sek.url, '50');
  shop = await openShop(browser.context, `${world.shop.url}/`);
  const button = buyButton(shop, 'two-banks');
  await expect(button).toContainText('0.03 EUR');
  // Until the shopper approved the site the wallet tells it no rates: the merchant's price only.
  await expect(button).toBeEnabled();
  await expect(button).not.toContainText('SEK');
  // Her first purchase there, confirmed in the wallet's window (at her bank's rate), approves it.
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'fair-exchange').click();
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('price')).toContainText('SEK 0.34');
  await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.34' }));
  await expect(buyElement(shop, 'fair-exchange').getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
  await expect(button).toContainText('≈ 0.34 SEK'); // 0.03 / 0.0874, half-even
  await expect(button).toHaveAccessibleName(/for 0\.03 EUR\s*, about 0\.34 SEK$/);
  const popup = await openPopup(browser);
  await expect(popup.getByTestId('table-state')).toContainText(/Exchange table: (valid|refreshed)/);
  await popup.close();
});

test('the conversion comes from the wallet’s cached table: with her bank unreachable the page still shows SEK', async () => {
  await cutOff(world.sek.app.server);
  const reachable = await fetch(`${world.sek.url}/v1/exchange-table`).then(
    () => true,
    () => false,
  );
  expect(reachable).toBe(false);
  await shop.reload();
  await expect(buyButton(shop, 'two-banks')).toContainText('≈ 0.34 SEK');
  await expect(buyButton(shop, 'deposits')).toContainText('≈ 0.34 SEK');
});

test('once the table has expired and cannot be refreshed, the page and the popup say so', async () => {
  test.setTimeout(60_000);
  // The table expires at most LIFETIME_SEC after it was issued; each reload asks the wallet again.
  await expect
    .poll(
      async () => {
        await shop.reload();
        await expect(buyButton(shop, 'two-banks')).toContainText('0.03 EUR');
        return buyButton(shop, 'two-banks').textContent();
      },
      { timeout: (LIFETIME_SEC + 10) * 1000, intervals: [1000] },
    )
    .toContain('conversion out of date');
  for (const id of ['two-banks', 'deposits', 'why-micropayments']) {
    const button = buyButton(shop, id);
    await expect(button).toContainText('(conversion out of date)');
    await expect(button).not.toContainText('SEK');
  }
  await shop.screenshot({ path: `${artifacts}table-expired-shop.png`, fullPage: true });

  const popup = await openPopup(browser);
  const table = popup.getByTestId('table-state');
  await expect(table).toContainText('Exchange table: unavailable');
  await expect(table).toContainText('Exchange rates have expired and could not be refreshed');
  await popup.screenshot({ path: `${artifacts}table-expired-popup.png` });
  await popup.close();

  // Paying at an unknown rate is refused before anything is reserved: the page says why.
  const sekBooks = async () =>
    ((await world.admin(world.sek, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>).map((b) => [b.account, b.balance]).sort();
  const booksBefore = await sekBooks();
  await buyButton(shop, 'two-banks').click();
  await expect(buyElement(shop, 'two-banks').getByRole('status')).toHaveText('Currency conversion is out of date. Please try again later.');
  const failed = (await widgetEvents(shop)).filter((e) => e.type === 'obol:failed');
  expect(failed.map((e) => [e.product, e.detail?.code, e.detail?.name])).toEqual([['two-banks', 3004, 'EXCHANGE_TABLE_EXPIRED']]);
  await expect(paywall(shop, 'two-banks')).not.toHaveAttribute('unlocked', '');
  // Nothing was reserved for it: Svea Bank's books (read in-process: its listener is closed) are
  // as they were before the click (the deposit of the first purchase, nothing more).
  expect(await sekBooks()).toEqual(booksBefore);
});
