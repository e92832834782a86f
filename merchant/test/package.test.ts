import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MerchantPaths } from '@obol/protocol/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walletBuy } from '../../backend/src/cli/walletCommands.ts';
import type { SalesReport } from '../../backend/src/merchant/sales.ts';
import { freePort } from '../../backend/src/world/shop.ts';
import { demoRootDir, repoRoot } from '../../e2e/support/build.ts';
import { type TestWorld, startWorld } from '../../e2e/support/world.ts';
import { type InstalledMerchant, installedMerchant } from './support/installedPackage.ts';

/**
 * The merchant package as a merchant uses it, outside this repository: `npm pack`, installed from
 * the tarball in an empty folder, `obol merchant init` there, registered at a demo operator, and
 * selling from the shop's own static page four ways — `obol merchant serve`, and the merchant's
 * own server with the Fastify plugin, the node:http/Express handler and the fetch handler — to the
 * CLI wallet (the wallet core). `obol merchant sales` then shows every sale; a TypeScript file of
 * the merchant's type-checks against the installed declarations.
 */
const run = promisify(execFile);
const repoObol = join(repoRoot, 'backend', 'bin', 'obol.js');

let pkg: InstalledMerchant;
let world: TestWorld;
let site = '';
let shopDir = '';
let publicUrl = '';
let port = 0;

/** The installed package's `obol`, run in the merchant's folder. */
const obol = async (...args: string[]) => (await run(pkg.obol, args, { cwd: site, timeout: 60_000 })).stdout;

