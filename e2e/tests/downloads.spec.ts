import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { systemClock } from '@obol/protocol/clock';
import { type Locator, type Page, expect, test } from '@playwright/test';
import { downloadsCatalogue } from '../../backend/src/demo/catalogues.ts';
import { shopPages } from '../../backend/src/demo/shopPages.ts';
import { type Shop, startShop } from '../../backend/src/world/shop.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import {
  artifacts,
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
  widgetEvents,
} from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * Digital goods through secure delivery (FIG 4), in the browser: at Obol Downloads (SEK, at Svea
 * Bank) the wallet checks the merchant's signed encrypted file against the signed description it
 * chose, accepts (the moment it pays), gets the key, decrypts and checks the content; the page
 * offers the file. And at a second shop whose delivery does not match its own catalogue entry,
 * the wallet refuses before it accepts: nothing is charged.
 */

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;
let tampered: Shop;
let customerId: string;
let downloadsTransaction: string;
/** What the tampered shop's server saw: its accepts (there must be none). */
const tamperedAccepts: string[] = [];

const catalogue = downloadsCatalogue('SEK');
const fileOf = async (id: string) => (await catalogue.get(id))!.content;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64url');

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld();
  // A second files shop at Svea Bank, with the same catalogue, whose server swaps the signed
  // description in every delivery for another product's (genuinely signed by the merchant, but
  // not the entry the shopper chose): what it delivers is not what its catalogue entry says.
  tampered = await startShop({
    merchantId: 'files.example',
    name: 'Files Galore',
    operatorUrl: world.sek.url,
    operatorId: 'op-sek',
    currency: 'SEK',
    adminToken: world.adminToken,
    catalogue: downloadsCatalogue('SEK'),
    clock: systemClock,
    sweepIntervalMs: 0,
    pages: async (app, agent) => {
      await shopPages(app, { title: 'Files Galore', tagline: 'Files, said to be the ones you chose.', products: () => agent.products(), kind: 'file' });
      app.addHook('onRequest', async (req) => {
        if (req.url === '/obol/accept') tamperedAccepts.push(req.url);
      });
      app.addHook('onSend', async (req, _reply, payload) => {
        if (req.method !== 'POST' || req.url !== '/obol/order' || typeof payload !== 'string') return payload;
        const delivery = JSON.parse(payload) as { productId?: string; description?: unknown };
        if (!delivery.productId) return payload; // a refusal passes as it is
        const other = delivery.productId === 'rates-2026.csv' ? 'city-skyline.svg' : 'rates-2026.csv';
        return JSON.stringify({ ...delivery, description: await agent.description(other) });
      });
    },
  });
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await tampered?.close();
  await world?.close();
});

