import { type Page, expect, test } from '@playwright/test';
import { type Answer, call, clickCall, clickCalls } from '../support/bridgePage.ts';
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
  watchPrompts,
} from '../support/shopper.ts';
import { type TestWorld, bridgeTestScript, startWorld } from '../support/world.ts';

/**
 * The consent model against hostile pages (issue 10), with the real wallet, the real shop pages
 * and the real operators. Each attack the issue saw is tried again and fails:
 *
 * 1. after one confirmation a page script, without a gesture, cannot pay; one click pays once;
 * 2. a sandboxed frame on the shop's URL is no site: refused (OPAQUE_ORIGIN), and it gets the answer;
 * 3. a site the shopper never approved learns no bank, currency or rates;
 * 4. a "no" holds across tabs and reloads until lifted in the popup; windows per minute are bounded;
 * 5. a bait product opens no window and leaves no approval, a wrong price is refused, and the
 *    window shows the merchant-signed title, the page's words only as such, bidi controls visible.
 *
 * And what held before still holds: another origin's frame is its own site, and a site's budget is
 * a ceiling under concurrent clicks.
 */

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;
let customerId: string;
let testPage: Page;

const RLO = '\u202E';

test.beforeAll(async () => {
  test.setTimeout(120_000);
  world = await startWorld({
    pages: (app) => {
      // A page of the shop that frames its own bridge test page in a sandbox without
      // allow-same-origin: the frame's URL is the shop's, its origin is opaque.
      app.get('/consent/sandboxed', async (_req, reply) =>
        reply
          .type('text/html; charset=utf-8')
          .send('<!doctype html><html><head><meta charset="utf-8"><title>sandbox</title></head><body><iframe sandbox="allow-scripts" src="/consent/frame" title="sandboxed"></iframe></body></html>'),
      );
      // The framed page: the bridge test page, allowed to be framed by its own site (the shop's
      // pages forbid framing otherwise); its script named by URL, since 'self' of an opaque
      // document is nobody's.
      app.get(
        '/consent/frame',
        {
          onSend: async (req, reply, payload) => {
            const self = `http://${req.headers.host}`;
            const port = String(req.headers.host).split(':')[1];
            reply.header('content-security-policy', `default-src 'self'; script-src ${self}/consent/frame.js; frame-ancestors http://127.0.0.1:${port} http://localhost:${port}`);
            return payload;
          },
        },
        async (_req, reply) =>
          reply
            .type('text/html; charset=utf-8')
            .send('<!doctype html><html><head><meta charset="utf-8"><title>framed</title></head><body><button id="act" type="button">Act</button><script src="/consent/frame.js"></script></body></html>'),
      );
      // The shop's page framing the same bridge test page from another origin (localhost instead
      // of 127.0.0.1: the same server, another site for the browser and the wallet).
      app.get(
        '/consent/cross',
        {
          onSend: async (req, reply, payload) => {
            const port = String(req.headers.host).split(':')[1];
            reply.header('content-security-policy', `default-src 'self'; frame-src http://localhost:${port}; frame-ancestors 'none'`);
            return payload;
          },
        },
        async (req, reply) =>
          reply
            .type('text/html; charset=utf-8')
            .send(
              `<!doctype html><html><head><meta charset="utf-8"><title>cross</title></head><body><iframe src="http://localhost:${String(req.headers.host).split(':')[1]}/consent/frame" title="other origin"></iframe></body></html>`,
            ),
      );
      app.get('/consent/frame.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(bridgeTestScript()));
    },
  });
  browser = await launchWithExtension();
  await onboard(browser, world.sek.url, '50');
  const popup = await openPopup(browser);
  customerId = await customerIdIn(popup);
  await popup.close();
  testPage = await browser.context.newPage();
  await testPage.goto(world.testPageUrl);
  await expect.poll(() => testPage.evaluate(() => (window as unknown as { obolWallets: unknown[] }).obolWallets.length)).toBeGreaterThan(0);
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

const books = async (op: TestWorld['sek']) => (await world.admin(op, '/v1/admin/balances')) as Array<{ account: string; kind: string; balance: string }>;
const customerBalance = async () => (await books(world.sek)).find((b) => b.account === `customer:${customerId}`)?.balance;
const news = (productId: string, price = 'EUR:0.03', description?: string) => ({
  merchant: world.shop.moduleUrl,
  productId,
  price,
  ...(description !== undefined ? { description } : {}),
});
/** The session the first confirmed purchase opened at the news shop. */
let newsSession = '';

test('(3) a site the shopper never approved learns that a wallet exists, and nothing of her bank, currency or rates', async () => {
  const info = await call(testPage, 'obol_getInfo', {});
  expect(info.result).toEqual({ wallet: expect.objectContaining({ rdns: 'org.obol.wallet' }), hasAccount: true });
  const quote = await call(testPage, 'obol_quote', { prices: ['EUR:0.03', 'SEK:1.00'] });
  expect(quote.result).toEqual({ tableStatus: 'withheld', quotes: [{ price: 'EUR:0.03' }, { price: 'SEK:1.00' }] });
  // The widget on the shop's own page shows the merchant's price only: no SEK anywhere.
  const shop = await openShop(browser.context, `${world.shop.url}/`);
  await expect(buyButton(shop, 'two-banks')).toContainText('0.03 EUR');
  await expect(buyButton(shop, 'two-banks')).toBeEnabled();
  await expect(shop.locator('obol-buy').first()).not.toContainText('SEK');
  expect(await shop.locator('obol-buy').allTextContents()).not.toContain(expect.stringContaining('SEK'));
  await shop.close();
});

test('(5) a bait product opens no window and leaves no approval; a price the merchant did not sign is refused', async () => {
  const prompts = watchPrompts(browser.context);
  const bait = await clickCall(testPage, 'obol_pay', news('this-is-free', 'EUR:0.01', `${RLO}eerf si sihT`));
  expect(bait.error).toMatchObject({ code: 5008, name: 'UNKNOWN_PRODUCT' });
  const cheap = await clickCall(testPage, 'obol_pay', news('two-banks', 'EUR:0.01'));
  expect(cheap.error).toMatchObject({ code: 5009, name: 'PRODUCT_MISMATCH' });
  prompts.stop();
  expect(prompts.count()).toBe(0);
  // No approval, no budget: the site still learns nothing, and the popup lists no site.
  expect((await call(testPage, 'obol_getInfo', {})).result).not.toHaveProperty('currency');
  const popup = await openPopup(browser, 'Sites');
  await expect(popup.getByText('No sites yet')).toBeVisible();
  await popup.close();
  expect(await customerBalance()).toBe('SEK:50.00');
});

test('(5) the window shows the merchant-signed title and price, the page’s words only as such with bidi controls visible, and modest defaults', async () => {
  const windowOpened = nextConfirmWindow(browser.context);
  const paid = clickCall(testPage, 'obol_pay', news('two-banks', 'EUR:0.03', `${RLO}eerf si sihT`));
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('title')).toHaveText('Two banks, one click');
  await expect(confirm.getByTestId('price')).toContainText('SEK 0.34');
  const words = confirm.getByTestId('page-words');
  await expect(words).toContainText('[U+202E]eerf si sihT');
  await expect(words).toContainText('the page’s own words');
  expect(await confirm.locator('body').textContent()).not.toContain(RLO);
  // Defaults a shopper would choose: five purchases at this price, auto-pay up to this price.
  await expect(confirm.getByLabel('Budget for this site')).toHaveValue('1.70');
  await expect(confirm.getByLabel('Pay without asking up to')).toHaveValue('0.34');
  await confirm.setViewportSize({ width: 420, height: 640 });
  await confirm.screenshot({ path: `${artifacts}consent-confirm-rtl.png` });
  await clickInWindow(confirm, confirm.getByRole('button', { name: 'Pay SEK 0.34' }));
  const answer = await paid;
  expect(answer.error).toBeUndefined();
  expect(answer.result?.productId).toBe('two-banks');
  newsSession = String(answer.result?.transactionId);
  // Approved now that the purchase succeeded: the site may know the currency.
  expect((await call(testPage, 'obol_getInfo', {})).result).toMatchObject({ currency: 'SEK', operatorId: 'op-sek' });
});

test('(1) after that confirmation a page script without a gesture cannot pay; one click pays once', async () => {
  const prompts = watchPrompts(browser.context);
  // A script on its own: within budget and auto-pay limit, and still refused, again and again.
  const scripted: Answer[] = [];
  for (const id of ['fair-exchange', 'pseudonyms', 'deposits', 'why-micropayments', 'fair-exchange']) scripted.push(await call(testPage, 'obol_pay', news(id)));
  expect(scripted.map((a) => a.error?.name)).toEqual(Array(5).fill('USER_ACTIVATION_REQUIRED'));
  expect(scripted.every((a) => a.result === undefined && a.error?.code === 4305)).toBe(true);
  // The widget's promise API called by a script: the same.
  const shop = await openShop(browser.context, `${world.shop.url}/`);
  await expect(buyButton(shop, 'fair-exchange')).toBeEnabled();
  const viaApi = await shop.evaluate(() =>
    (window as unknown as { Obol: { pay(i: unknown): Promise<unknown> } }).Obol.pay({ product: 'fair-exchange', price: '0.03', currency: 'EUR' }).then(
      () => 'paid',
      (e: { code?: number }) => e.code,
    ),
  );
  expect(viaApi).toBe(4305);
  // One real click, and the page's script tries to ride on it twice: one purchase only.
  const two = await clickCalls(testPage, [
    ['obol_pay', news('fair-exchange')],
    ['obol_pay', news('pseudonyms')],
  ]);
  expect(two.filter((a) => a.result).map((a) => a.result?.productId)).toEqual(['fair-exchange']);
  expect(two.filter((a) => a.error).map((a) => a.error?.name)).toEqual(['USER_ACTIVATION_REQUIRED']);
  // A real click on the widget's button pays (no window: within the rules the shopper set).
  await buyButton(shop, 'pseudonyms').click();
  await expect(buyElement(shop, 'pseudonyms').getByRole('status')).toHaveText(/^Paid 0\.03 EUR/, { timeout: 20_000 });
  // And after approval the widget shows the converted price.
  await expect(buyButton(shop, 'deposits')).toContainText('≈ 0.34 SEK');
  prompts.stop();
  expect(prompts.count()).toBe(0);
  await shop.close();
  // The merchant sold the confirmed purchase and the two clicked ones, nothing more.
  expect(await world.shop.agent.session(newsSession)).toMatchObject({ count: 3, spent: 'EUR:0.09' });
});

test('(2) a sandboxed frame on the shop’s URL is no site: refused with OPAQUE_ORIGIN, and it gets its answer', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${world.shop.url}/consent/sandboxed`);
  const frame = page.frames().find((f) => f.url().endsWith('/consent/frame'));
  if (!frame) throw new Error('no sandboxed frame');
  expect(await frame.evaluate(() => self.origin)).toBe('null');
  await expect.poll(() => frame.evaluate(() => (window as unknown as { obolWallets: unknown[] }).obolWallets.length)).toBeGreaterThan(0);
  const prompts = watchPrompts(browser.context);
  const info = await call(frame, 'obol_getInfo', {});
  expect(info.error).toMatchObject({ code: 4306, name: 'OPAQUE_ORIGIN' });
  // Even with a real click in the frame, within the shop's budget: refused, and answered.
  const sold = (await world.shop.agent.session(newsSession)).count;
  const paid = await clickCall(frame, 'obol_pay', news('deposits'));
  expect(paid.result).toBeUndefined();
  expect(paid.error).toMatchObject({ code: 4306, name: 'OPAQUE_ORIGIN' });
  prompts.stop();
  expect(prompts.count()).toBe(0);
  expect((await world.shop.agent.session(newsSession)).count).toBe(sold);
  await page.close();
});

test('held: another origin’s frame on the shop’s page is its own site — none of the shop’s approval, rates or receipts', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${world.shop.url}/consent/cross`);
  const frame = page.frames().find((f) => f.url().includes('localhost') && f.url().endsWith('/consent/frame'));
  if (!frame) throw new Error('no cross-origin frame');
  await expect.poll(() => frame.evaluate(() => (window as unknown as { obolWallets: unknown[] }).obolWallets.length)).toBeGreaterThan(0);
  expect((await call(frame, 'obol_getInfo', {})).result).toEqual({ wallet: expect.objectContaining({ rdns: 'org.obol.wallet' }), hasAccount: true });
  expect((await call(frame, 'obol_quote', { prices: ['EUR:0.03'] })).result).toEqual({ tableStatus: 'withheld', quotes: [{ price: 'EUR:0.03' }] });
  const prompts = watchPrompts(browser.context);
  // With a real click, for the article the shop's page bought: the shop's merchant is not
  // certified for this origin; no window, nothing paid, and none of the shop's receipt (its content) answered.
  const paid = await clickCall(frame, 'obol_pay', news('two-banks'));
  expect(paid.error).toMatchObject({ name: 'MERCHANT_NOT_TRUSTED' });
  expect(paid.result).toBeUndefined();
  prompts.stop();
  expect(prompts.count()).toBe(0);
  await page.close();
});

