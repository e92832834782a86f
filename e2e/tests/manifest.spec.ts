import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, expect, test } from '@playwright/test';
import { chromiumArgs, chromiumPath } from '../chromium.ts';
import { repoRoot } from '../support/build.ts';
import { ensureExtensionBuilt, extensionDist } from '../support/extension.ts';
import { bridgeTestPage, bridgeTestScript } from '../support/world.ts';

/**
 * The manifest a production build ships (no OBOL_DEMO): the content script on https pages only —
 * none of the demo's http://127.0.0.1 and http://localhost patterns —, the icons at 16, 32, 48
 * and 128 px as real PNGs of those sizes, and no wallet in private windows. Loaded in Chromium it
 * starts, and a plain-http page on this machine does not find it. The demo build (extension/dist,
 * OBOL_DEMO=1, what the other specs load) adds the demo's hosts and nothing else.
 */

interface Manifest {
  icons?: Record<string, string>;
  action?: { default_icon?: Record<string, string> };
  content_scripts: Array<{ matches: string[] }>;
  incognito?: string;
  host_permissions?: string[];
  permissions?: string[];
}

const SIZES = ['16', '32', '48', '128'];
let prodDir: string;

test.beforeAll(() => {
  test.setTimeout(120_000);
  prodDir = mkdtempSync(join(tmpdir(), 'obol-extension-prod-'));
  const env: NodeJS.ProcessEnv = { ...process.env, OBOL_EXTENSION_OUT_DIR: prodDir };
  delete env.OBOL_DEMO;
  execFileSync('npm', ['run', 'build', '-w', 'extension', '--silent'], { cwd: repoRoot, stdio: 'inherit', env });
  ensureExtensionBuilt();
});

test.afterAll(() => rmSync(prodDir, { recursive: true, force: true }));

const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): [number, number] {
  const b = readFileSync(file);
  expect(b.subarray(0, 8).toString('hex'), `${file} is a PNG`).toBe('89504e470d0a1a0a');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

test('the production manifest: https pages only, icons at 16/32/48/128 px, not in private windows', () => {
  const m = manifestOf(prodDir);
  expect(m.content_scripts.map((cs) => cs.matches)).toEqual([['https://*/*']]);
  expect(JSON.stringify(m)).not.toMatch(/http:\/\/|127\.0\.0\.1|localhost/);
  expect(m.host_permissions ?? []).toEqual([]);
  // `alarms`: the one alarm that ends idle sessions so their unused deposit comes back.
  expect(m.permissions).toEqual(['alarms']);
  expect(m.incognito).toBe('not_allowed');
  for (const icons of [m.icons, m.action?.default_icon]) {
    expect(Object.keys(icons ?? {}).sort()).toEqual([...SIZES].sort());
    for (const size of SIZES) expect(pngSize(join(prodDir, icons?.[size] ?? 'missing'))).toEqual([Number(size), Number(size)]);
  }
});

test('the demo build adds the demo hosts, and nothing else differs', () => {
  const prod = manifestOf(prodDir);
  const demo = manifestOf(extensionDist);
  expect(demo.content_scripts.map((cs) => cs.matches)).toEqual([['https://*/*', 'http://127.0.0.1/*', 'http://localhost/*']]);
  expect({ ...demo, content_scripts: [] }).toEqual({ ...prod, content_scripts: [] });
});

/** Loads a build in a fresh profile, opens its popup, and returns the rdns of the wallets a plain-http page of this machine finds. */
async function walletsOnLocalHttp(dir: string, pageUrl: string): Promise<string[]> {
  const profile = mkdtempSync(join(tmpdir(), 'obol-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: [...chromiumArgs, `--disable-extensions-except=${dir}`, `--load-extension=${dir}`],
  });
  try {
    const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
    const popup = await context.newPage();
    await popup.goto(`chrome-extension://${new URL(worker.url()).host}/popup.html`);
    await expect(popup.getByRole('tab', { name: 'Wallet' })).toBeVisible();
    const page = await context.newPage();
    await page.goto(pageUrl);
    await page.waitForTimeout(1500);
    return await page.evaluate(() => (window as unknown as { obolWallets: Array<{ rdns: string }> }).obolWallets.map((w) => w.rdns));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

test('Chromium loads the production build; a plain-http page on this machine finds no wallet (the demo build’s is found)', async () => {
  const server: Server = createServer((req, res) => {
    const script = req.url === '/bridge-test.js';
    res.writeHead(200, { 'content-type': script ? 'text/javascript' : 'text/html; charset=utf-8' });
    res.end(script ? bridgeTestScript() : bridgeTestPage());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    expect(await walletsOnLocalHttp(prodDir, url)).toEqual([]);
    expect(await walletsOnLocalHttp(extensionDist, url)).toEqual(['org.obol.wallet']);
  } finally {
    server.close();
  }
});
