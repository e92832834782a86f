import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page, test } from '@playwright/test';
import { build } from 'vite';

/**
 * The merchant widget in headless Chromium, on a page served with a strict CSP. The wallet here
 * is a page-side stand-in (e2e/fixtures/widget/stand-in-wallet.js): a TEST DOUBLE that speaks the
 * page bridge with fixed answers, so these tests are about the widget alone. The real wallet is
 * the extension, tested on its own against the same bridge.
 */

const widgetDir = fileURLToPath(new URL('../../widget/', import.meta.url));
const bundlePath = join(widgetDir, 'dist/obol-widget.js');
const fixtures = fileURLToPath(new URL('../fixtures/widget/', import.meta.url));
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));

/** Exactly the CSP widget/README.md tells shops they can keep. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'";

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** `npm test` builds first; a spec run on its own builds the widget when dist is missing or older than src. */
async function ensureBundle(): Promise<string> {
  const stale = !existsSync(bundlePath) || statSync(bundlePath).mtimeMs < newestSource(join(widgetDir, 'src'));
  if (stale) await build({ configFile: join(widgetDir, 'vite.config.ts'), logLevel: 'warn' });
  return readFileSync(bundlePath, 'utf8');
}

type WalletMode = 'none' | 'ready' | 'late';

async function serve(bundle: string): Promise<{ server: Server; origin: string }> {
  const file = (name: string) => readFileSync(join(fixtures, name), 'utf8');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (type: string, body: string, status = 200) => {
      res.writeHead(status, { 'content-type': type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    switch (url.pathname) {
      case '/': {
        const mode = (url.searchParams.get('wallet') ?? 'none') as WalletMode;
        const q = new URLSearchParams();
        if (mode === 'late') q.set('announceDelay', '1500');
        if (url.searchParams.get('table')) q.set('table', url.searchParams.get('table') ?? '');
        const tag = mode === 'none' ? '' : `<script src="/stand-in-wallet.js?${q}" defer></script>`;
        return send('text/html; charset=utf-8', file('page.html').replace('<!--wallet-->', tag));
      }
      case '/bare': {
        const tag = url.searchParams.has('widget') ? '<script src="/obol-widget.js" data-merchant="/obol" defer></script>' : '';
        return send('text/html; charset=utf-8', `<!doctype html><html lang="en"><title>bare</title>${tag}<body></body></html>`);
      }
      case '/obol-widget.js':
        return send('text/javascript; charset=utf-8', bundle);
      case '/stand-in-wallet.js':
      case '/page.js':
        return send('text/javascript; charset=utf-8', file(url.pathname.slice(1)));
      case '/page.css':
        return send('text/css; charset=utf-8', file('page.css'));
      case '/how-to-get-obol':
        return send('text/html; charset=utf-8', '<!doctype html><title>Get Obol</title><h1>How to get the Obol wallet</h1>');
      default:
        return send('text/plain', 'not found', 404);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let server: Server;
let origin: string;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  ({ server, origin } = await serve(await ensureBundle()));
});

test.afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

/** Every CSP violation the page reports (event and console), collected from before any script runs. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  const fromConsole: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) fromConsole.push(m.text());
  });
  await page.addInitScript(() => {
    const w = window as unknown as { cspViolations: string[] };
    w.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return async () => [...fromConsole, ...(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations))];
}

const events = (page: Page) =>
  page.evaluate(() => (window as unknown as { widgetEvents: Array<{ type: string; product: string; detail: Record<string, unknown> }> }).widgetEvents);
const buy = (page: Page, product: string) => page.locator(`obol-buy[product="${product}"]`);

test('without a wallet: an honest fallback, obol:no-wallet, and nothing pretends to pay', async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto(`${origin}/`);
  const article = buy(page, 'why-micropayments');
  await expect(article.getByText('Obol wallet needed')).toBeVisible();
  await expect(article.getByText('0.03 EUR')).toBeVisible();
  await expect(article.getByRole('button')).toHaveCount(0);
  const help = article.getByRole('link', { name: 'how to get it' });
  await expect(help).toHaveAttribute('href', `${origin}/how-to-get-obol`);
  await expect.poll(async () => (await events(page)).filter((e) => e.type === 'obol:no-wallet').length).toBe(4);
  expect(await page.evaluate(() => (window as unknown as { Obol: { ready(): Promise<unknown> } }).Obol.ready())).toBeNull();
  const payError = await page.evaluate(() =>
    (window as unknown as { Obol: { pay(x: object): Promise<unknown> } }).Obol.pay({ product: 'why-micropayments', price: '0.03', currency: 'EUR' }).then(
      () => 'paid?!',
      (e: { name: string }) => e.name,
    ),
  );
  expect(payError).toBe('UNAVAILABLE');
  await expect(page.locator('obol-paywall#article').getByText('The rest of this article is for sale.')).toBeVisible();
  await help.click();
  await expect(page.getByRole('heading', { name: 'How to get the Obol wallet' })).toBeVisible();
  expect(await violations()).toEqual([]);
});

test('with a wallet: converted price, a click pays, obol:paid fires and the paywall shows the text', async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto(`${origin}/?wallet=ready`);
  const article = buy(page, 'why-micropayments');
  const button = article.getByRole('button', { name: /Buy Article: Why micropayments\? for 0\.03 EUR/ });
  await expect(button).toBeVisible();
  await expect(button).toContainText('0.03 EUR');
  await expect(button).toContainText('≈ 0.34 SEK');
  await expect(button).toHaveAccessibleName(/^Buy Article: Why micropayments\? for 0\.03 EUR\s*, about 0\.34 SEK$/);
  const quotes = await page.evaluate(() => (window as unknown as { standInWallet: { requests: Array<{ method: string; params: { prices?: string[] } }> } }).standInWallet.requests);
  expect(quotes.filter((r) => r.method === 'obol_quote')).toEqual([
    { method: 'obol_quote', params: { prices: ['EUR:0.03', 'EUR:0.50', 'EUR:0.02', 'EUR:0.90'] } },
  ]);

  // Keyboard: Tab reaches the first button (with a visible focus ring) and Enter pays.
  await page.keyboard.press('Tab');
  await expect(button).toBeFocused();
  expect(await button.evaluate((b) => getComputedStyle(b).outlineStyle)).toBe('solid');
  await page.keyboard.press('Enter');
  await expect(article.getByRole('status')).toHaveText('Paid 0.03 EUR. The content is unlocked.');
  await expect(article.getByRole('button')).toContainText('Paid');
  await expect(article.getByRole('button')).toHaveAttribute('aria-disabled', 'true');

  const pays = await page.evaluate(() => (window as unknown as { standInWallet: { requests: Array<{ method: string; params: unknown }> } }).standInWallet.requests);
  expect(pays.filter((r) => r.method === 'obol_pay')).toEqual([
    {
      method: 'obol_pay',
      params: { merchant: `${origin}/obol`, productId: 'why-micropayments', price: 'EUR:0.03', description: 'Article: Why micropayments?' },
    },
  ]);
  const paid = (await events(page)).filter((e) => e.type === 'obol:paid');
  expect(paid).toHaveLength(1);
  expect(paid[0]?.product).toBe('why-micropayments');
  expect(paid[0]?.detail).toMatchObject({ productId: 'why-micropayments', price: 'EUR:0.03', receiptId: 'stand-in-accept-1', contentType: 'text/plain; charset=utf-8' });
  expect(paid[0]?.detail).not.toHaveProperty('content');
  expect(paid[0]?.detail.text).toContain('Micropayments let you pay for exactly what you read.');

  const paywall = page.locator('obol-paywall#article');
  await expect(paywall).toHaveAttribute('unlocked', '');
  const content = paywall.getByRole('region', { name: 'Purchased content' });
  await expect(content).toContainText('Micropayments let you pay for exactly what you read.');
  await expect(content).toContainText('<script>alert("not run")</script>'); // merchant text stays text
  await expect(paywall.getByText('The rest of this article is for sale.')).toBeHidden();

  // A file: the paywall offers a download of the right name and type.
  await buy(page, 'annual-report').getByRole('button').click();
  const link = page.locator('obol-paywall[product="annual-report"]').getByRole('link', { name: /Download/ });
  await expect(link).toHaveAttribute('href', /^blob:/);
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  expect(download.suggestedFilename()).toBe('annual-report.pdf');
  expect(readFileSync(await download.path(), 'utf8')).toContain('%PDF-1.7');

  // One refusal too, so the picture shows every state a shopper meets.
  await buy(page, 'declined-story').getByRole('button').click();
  await expect(buy(page, 'declined-story').getByRole('status')).toHaveText('You declined the payment.');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'widget.png'), fullPage: true });
  expect(await violations()).toEqual([]);
});

test("a wallet error shows its sentence and fires obol:failed; the button stays usable", async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto(`${origin}/?wallet=ready`);
  const declined = buy(page, 'declined-story');
  await declined.getByRole('button').click();
  await expect(declined.getByRole('status')).toHaveText('You declined the payment.');
  await expect(declined.getByRole('button')).toHaveAttribute('aria-disabled', 'false');
  const over = buy(page, 'long-read');
  await over.getByRole('button').click();
  await expect(over.getByRole('status')).toHaveText(/over your budget for this site/);
  const failed = (await events(page)).filter((e) => e.type === 'obol:failed');
  expect(failed.map((e) => [e.product, e.detail])).toEqual([
    ['declined-story', { code: 4001, name: 'USER_REJECTED', message: 'The user rejected the request.' }],
    ['long-read', { code: 4301, name: 'OVER_BUDGET', message: 'over budget for 127.0.0.1' }],
  ]);
  await expect(page.locator('obol-paywall#article').getByText('The rest of this article is for sale.')).toBeVisible();
  expect(await violations()).toEqual([]);
});

test('a wallet that announces late replaces the fallback; an expired table says so instead of a number', async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto(`${origin}/?wallet=late&table=expired`);
  const article = buy(page, 'why-micropayments');
  await expect(article.getByText('Obol wallet needed')).toBeVisible();
  const button = article.getByRole('button');
  await expect(button).toBeVisible({ timeout: 5_000 });
  await expect(button).toContainText('conversion out of date');
  await expect(button).not.toContainText('SEK');
  expect(await violations()).toEqual([]);
});

test('the CSP watch is live: an inline style attribute would be reported', async ({ page }) => {
  const violations = await watchCsp(page);
  await page.goto(`${origin}/?wallet=ready`);
  await page.evaluate(() => document.body.setAttribute('style', 'color: red'));
  await expect.poll(async () => (await violations()).length).toBeGreaterThan(0);
});

test('window.Obol is the only global the widget adds', async ({ page }) => {
  const globals = async (path: string) => {
    await page.goto(`${origin}${path}`);
    await page.waitForFunction(() => document.readyState === 'complete');
    return page.evaluate(() => Object.getOwnPropertyNames(window));
  };
  const without = new Set(await globals('/bare'));
  const added = (await globals('/bare?widget')).filter((name) => !without.has(name));
  expect(added).toEqual(['Obol']);
  expect(await page.evaluate(() => [customElements.get('obol-buy') !== undefined, customElements.get('obol-paywall') !== undefined])).toEqual([true, true]);
});