test('held: the site’s budget is a ceiling even for clicks in several tabs at once', async () => {
  // Spent at the news site so far: three articles, 1.03 of the 1.70 SEK budget (what the bank books
  // for 0.09 EUR): room for one more at 0.34 (two would make 1.71).
  const tabs = await Promise.all([0, 1, 2, 3].map(() => browser.context.newPage()));
  for (const tab of tabs) await tab.goto(world.testPageUrl);
  const ids = ['deposits', 'why-micropayments', 'pseudonyms', 'two-banks'];
  for (const [i, tab] of tabs.entries()) await tab.evaluate((c) => (window as unknown as { armClick(c: unknown): void }).armClick(c), [['obol_pay', news(ids[i]!)]]);
  // Windows the over-budget purchases open are closed: a "no".
  const closeWindows = (p: Page) => {
    if (p.url().includes('confirm.html')) void p.close();
  };
  browser.context.on('page', closeWindows);
  for (const tab of tabs) await tab.locator('#act').click();
  const answers = (await Promise.all(tabs.map((tab) => tab.evaluate(() => (window as unknown as { clickAnswers: Promise<Answer[]> }).clickAnswers)))).flat();
  browser.context.off('page', closeWindows);
  expect(answers.filter((a) => a.result)).toHaveLength(1);
  expect(answers.filter((a) => a.error).map((a) => a.error?.name)).toEqual(expect.arrayContaining([expect.stringMatching(/OVER_BUDGET|SITE_BLOCKED|TOO_MANY_PROMPTS|PROMPT_PENDING/)]));
  expect(await world.shop.agent.session(newsSession)).toMatchObject({ count: 4, spent: 'EUR:0.12' });
  const popup = await openPopup(browser, 'Sites');
  await expect(popup.getByTestId('site').filter({ hasText: world.shop.url })).toContainText('spent SEK 1.37 of SEK 1.70');
  await popup.close();
  for (const tab of tabs) await tab.close();
});