/** Starts a process of the merchant's and waits for its line saying it listens. */
async function startProcess(command: string, args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd: site, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const read = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(ready)) resolve();
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${out}`)));
  });
  return child;
}

/** Stops a process of the merchant's as its operator would (SIGTERM): it closes the shop and exits 0. */
async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** The shopper: a fresh CLI wallet at the demo's Svea Bank, topped up, buying at the shop. */
async function buy(productId: string) {
  const result = await walletBuy({
    operator: world.sek.url,
    merchant: `${publicUrl}/obol`,
    product: [productId],
    price: 'EUR:0.05',
    topUp: 'SEK:30.00',
    trustedRoot: [join(demoRootDir(), 'root.cert.pem')],
  });
  expect(result.bought).toHaveLength(1);
  return result.bought[0]!;
}

/** What a page of the shop needs from the shop's server: the page, the widget script the package ships. */
async function expectPageAndWidget(): Promise<void> {
  const page = await fetch(`${publicUrl}/`);
  expect(await page.text()).toContain(`<script src="${publicUrl}/obol/obol-widget.js" defer></script>`);
  const widget = await fetch(`${publicUrl}/obol/obol-widget.js`);
  expect(widget.headers.get('content-type')).toContain('text/javascript');
  const shipped = await readFile(join(pkg.dir, 'node_modules/@obol/merchant/dist/files/widget/dist/obol-widget.js'), 'utf8');
  expect(await widget.text()).toBe(shipped);
}

const NOTES = '# Field notes\n\nWhat the birds did this spring.\n';

beforeAll(async () => {
  pkg = await installedMerchant();
  world = await startWorld();
  site = await mkdtemp(join(pkg.dir, 'site-'));
  shopDir = join(site, 'shop');
  port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
}, 600_000);

afterAll(async () => {
  await world?.close();
  if (site) await rm(site, { recursive: true, force: true });
});

describe('the packed @obol/merchant, installed in an empty folder', () => {
  it('holds compiled JavaScript, declarations, the widget and the obol command, and nothing of the repository', async () => {
    const { stdout } = await run('tar', ['tzf', pkg.tarball]);
    const files = stdout.trim().split('\n');
    expect(files).toEqual(expect.arrayContaining(['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli.js', 'package/dist/files/widget/dist/obol-widget.js']));
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(pkg.dir, 'node_modules/@obol/merchant/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies).filter((name) => name.startsWith('@obol/'))).toEqual([]);
    // The installed folder reaches nothing of the repository: no workspace link, no path into it.
    const bundle = await readFile(join(pkg.dir, 'node_modules/@obol/merchant/dist/index.js'), 'utf8');
    expect(bundle).not.toContain(repoRoot);
  });

  it('obol merchant init makes the shop; the demo operator registers it; obol merchant serve sells from its static page', async () => {
    const out = await obol(
      'merchant', 'init', '--dir', 'shop', '--merchant-id', 'blog.example', '--name', 'A Small Blog', '--operator', world.eur.url,
      '--operator-id', 'op-eur', '--currency', 'EUR', '--public-url', publicUrl,
    );
    expect(out).toContain(`<script src="${publicUrl}/obol/obol-widget.js" defer></script>`);
    // The operator's side, with the operator's own command (this repository's).
    await run(process.execPath, [repoObol, 'register-merchant', '--operator', world.eur.url, '--admin-token', world.adminToken, '--request', join(shopDir, 'registration-request.json'), '--out', join(shopDir, 'registration.json')]);
    await mkdir(join(shopDir, 'pages'));
    await writeFile(
      join(shopDir, 'pages', 'index.html'),
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A Small Blog</title>
<script src="${publicUrl}/obol/obol-widget.js" defer></script></head>
<body><obol-buy product="first-post" price="0.05" currency="EUR"></obol-buy></body></html>`,
    );
    const config = join(shopDir, 'shop.json');
    await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), pages: 'pages' }));

    const server = await startProcess(pkg.obol, ['merchant', 'serve', '--config', 'shop/shop.json'], 'serving at');
    try {
      await expectPageAndWidget();
      await writeFile(join(site, 'field-notes.md'), NOTES);
      await obol('merchant', 'add-product', '--config', 'shop', '--id', 'first-post', '--title', 'First post', '--price', 'EUR:0.05', '--text', 'The rest of the first post.');
      await obol('merchant', 'add-product', '--config', 'shop', '--id', 'field-notes', '--title', 'Field notes', '--price', 'EUR:0.05', '--file', 'field-notes.md');
      expect((await buy('first-post')).bytes).toBe('The rest of the first post.'.length);
      expect((await buy('field-notes')).bytes).toBe(NOTES.length);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  }, 240_000);

  for (const mode of ['fastify', 'node', 'fetch'] as const) {
    it(`sells from the merchant's own server through the ${mode} adapter`, async () => {
      await copyFile(fileURLToPath(new URL('./fixtures/shop-server.mjs', import.meta.url)), join(site, 'shop-server.mjs'));
      const server = await startProcess(process.execPath, ['shop-server.mjs', mode, 'shop', String(port)], 'listening');
      try {
        await expectPageAndWidget();
        expect((await buy('field-notes')).bytes).toBe(NOTES.length);
        // A refusal comes back as the module's catalogue error, whichever way in.
        const refused = await fetch(`${publicUrl}/obol${MerchantPaths.order}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not":"an order"}' });
        expect(refused.status).toBe(400);
        expect(((await refused.json()) as { error: { name: string } }).error.name).toBe('MALFORMED');
        if (mode === 'fetch') {
          // The merchant's sales, read from the running shop by the package's command.
          const report = JSON.parse(await obol('merchant', 'sales', '--config', 'shop', '--json')) as SalesReport;
          expect(report).toMatchObject({ purchases: 5, total: 'EUR:0.25' });
          expect(report.byProduct).toEqual([
            { key: 'field-notes', purchases: 4, amount: 'EUR:0.20' },
            { key: 'first-post', purchases: 1, amount: 'EUR:0.05' },
          ]);
        }
      } finally {
        expect(await stop(server)).toBe(0);
      }
    }, 120_000);
  }

  it('a TypeScript file of the merchant type-checks against the installed declarations', async () => {
    await writeFile(
      join(site, 'shop.ts'),
      `import { createServer } from 'node:http';
import Fastify from 'fastify';
import { MODULE_PATH, obolFastify, obolFetchHandler, obolNodeHandler, type ObolFetchHandler } from '@obol/merchant';
const app = Fastify();
await app.register(obolFastify, { shop: './shop', sweepIntervalMs: 15_000 });
const node = await obolNodeHandler({ shop: './shop', logger: false });
createServer((req, res) => node(req, res));
const fetchStyle: ObolFetchHandler = await obolFetchHandler({ shop: './shop' });
const answer: Response = await fetchStyle(new Request(\`http://127.0.0.1\${MODULE_PATH}/obol-widget.js\`));
console.log(answer.status);
// @ts-expect-error: the shop folder is required
await obolNodeHandler({ logger: false });
`,
    );
    await writeFile(
      join(site, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [join(repoRoot, 'node_modules/@types')] },
        files: ['shop.ts'],
      }),
    );
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const checked = await run(process.execPath, [tsc, '-p', join(site, 'tsconfig.json')], { cwd: site }).catch((e: { stdout: string }) => e);
    expect(checked.stdout).toBe('');
  }, 120_000);
});
