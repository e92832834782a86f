import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { freePort } from '../../backend/src/world/shop.ts';
import { type InstalledMerchant, installedMerchant } from '../../merchant/test/support/installedPackage.ts';
import { repoRoot } from '../support/build.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts, buyButton, buyElement, clickInWindow, nextConfirmWindow, onboard, openShop, paywall } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * The README's merchant path, from the published package: `npm pack`, installed from the tarball
 * in an empty folder outside the repository; there `npx obol merchant init`, the demo's Banque
 * Euro registers the shop, `npx obol merchant serve` serves the blog's own static page with the
 * widget script the package ships, products come in with `npx obol merchant add-product`; a SEK
 * shopper with the real extension buys an article and a file; `npx obol merchant sales` shows both.
 */
test.describe.configure({ mode: 'serial' });

const run = promisify(execFile);
const repoObol = join(repoRoot, 'backend', 'bin', 'obol.js');

let pkg: InstalledMerchant;
let world: TestWorld;
let browser: ExtensionBrowser;
let site = '';
let publicUrl = '';
let server: ChildProcess | undefined;

/** `npx obol …` in the merchant's folder: the installed package's command. */
const npxObol = async (...args: string[]) => (await run('npx', ['--no-install', 'obol', ...args], { cwd: site, timeout: 60_000 })).stdout;

test.beforeAll(async () => {
  test.setTimeout(420_000);
  pkg = await installedMerchant();
  world = await startWorld();
  site = await mkdtemp(join(pkg.dir, 'site-'));
  publicUrl = `http://127.0.0.1:${await freePort()}`;

  await npxObol(
    'merchant', 'init', '--dir', 'shop', '--merchant-id', 'blog.example', '--name', 'A Small Blog', '--operator', world.eur.url,
    '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', publicUrl,
  );
  // The operator's side, with the operator's command (this repository's).
  await run(process.execPath, [repoObol, 'register-merchant', '--operator', world.eur.url, '--admin-token', world.adminToken, '--request', join(site, 'shop', 'registration-request.json'), '--out', join(site, 'shop', 'registration.json')]);
  await mkdir(join(site, 'shop', 'pages'));
  await writeFile(
    join(site, 'shop', 'pages', 'index.html'),
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
  const config = join(site, 'shop', 'shop.json');
  await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), pages: 'pages' }));

  // What `npx obol merchant serve` runs, started without npx between: SIGTERM reaches the server.
  server = spawn(pkg.obol, ['merchant', 'serve', '--config', 'shop/shop.json'], { cwd: site, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const read = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('serving at')) resolve();
    };
    server?.stdout?.on('data', read);
    server?.stderr?.on('data', read);
    server?.once('exit', (code) => reject(new Error(`obol merchant serve exited (${code}): ${out}`)));
  });
  await writeFile(join(site, 'field-notes.md'), '# Field notes\n\nWhat the birds did this spring.\n');
  await npxObol('merchant', 'add-product', '--config', 'shop', '--id', 'first-post', '--title', 'First post', '--price', 'EUR:0.05', '--text', 'Hello from a small blog: the rest of the first post.');
  await npxObol('merchant', 'add-product', '--config', 'shop', '--id', 'field-notes', '--title', 'Field notes', '--price', 'EUR:0.20', '--file', 'field-notes.md', '--description', 'Spring field notes (Markdown)');
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await world?.close();
  if (site) await rm(site, { recursive: true, force: true });
});

test('a shopper buys an article and a file on a page served by the installed package; its sales show both', async () => {
  await onboard(browser, world.sek.url, '20');
  const page = await openShop(browser.context, `${publicUrl}/`);
  await expect(page.getByRole('heading', { name: 'A Small Blog', level: 1 })).toBeVisible();
  await expect(buyButton(page, 'field-notes')).toContainText('0.20 EUR');

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

  await buyButton(page, 'first-post').click();
  await expect(buyElement(page, 'first-post').getByRole('status')).toHaveText('Paid 0.05 EUR. The content is unlocked.', { timeout: 20_000 });
  await expect(paywall(page, 'first-post')).toContainText('the rest of the first post');
  await page.screenshot({ path: `${artifacts}merchant-package-blog.png`, fullPage: true });

  const report = JSON.parse(await npxObol('merchant', 'sales', '--config', 'shop', '--json')) as { purchases: number; total: string; byProduct: unknown[] };
  expect(report).toMatchObject({ purchases: 2, total: 'EUR:0.25' });
  expect(report.byProduct).toEqual([
    { key: 'field-notes', purchases: 1, amount: 'EUR:0.20' },
    { key: 'first-post', purchases: 1, amount: 'EUR:0.05' },
  ]);
  const text = await npxObol('merchant', 'sales', '--config', 'shop');
  expect(text).toContain('Sold: 2 purchases, EUR:0.25');
});