test('(4) a declined site opens no window from other tabs or after reloads until allowed again; windows per minute are bounded', async () => {
  const files = world.downloads.url;
  const prompts = watchPrompts(browser.context);
  const balance = await customerBalance();
  const tabA = await openShop(browser.context, `${files}/`);
  const tabB = await openShop(browser.context, `${files}/`);
  const item = 'city-skyline.svg';
  const status = (p: Page) => buyElement(p, item).getByRole('status');
  const blockedSentence = 'You turned down payments on this site. Allow it again in your Obol wallet, or try again later.';

  // The shopper declines in tab A.
  let windowOpened = nextConfirmWindow(browser.context);
  await buyButton(tabA, item).click();
  await (await windowOpened).close();
  await expect(status(tabA)).toHaveText('You declined the payment.');
  // Tab B, and tab A after a reload: no window.
  await expect(buyButton(tabB, item)).toBeEnabled();
  await buyButton(tabB, item).click();
  await expect(status(tabB)).toHaveText(blockedSentence);
  await tabA.reload();
  await expect(buyButton(tabA, item)).toBeEnabled();
  await buyButton(tabA, item).click();
  await expect(status(tabA)).toHaveText(blockedSentence);
  expect(prompts.count()).toBe(1);

  // Lifted in the popup: the site may ask again (and is declined again, twice).
  const allowAgain = async () => {
    const popup = await openPopup(browser, 'Sites');
    const row = popup.getByTestId('declined-site').filter({ hasText: files });
    await expect(row).toBeVisible();
    await popup.screenshot({ path: `${artifacts}consent-blocked-sites.png` });
    await row.getByRole('button', { name: 'Allow again' }).click();
    await expect(row).toHaveCount(0);
    await popup.close();
  };
  for (const tab of [tabB, tabA]) {
    await allowAgain();
    await tab.reload();
    await expect(buyButton(tab, item)).toBeEnabled();
    windowOpened = nextConfirmWindow(browser.context);
    await buyButton(tab, item).click();
    await (await windowOpened).close();
    await expect(status(tab)).toHaveText('You declined the payment.');
  }
  expect(prompts.count()).toBe(3);
  // A fourth window within the minute is refused, even allowed again.
  await allowAgain();
  await tabB.reload();
  await expect(buyButton(tabB, item)).toBeEnabled();
  await buyButton(tabB, item).click();
  await expect(status(tabB)).toHaveText('Your Obol wallet has asked you several times already. Wait a minute and try again.');
  prompts.stop();
  expect(prompts.count()).toBe(3);
  // Nothing was paid nor reserved at the bank for the files shop.
  expect(await customerBalance()).toBe(balance);
  await tabA.close();
  await tabB.close();
});
