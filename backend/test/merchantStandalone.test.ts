import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MerchantPaths, OperatorPaths } from '@obol/protocol/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPage } from '../src/merchant/doctor.ts';
import type { SalesReport } from '../src/merchant/sales.ts';
import { loadShopFolder, verifyRegistration } from '../src/merchant/setup.ts';
import { type MerchantServer, startMerchantServer } from '../src/merchant/standalone.ts';
import { freePort } from '../src/world/shop.ts';
import { type TwoOperators, twoOperators } from './support/twoOperators.ts';

/**
 * A merchant's whole path without writing code: `obol merchant init` makes the shop's folder, the
 * operator registers it from the signed request (`obol register-merchant --request`), `obol
 * merchant serve`'s server sells from it with the shop's own pages and the widget script, products
 * come in with `obol merchant add-product --config`, and `obol merchant sales` shows what sold.
 */
const run = promisify(execFile);
const obol = fileURLToPath(new URL('../bin/obol.js', import.meta.url));
const cli = async (...args: string[]) => (await run(process.execPath, [obol, ...args], { timeout: 60_000 })).stdout;
const cliFails = async (...args: string[]) => {
  try {
    await run(process.execPath, [obol, ...args], { timeout: 60_000 });
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    return `${stdout ?? ''}${stderr ?? ''}`;
  }
  throw new Error(`obol ${args.join(' ')} should have failed`);
};

/** The doctor's GET, plain fetch. */
const getText = async (url: string) => {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
};

let t: TwoOperators;
let dir = '';
let shopDir = '';
let port = 0;
let server: MerchantServer | undefined;
const shopLog: string[] = [];