const sekBooks = async () => (await world.admin(world.sek, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
const balanceOf = async (account: string) => (await sekBooks()).find((b) => b.account === account)?.balance;

/** Clicks a button or link that offers a file and returns the file the browser saved. */
async function fileFromButton(page: Page, button: Locator): Promise<{ name: string; bytes: Buffer }> {
  const [file] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
}

/** Clicks the paywall's download link and returns the file the browser saved. */
async function download(page: Page, product: string): Promise<{ name: string; bytes: Buffer }> {
  const link = paywall(page, product).getByRole('link', { name: `Download ${product}` });
  await expect(link).toHaveAttribute('href', /^blob:/);
  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
}

test('a file bought at Obol Downloads: confirmed once, checked, decrypted, and the same bytes as the catalogue’s file', async () => {
  await onboard(browser, world.sek.url, '50');
  const popup = await openPopup(browser);
  customerId = await customerIdIn(popup);
  await popup.close();

  const shop = await openShop(browser.context, `${world.downloads.url}/`);
  await expect(shop.getByRole('heading', { name: 'Obol Downloads', level: 1 })).toBeVisible();
  await expect(buyButton(shop, 'city-skyline.svg')).toContainText('0.40 SEK');
  await expect(paywall(shop, 'city-skyline.svg').getByText('The file is for sale.')).toBeVisible();

  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'city-skyline.svg').click();
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('merchant-id')).toHaveText('downloads.example');
  await expect(confirm.getByTestId('price')).toContainText('SEK 0.40');
  await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.40' }));
  await expect(buyElement(shop, 'city-skyline.svg').getByRole('status')).toHaveText('Paid 0.40 SEK. The content is unlocked.', { timeout: 20_000 });

  const skyline = await download(shop, 'city-skyline.svg');
  expect(skyline.name).toBe('city-skyline.svg');
  expect(skyline.bytes.equals(Buffer.from(await fileOf('city-skyline.svg')))).toBe(true);
  const paid = (await widgetEvents(shop)).filter((e) => e.type === 'obol:paid');
  expect(paid[0]?.detail).toMatchObject({ productId: 'city-skyline.svg', price: 'SEK:0.40', contentType: 'image/svg+xml', contentHash: sha256(await fileOf('city-skyline.svg')) });

  // The second file: within the budget the first click set, no prompt.
  const prompts = watchPrompts(browser.context);
  await buyButton(shop, 'rates-2026.csv').click();
  await expect(buyElement(shop, 'rates-2026.csv').getByRole('status')).toHaveText('Paid 0.15 SEK. The content is unlocked.', { timeout: 20_000 });
  prompts.stop();
  expect(prompts.count()).toBe(0);
  const rates = await download(shop, 'rates-2026.csv');
  expect(rates.bytes.equals(Buffer.from(await fileOf('rates-2026.csv')))).toBe(true);
  expect(rates.bytes.toString('utf8')).toMatch(/^month,SEK_per_EUR,EUR_per_SEK\n2026-01,/);
  await shop.screenshot({ path: `${artifacts}downloads-shop.png`, fullPage: true });

  // The receipts in the popup, and the merchant's count: two purchases, 0.55 SEK.
  const history = await openPopup(browser, 'History');
  const receipts = history.getByTestId('receipt');
  await expect(receipts).toHaveCount(2);
  await expect(receipts.filter({ hasText: 'city-skyline.svg' })).toContainText('SEK 0.40');
  await expect(receipts.filter({ hasText: 'rates-2026.csv' })).toContainText('SEK 0.15');
  // Each receipt names the product by its signed title; the file is offered again under its name.
  await expect(receipts.filter({ hasText: 'rates-2026.csv' }).getByTestId('receipt-title')).toHaveText('Exchange rates 2026');
  const again = await fileFromButton(history, receipts.filter({ hasText: 'rates-2026.csv' }).getByRole('button', { name: 'Download rates-2026.csv' }));
  expect(again.name).toBe('rates-2026.csv');
  expect(again.bytes.equals(Buffer.from(await fileOf('rates-2026.csv')))).toBe(true);
  await history.screenshot({ path: `${artifacts}downloads-history.png`, fullPage: true });
  await history.close();
  downloadsTransaction = String(paid[0]?.detail?.transactionId);
  expect(await world.downloads.agent.session(downloadsTransaction)).toMatchObject({ count: 2, spent: 'SEK:0.55' });
});

