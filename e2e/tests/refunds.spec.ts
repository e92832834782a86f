import { readFileSync } from 'node:fs';
import { type Page, expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { amountOf, artifacts, buyAndRead, buyButton, buyElement, clickInWindow, customerIdIn, nextConfirmWindow, onboard, openPopup, openShop } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * A refund after clearing (issue 14 item 2), with every part real: the built wallet in Chromium
 * buys two articles at The Daily Obol (EUR) with SEK from Svea Bank, ends the session (clearing),
 * then the shop refunds one article through its bank. Svea Bank credits the shopper in SEK at the
 * session's pinned rate; the popup's history shows the refund in SEK; both banks' books, billing
 * records and audits agree with it.
 */

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;
let shop: Page;
let customerId: string;
let handle: string;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld();
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

const sekBooks = async () => (await world.admin(world.sek, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
const eurBooks = async () => (await world.admin(world.eur, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
const balanceOf = async (books: () => Promise<Array<{ account: string; balance: string }>>, account: string) =>
  (await books()).find((b) => b.account === account)?.balance;

test('the shopper buys two articles and ends the session: it clears at 0.69 SEK', async () => {
  test.setTimeout(120_000);
  await onboard(browser, world.sek.url, '100');
  const popup = await openPopup(browser);
  customerId = await customerIdIn(popup);
  await popup.close();
  shop = await openShop(browser.context, `${world.shop.url}/`);
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(shop, 'why-micropayments').click();
  const confirm = await windowOpened;
  await confirm.getByLabel('Budget for this site').fill('25.00');
  await confirm.getByLabel('Pay without asking up to').fill('1.00');
  const pay = confirm.getByRole('button', { name: 'Pay SEK 0.34' });
  await expect(pay).toBeEnabled();
  await clickInWindow(confirm, pay);
  await expect(buyElement(shop, 'why-micropayments').getByRole('status')).toHaveText('Paid 0.03 EUR. The content is unlocked.', { timeout: 20_000 });
  const second = await buyAndRead(shop, 'two-banks');
  handle = String(second.transactionId);

  const sessions = await openPopup(browser, 'Sessions');
  await sessions.getByTestId('session').getByRole('button', { name: 'End' }).click();
  await expect(sessions.getByTestId('no-sessions')).toBeVisible({ timeout: 20_000 });
  await sessions.close();
  await world.shop.agent.settled();
  // Cleared at both banks: EUR 0.06 at the pinned 0.0874 is SEK 0.69 (half-even).
  await expect.poll(() => balanceOf(sekBooks, `customer:${customerId}`), { timeout: 20_000 }).toBe('SEK:99.31');
  const [row] = await world.eur.ctx.db.query<{ state: string }>('SELECT state FROM acq_transactions WHERE id = $1', [handle]);
  expect(row?.state).toBe('cleared');
});

test('the shop refunds one article through its bank; the popup, both books, the billing and the audits agree', async () => {
  test.setTimeout(120_000);
  const merchantBefore = amountOf((await balanceOf(eurBooks, 'merchant:news.example'))!);
  const refund = await world.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.03' });
  expect(refund).toMatchObject({ n: 1, amount: 'EUR:0.03', refundedTotal: 'EUR:0.03' });

  // Svea Bank credited 0.03 EUR back at the session's rate: 0.03 / 0.0874 = 0.3432 → SEK 0.34.
  await expect.poll(() => balanceOf(sekBooks, `customer:${customerId}`), { timeout: 20_000 }).toBe('SEK:99.65');
  expect(amountOf((await balanceOf(eurBooks, 'merchant:news.example'))!).value).toBe(merchantBefore.value - 3n);

  // The wallet learns of it when it next talks to its bank: the history shows it in SEK.
  const popup = await openPopup(browser, 'History');
  const shown = popup.getByTestId('refund');
  await expect(shown).toHaveCount(1, { timeout: 20_000 });
  await expect(shown).toContainText('The Daily Obol refunded SEK 0.34');
  await expect(shown).toContainText('EUR 0.03 from the shop');
  await popup.screenshot({ path: `${artifacts}refund-history.png` });
  await popup.getByRole('tab', { name: 'Wallet' }).click();
  await expect(popup.getByTestId('balance')).toHaveText('SEK 99.65', { timeout: 20_000 });
  await popup.close();

  // Billing: one refund record on each side, the shopper's in SEK, the merchant's in EUR.
  await world.sek.billing.dispatchDue();
  await world.eur.billing.dispatchDue();
  type Rec = { type: string; body: Record<string, unknown> };
  const lines = (file: string): Rec[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec);
  const sekRefunds = lines(world.billingFile('op-sek')).filter((r) => r.type === 'am.refund');
  const eurRefunds = lines(world.billingFile('op-eur')).filter((r) => r.type === 'am.refund');
  expect(sekRefunds.map((r) => [r.body.side, r.body.customerId, r.body.handle, r.body.amount, r.body.amountMerchant])).toEqual([
    ['customer', customerId, handle, 'SEK:0.34', 'EUR:0.03'],
  ]);
  expect(eurRefunds.map((r) => [r.body.side, r.body.merchantId, r.body.transactionId, r.body.amount])).toEqual([['merchant', 'news.example', handle, 'EUR:0.03']]);

  // Both banks' audits: every currency sums to zero, and the refunds are booked as recorded.
  for (const op of [world.sek, world.eur]) expect(await world.admin(op, '/v1/admin/audit')).toMatchObject({ ok: true, refundProblems: [] });

  // A second refund of more than is left is refused, and nothing moves.
  await expect(world.shop.agent.refund({ transactionId: handle, amount: 'EUR:0.04' })).rejects.toMatchObject({ name: 'AMOUNT_EXCEEDS_SIGNED' });
  expect(await balanceOf(sekBooks, `customer:${customerId}`)).toBe('SEK:99.65');
});

test('a refund before clearing: the shop refunds an article of an open session, both records agree at the lower total, the popup shows it', async () => {
  test.setTimeout(120_000);
  await buyAndRead(shop, 'fair-exchange');
  const paid = await buyAndRead(shop, 'pseudonyms');
  const openHandle = String(paid.transactionId);
  expect(openHandle).not.toBe(handle);
  // The session is open: the refund is a line the merchant signs, nothing moves yet.
  const line = await world.shop.agent.refund({ transactionId: openHandle, amount: 'EUR:0.03', n: 1 });
  expect(line).toMatchObject({ n: 1, amount: 'EUR:0.03', refundedTotal: 'EUR:0.03' });
  expect(line.line?.type).toBe('merchant.refundLine');

  // The shopper ends the session: the wallet learns the line from the shop's answer, and its
  // record says EUR 0.03 like the shop's. Cleared at EUR 0.03: SEK 0.34 of her 99.65.
  const sessions = await openPopup(browser, 'Sessions');
  await sessions.getByTestId('session').getByRole('button', { name: 'End' }).click();
  await expect(sessions.getByTestId('no-sessions')).toBeVisible({ timeout: 20_000 });
  await sessions.close();
  await world.shop.agent.settled();
  await expect.poll(() => balanceOf(sekBooks, `customer:${customerId}`), { timeout: 20_000 }).toBe('SEK:99.31');

  // The records agreed: the withdrawal and deposit records are of EUR 0.03, not flagged.
  await world.sek.billing.dispatchDue();
  await world.eur.billing.dispatchDue();
  type Rec = { type: string; body: Record<string, unknown> };
  const lines = (file: string): Rec[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec);
  const deposit = lines(world.billingFile('op-eur')).find((r) => r.type === 'am.deposit' && r.body.transactionId === openHandle);
  expect(deposit?.body).toMatchObject({ amount: 'EUR:0.03', count: 2, flagged: false });
  const withdrawal = lines(world.billingFile('op-sek')).find((r) => r.type === 'am.withdrawal' && r.body.handle === openHandle);
  expect(withdrawal?.body).toMatchObject({ amount: 'SEK:0.34', amountMerchant: 'EUR:0.03', flagged: false });

  // The history shows it with the refund after clearing, in SEK by the bank's rule (0.69 − 0.34).
  const popup = await openPopup(browser, 'History');
  const shown = popup.getByTestId('refund');
  await expect(shown).toHaveCount(2, { timeout: 20_000 });
  const before = shown.filter({ hasText: 'Taken off before the session was settled' });
  await expect(before).toHaveCount(1);
  await expect(before).toContainText('The Daily Obol refunded SEK 0.35');
  await expect(before).toContainText('EUR 0.03 from the shop');
  // The session's line: what she spent is the lowered total (as the withdrawal record says).
  await expect(popup.getByText('spent EUR 0.03 of')).toHaveCount(1);
  await before.scrollIntoViewIfNeeded();
  await popup.screenshot({ path: `${artifacts}refund-before-clearing.png` });
  await popup.close();
  for (const op of [world.sek, world.eur]) expect(await world.admin(op, '/v1/admin/audit')).toMatchObject({ ok: true, refundProblems: [] });
});