beforeAll(async () => {
  t = await twoOperators('PGlite');
  dir = await mkdtemp(join(tmpdir(), 'obol-merchant-'));
  shopDir = join(dir, 'my-blog');
  port = await freePort();
}, 60_000);
afterAll(async () => {
  await server?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a merchant from init to the first sale', () => {
  const publicUrl = () => `http://127.0.0.1:${port}`;

  it('init writes the key (owner only), the configuration and a registration request signed by that key', async () => {
    const out = await cli(
      'merchant', 'init', '--dir', shopDir, '--merchant-id', 'blog.example', '--name', 'A Small Blog', '--operator', t.eur.url,
      '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', publicUrl(),
    );
    expect(out).toContain('register-merchant');
    expect(out).toContain(`<script src="${publicUrl()}/obol/obol-widget.js" defer></script>`);
    for (const file of ['merchant.key.json', 'data.key.json', 'shop.json']) expect((await stat(join(shopDir, file))).mode & 0o777).toBe(0o600);
    const request = JSON.parse(await readFile(join(shopDir, 'registration-request.json'), 'utf8'));
    expect(await verifyRegistration(request, 'op-eur')).toMatchObject({ merchantId: 'blog.example', url: `${publicUrl()}/obol`, origins: [publicUrl()] });
    // A second init in the same folder would orphan a registered key.
    expect(await cliFails('merchant', 'init', '--dir', shopDir, '--merchant-id', 'x', '--name', 'X', '--operator', t.eur.url, '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', publicUrl())).toContain('exists already');
  });

  it('the operator registers it from the request, and only a request signed by its key and meant for it', async () => {
    const requestFile = join(shopDir, 'registration-request.json');
    const request = JSON.parse(await readFile(requestFile, 'utf8'));
    const forged = join(dir, 'forged.json');
    await writeFile(forged, JSON.stringify({ ...request, body: { ...request.body, origins: ['https://evil.example'] } }));
    expect(await cliFails('register-merchant', '--operator', t.eur.url, '--admin-token', t.world.adminToken, '--request', forged)).toContain('BAD_SIGNATURE');
    expect(await cliFails('register-merchant', '--operator', t.sek.url, '--admin-token', t.world.adminToken, '--request', requestFile)).toContain('UNKNOWN_OPERATOR');
    expect(await cliFails('register-merchant', '--operator', t.eur.url, '--admin-token', t.world.adminToken, '--request', requestFile, '--merchant-id', 'x')).toContain('not both');

    const out = await cli('register-merchant', '--operator', t.eur.url, '--admin-token', t.world.adminToken, '--request', requestFile, '--out', join(shopDir, 'registration.json'));
    expect(out).toContain('registered');
    const registration = JSON.parse(await readFile(join(shopDir, 'registration.json'), 'utf8'));
    expect(registration).toMatchObject({ merchantId: 'blog.example' });
  });

  it('serves the shop’s own pages, the widget script, and nothing outside its pages folder', async () => {
    await mkdir(join(shopDir, 'pages'));
    const page = `<!doctype html><title>A Small Blog</title><script src="${publicUrl()}/obol/obol-widget.js" defer></script><obol-buy product="field-notes" price="0.05" currency="EUR"></obol-buy>`;
    await writeFile(join(shopDir, 'pages', 'index.html'), page);
    const widget = join(dir, 'widget.js');
    await writeFile(widget, 'console.log("the widget")');
    const configFile = join(shopDir, 'shop.json');
    await writeFile(configFile, JSON.stringify({ ...JSON.parse(await readFile(configFile, 'utf8')), pages: 'pages' }));
    server = await startMerchantServer(await loadShopFolder(shopDir), {
      clock: t.clock,
      logStream: { write: (line) => void shopLog.push(line) },
      sweepIntervalMs: 0,
      widgetScript: widget,
    });

    const home = await fetch(`${publicUrl()}/`);
    expect(home.headers.get('content-type')).toContain('text/html');
    expect(await home.text()).toBe(page);
    const script = await fetch(`${publicUrl()}/obol${MerchantPaths.widget}`);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(script.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(await script.text()).toBe('console.log("the widget")');
    for (const path of ['/../shop.json', '/%2e%2e/shop.json', '/..%2fmerchant.key.json', '/%00', '/nothing-here.html']) {
      const res = await fetch(`${publicUrl()}${path}`);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(await res.text(), path).not.toContain('"kty"');
    }
    expect((await fetch(`${publicUrl()}/healthz`)).status).toBe(200);
  });

  it('sells an article and a file added from the command line, and its sales show both', async () => {
    const notes = join(dir, 'field-notes.md');
    await writeFile(notes, '# Field notes\n\nWhat the birds did this spring.\n');
    await cli('merchant', 'add-product', '--config', shopDir, '--id', 'field-notes', '--title', 'Field notes', '--price', 'EUR:0.05', '--file', notes, '--description', 'Spring field notes (Markdown)');
    await cli('merchant', 'add-product', '--config', join(shopDir, 'shop.json'), '--id', 'first-post', '--title', 'First post', '--price', 'EUR:0.02', '--text', 'Hello from a small blog.');

    const shopper = t.newShopper();
    const account = await shopper.register(t.sek.url);
    await shopper.login();
    await t.admin(t.sek, OperatorPaths.adminFund, { customerId: account.customerId, amount: 'SEK:20.00' });
    const merchantUrl = `${publicUrl()}/obol`;
    const file = await shopper.buy({ merchantUrl, productId: 'field-notes', price: 'EUR:0.05', origin: publicUrl() });
    expect(new TextDecoder().decode(file.content)).toBe(await readFile(notes, 'utf8'));
    const article = await shopper.buy({ merchantUrl, productId: 'first-post', price: 'EUR:0.02', origin: publicUrl() });
    // A page that shows another price than the catalogue's, or a product the shop does not have:
    // the shopper is refused and charged nothing; the reason is exact (the widget writes it to
    // the console), and what reaches the shop is in its log.
    await expect(shopper.buy({ merchantUrl, productId: 'first-post', price: 'EUR:0.20', origin: publicUrl() })).rejects.toMatchObject({
      name: 'PRODUCT_MISMATCH',
      message: expect.stringMatching(/EUR:0\.02.*EUR:0\.20|EUR:0\.20.*EUR:0\.02/),
    });
    await expect(shopper.buy({ merchantUrl, productId: 'second-post', price: 'EUR:0.02', origin: publicUrl() })).rejects.toMatchObject({ name: 'UNKNOWN_PRODUCT' });
    const told = shopLog.map((l) => JSON.parse(l) as { level: number; code?: string; msg: string }).filter((l) => l.code !== undefined);
    expect(told).toEqual([expect.objectContaining({ level: 40, code: 'UNKNOWN_PRODUCT', msg: expect.stringContaining('there is no product second-post') })]);
    expect(new TextDecoder().decode(article.content)).toBe('Hello from a small blog.');

    const report = JSON.parse(await cli('merchant', 'sales', '--config', shopDir, '--json')) as SalesReport;
    expect(report).toMatchObject({ currency: 'EUR', purchases: 2, total: 'EUR:0.07' });
    expect(report.byProduct).toEqual([
      { key: 'field-notes', purchases: 1, amount: 'EUR:0.05' },
      { key: 'first-post', purchases: 1, amount: 'EUR:0.02' },
    ]);
    expect(report.byDay).toEqual([{ key: new Date(t.clock.now()).toISOString().slice(0, 10), purchases: 2, amount: 'EUR:0.07' }]);
    // Two sessions: each deposit here covers one purchase (the first was closed when it was used up).
    expect(report.sessions.reduce((n, x) => n + x.count, 0)).toBe(2);
    expect(report.sessions.map((x) => x.spent).sort()).toEqual(['EUR:0.02', 'EUR:0.05']);
    const text = await cli('merchant', 'sales', '--config', shopDir);
    expect(text).toContain('Sold: 2 purchases, EUR:0.07');
    expect(text).toContain('field-notes');

    // The same as a dashboard page for the merchant's browser: it holds nothing itself, runs no
    // inline script, and reads the sales with the token the merchant types in.
    const dashboard = await fetch(`${merchantUrl}/admin`);
    expect(dashboard.url).toBe(`${merchantUrl}/admin/`);
    expect(dashboard.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await dashboard.text();
    expect(html).toContain('<script src="dashboard.js" defer></script>');
    expect(html).not.toContain(JSON.parse(await readFile(join(shopDir, 'shop.json'), 'utf8')).adminToken);
    expect((await fetch(`${merchantUrl}/admin/dashboard.js`)).headers.get('content-type')).toContain('javascript');

    // The sales are the shop's administration's, no one else's.
    expect((await fetch(`${merchantUrl}${MerchantPaths.adminSales}`)).status).toBe(401);
    expect((await fetch(`${merchantUrl}${MerchantPaths.adminSales}`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
  });

  it('doctor passes the good page and names each setup mistake of a bad one', async () => {
    const good = await cli('merchant', 'doctor', '--page', `${publicUrl()}/`);
    expect(good).not.toContain('✗');
    expect(good).toContain('"Field notes" at EUR:0.05, as in the catalogue');
    expect(good).toContain('All good');

    await writeFile(
      join(shopDir, 'pages', 'broken.html'),
      `<script src="${publicUrl()}/obol/obol-widget.js" defer></script>
       <obol-buy product="field-notes" price="0.50" currency="EUR"></obol-buy>
       <obol-buy product="no-such-thing" price="0.05" currency="EUR"></obol-buy>
       <obol-buy product='first-post' price='0.02' currency='SEK'></obol-buy>`,
    );
    const bad = await checkPage(`${publicUrl()}/broken.html`, getText, t.clock.now());
    const failures = bad.filter((f) => !f.ok).map((f) => f.says);
    expect(failures).toEqual([
      expect.stringContaining('the page says EUR:0.50, the catalogue EUR:0.05'),
      expect.stringContaining('no-such-thing">: no such product in the catalogue (it has: '),
      expect.stringContaining('currency="SEK", but the shop sells in EUR'),
    ]);
    // Another origin than the certified one (the same server, reached by another name).
    const elsewhere = await checkPage(`http://localhost:${port}/`, getText, t.clock.now());
    expect(elsewhere.filter((f) => !f.ok).map((f) => f.says)).toEqual([expect.stringContaining(`origin http://localhost:${port} is not certified for blog.example`)]);
    // A page whose module path is wrong.
    await writeFile(join(shopDir, 'pages', 'lost.html'), `<script src="${publicUrl()}/obol/obol-widget.js" data-merchant="/shop" defer></script>`);
    const lost = await checkPage(`${publicUrl()}/lost.html`, getText, t.clock.now());
    expect(lost.at(-1)).toEqual({ ok: false, says: expect.stringContaining(`the merchant module is not at ${publicUrl()}/shop`) });
    expect(await cliFails('merchant', 'doctor', '--page', `${publicUrl()}/broken.html`)).toContain('3 problems to fix before going live');
  });

  it('says what is missing when the shop is not registered yet', async () => {
    const other = join(dir, 'unregistered');
    await cli('merchant', 'init', '--dir', other, '--merchant-id', 'new.example', '--name', 'New', '--operator', t.eur.url, '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', 'https://new.example');
    await expect(startMerchantServer(await loadShopFolder(other), { logger: false })).rejects.toThrow(/not registered yet.*register-merchant/s);
    expect(await cliFails('merchant', 'serve', '--config', join(dir, 'nowhere', 'shop.json'))).toContain('obol merchant init');
  });
});