test('a shop whose delivery does not match its own signed catalogue entry is refused before the accept: nothing charged', async () => {
  const before = await balanceOf(`customer:${customerId}`);
  const shop = await openShop(browser.context, `${tampered.url}/`);
  await expect(buyButton(shop, 'city-skyline.svg')).toContainText('0.40 SEK');
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'city-skyline.svg').click();
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('merchant-id')).toHaveText('files.example');
  await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.40' }));

  // The page is told: the payment did not go through, with the wallet's code.
  await expect(buyElement(shop, 'city-skyline.svg').getByRole('status')).toHaveText('The payment did not go through. Please try again.', { timeout: 20_000 });
  const failed = (await widgetEvents(shop)).filter((e) => e.type === 'obol:failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]?.detail).toMatchObject({ code: 5009, name: 'PRODUCT_MISMATCH' });
  expect(String(failed[0]?.detail?.message)).toContain('is not the one the shopper chose');
  await expect(paywall(shop, 'city-skyline.svg')).not.toHaveAttribute('unlocked', '');
  await expect(paywall(shop, 'city-skyline.svg').getByText('The file is for sale.')).toBeVisible();
  expect((await widgetEvents(shop)).filter((e) => e.type === 'obol:paid')).toEqual([]);

  // No accept ever reached the shop, so it has nothing to claim; no receipt in the wallet.
  expect(tamperedAccepts).toEqual([]);
  const history = await openPopup(browser, 'History');
  await expect(history.getByTestId('receipt')).toHaveCount(2);
  await expect(history.getByTestId('receipt').filter({ hasText: 'Files Galore' })).toHaveCount(0);
  await history.close();

  // The deposit opened for the click goes back whole when the session ends.
  const sessions = await openPopup(browser, 'Sessions');
  const session = sessions.getByTestId('session').filter({ hasText: 'Files Galore' });
  await expect(session).toContainText('0 purchases');
  await session.getByRole('button', { name: 'End' }).click();
  await expect(sessions.getByTestId('session').filter({ hasText: 'Files Galore' })).toHaveCount(0, { timeout: 20_000 });
  await sessions.close();
  await tampered.agent.settled();
  // Svea Bank is both banks here (customer side `deposit:`, acquirer side `acq-deposit:`, reserved deposits in its books): only the
  // Obol Downloads session, still open, holds a deposit. The acquirer side knows it by the trade
  // handle the page was told; the customer side by its TransactionIdentity, which it maps.
  const [mapped] = await world.sek.ctx.db.query<{ id: string }>('SELECT id FROM am_transactions WHERE trade_handle = $1', [downloadsTransaction]);
  await expect
    .poll(async () => (await sekBooks()).filter((b) => b.kind === 'deposit' && !b.balance.endsWith(':0.00')).map((b) => b.account), { timeout: 20_000 })
    .toEqual([`acq-deposit:${downloadsTransaction}`, `deposit:${mapped?.id}`]);
  expect(await balanceOf(`customer:${customerId}`)).toBe(before);
  expect(await balanceOf('merchant:files.example')).toBe('SEK:0.00');
  for (const op of [world.sek, world.eur]) expect(await world.admin(op, '/v1/admin/audit')).toMatchObject({ ok: true });
});

test('a Markdown booklet is a file: offered for download under its name, on the page and in the receipts, never shown inline', async () => {
  const shop = await openShop(browser.context, `${world.downloads.url}/`);
  const booklet = 'fair-exchange-booklet.md';
  // Within the budget the first purchase set: no window.
  await buyButton(shop, booklet).click();
  await expect(buyElement(shop, booklet).getByRole('status')).toHaveText(/^Paid /, { timeout: 20_000 });
  const file = await download(shop, booklet);
  expect(file.name).toBe(booklet);
  expect(file.bytes.equals(Buffer.from(await fileOf(booklet)))).toBe(true);
  expect(file.bytes.toString('utf8')).toMatch(/^# The fair exchange\n/);
  // Not inline text: the page shows the download link, not the Markdown.
  await expect(paywall(shop, booklet).getByText('# The fair exchange')).toHaveCount(0);
  await expect(paywall(shop, booklet).locator('pre, article')).toHaveCount(0);
  await shop.close();

  const history = await openPopup(browser, 'History');
  const receipt = history.getByTestId('receipt').filter({ hasText: booklet });
  await expect(receipt.getByTestId('receipt-title')).toHaveText('The fair exchange, a booklet');
  await expect(receipt.getByRole('button', { name: 'Show' })).toHaveCount(0);
  const again = await fileFromButton(history, receipt.getByRole('button', { name: `Download ${booklet}` }));
  expect(again.name).toBe(booklet);
  expect(again.bytes.equals(file.bytes)).toBe(true);
  await history.close();
});
