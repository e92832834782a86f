import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { freePort } from '../../backend/src/world/shop.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyButton, buyElement, clickInWindow, nextConfirmWindow, onboard, openShop, paywall, watchPrompts } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * A merchant's whole path in the browser, with the real extension: a blog with no server of its
 * own makes its shop folder with `obol merchant init`, the demo's Banque Euro registers it from
 * the signed request, `obol merchant serve` serves the blog's static page, the widget script and
 * the module; products come in from the command line; a SEK shopper buys an article and a file
 * there; the merchant's `sales` and its dashboard show both.
 */
test.describe.configure({ mode: 'serial' });

const run = promisify(execFile);
const obol = fileURLToPath(new URL('../../backend/bin/obol.js', import.meta.url));
const cli = async (...args: string[]) => (await run(process.execPath, [obol, ...args], { timeout: 60_000 })).stdout;

let world: TestWorld;
let browser: ExtensionBrowser;
let dir = '';
let shopDir = '';
let publicUrl = '';
let server: ChildProcess | undefined;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  world = await startWorld();
  dir = await mkdtemp(join(tmpdir(), 'obol-blog-'));
  shopDir = join(dir, 'shop');
  publicUrl = `http://127.0.0.1:${await freePort()}`;

  await cli(
    'merchant', 'init', '--dir', shopDir, '--merchant-id', 'blog.example', '--name', 'A Small Blog', '--operator', world.eur.url,
    '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', publicUrl,
  );
  await cli('register-merchant', '--operator', world.eur.url, '--admin-token', world.adminToken, '--request', join(shopDir, 'registration-request.json'), '--out', join(shopDir, 'registration.json'));
  await mkdir(join(shopDir, 'pages'));
  await writeFile(
    join(shopDir, 'pages', 'index.html'),
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A Small Blog</title>
<script src="${publicUrl}/obol/obol-widget.js" defer></script></head>
<body><main><h1>A Small Blog</h1>
<article><h2>First post</h2>
<obol-buy product="first-post" price="0.05" currency="EUR" description="First post" for="post"></obol-buy>
<obol-paywall id="post" product="first-post"><p>The rest of this post is for sale.</p></obol-paywall></article>
<article><h2>Field notes</h2>
<obol-buy product="field-notes" price="0.20" currency="EUR" description="Field notes (Markdown)" for="notes"></obol-buy>
<obol-paywall id="notes" product="field-notes" filename="field-notes.md"><p>The file is for sale.</p></obol-paywall></article>
</main></body></html>`,
  );
  const config = join(shopDir, 'shop.json');
  await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), pages: 'pages' }));

  // `obol merchant serve`, as the merchant runs it: a process of its own.
  server = spawn(process.execPath, [obol, 'merchant', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    server?.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('serving at')) resolve();
    });
    server?.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    server?.once('exit', (code) => reject(new Error(`obol merchant serve exited (${code}): ${out}`)));
  });
  const notes = join(dir, 'field-notes.md');
  await writeFile(notes, '# Field notes\n\nWhat the birds did this spring.\n');
  await cli('merchant', 'add-product', '--config', shopDir, '--id', 'first-post', '--title', 'First post', '--price', 'EUR:0.05', '--text', 'Hello from a small blog: the rest of the first post.');
  await cli('merchant', 'add-product', '--config', shopDir, '--id', 'field-notes', '--title', 'Field notes', '--price', 'EUR:0.20', '--file', notes, '--description', 'Spring field notes (Markdown)');
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  await world?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a shopper buys an article and a file on the blog’s own page, served by obol merchant serve', async () => {
  await onboard(browser, world.sek.url, '20');
  const page = await openShop(browser.context, `${publicUrl}/`);
  await expect(page.getByRole('heading', { name: 'A Small Blog', level: 1 })).toBeVisible();
  await expect(buyButton(page, 'field-notes')).toContainText('0.20 EUR');

  // The file first: the confirmation window for a first payment at this site.
  const windowOpened = nextConfirmWindow(browser.context);
  await buyButton(page, 'field-notes').click();
  const confirm = await windowOpened;
  await expect(confirm.getByTestId('merchant-id')).toHaveText('blog.example');
  await clickInWindow(confirm, confirm.getByRole('button', { name: /^Pay SEK\s[0-9.]+$/ }));
  await expect(buyElement(page, 'field-notes').getByRole('status')).toHaveText('Paid 0.20 EUR. The content is unlocked.', { timeout: 20_000 });
  const link = paywall(page, 'field-notes').getByRole('link', { name: /Download/ });
  const [file] = await Promise.all([page.waitForEvent('download'), link.click()]);
  expect(file.suggestedFilename()).toBe('field-notes.md');
  expect(await readFile(await file.path(), 'utf8')).toBe('# Field notes\n\nWhat the birds did this spring.\n');

  // Then the article: cheaper than what the first click allowed, so no window.
  const prompts = watchPrompts(browser.context);
  await buyButton(page, 'first-post').click();
  await expect(buyElement(page, 'first-post').getByRole('status')).toHaveText('Paid 0.05 EUR. The content is unlocked.', { timeout: 20_000 });
  await expect(paywall(page, 'first-post')).toContainText('the rest of the first post');
  prompts.stop();
  expect(prompts.count()).toBe(0);
  await page.screenshot({ path: `${artifacts}merchant-blog.png`, fullPage: true });
});

test('the merchant’s sales and its dashboard show both sales', async () => {
  const report = JSON.parse(await cli('merchant', 'sales', '--config', shopDir, '--json')) as { purchases: number; total: string; byProduct: unknown[] };
  expect(report).toMatchObject({ purchases: 2, total: 'EUR:0.25' });
  expect(report.byProduct).toEqual([
    { key: 'field-notes', purchases: 1, amount: 'EUR:0.20' },
    { key: 'first-post', purchases: 1, amount: 'EUR:0.05' },
  ]);

  const page = await browser.context.newPage();
  await page.goto(`${publicUrl}/obol/admin/`);
  await expect(page.getByRole('heading', { name: 'Sales', level: 1 })).toBeVisible();
  await page.getByLabel('Shop admin token (from shop.json)').fill('not-the-token-0123456789');
  await page.getByRole('button', { name: 'Show sales' }).click();
  await expect(page.getByRole('alert')).toContainText('admin token');
  const token = (JSON.parse(await readFile(join(shopDir, 'shop.json'), 'utf8')) as { adminToken: string }).adminToken;
  await page.getByLabel('Shop admin token (from shop.json)').fill(token);
  await page.getByRole('button', { name: 'Show sales' }).click();
  await expect(page.getByText('Sold: 2 purchases, EUR:0.25.')).toBeVisible();
  await expect(page.locator('#products tr')).toHaveCount(2);
  await expect(page.locator('#products tr').first()).toContainText('field-notes');
  await expect(page.locator('#chart rect')).toHaveCount(1);
  const axe = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
  await page.screenshot({ path: `${artifacts}merchant-dashboard.png`, fullPage: true });
});
