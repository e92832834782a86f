import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoWorld } from '../world/demoWorld.ts';

/**
 * `npm start`: the demo world on fixed local ports, its keys and embedded databases under one
 * data folder so the next start keeps everything. Nothing in it is faked: these are the real
 * servers with demo data.
 */
export const DEMO_PORTS = { opSek: 7101, opEur: 7102, news: 7201, downloads: 7202 } as const;
const EXTENSION_DIR = fileURLToPath(new URL('../../../extension/dist/', import.meta.url));

export async function runDemo(args: string[]): Promise<void> {
  const dataDir = resolve(process.env.OBOL_DATA_DIR ?? '.data/demo');
  const adminToken = process.env.OBOL_ADMIN_TOKEN ?? 'demo-admin-token-change-me';
  const w = await startDemoWorld({ dataDir, ports: DEMO_PORTS, adminToken });
  const obol = 'node backend/bin/obol.js';
  console.log(`
Obol demo world is running (data in ${dataDir}; Ctrl-C stops it, the next start keeps it).

  Operators (account manager + acquirer), each with /healthz and /openapi.json:
    Svea Bank   (op-sek, SEK)   ${w.sek.url}
    Banque Euro (op-eur, EUR)   ${w.eur.url}

  Shops (open them in the browser that has the wallet):
    The Daily Obol   articles at EUR 0.03, banks at Banque Euro     ${w.news.url}
    Obol Downloads   files by secure delivery, banks at Svea Bank   ${w.downloads.url}

  The wallet: build output in ${EXTENSION_DIR}
    Chromium → chrome://extensions → Developer mode → Load unpacked → pick that folder.
    Click the Obol icon, choose Svea Bank (SEK) or Banque Euro (EUR), register, top up demo money,
    then click a price in a shop. (npm start -- --browser opens Chromium with it loaded, given a display.)

  Operator administration (admin token: ${adminToken}):
    ${obol} balances  --operator ${w.sek.url} --admin-token ${adminToken}
    ${obol} audit     --operator ${w.eur.url} --admin-token ${adminToken}
    ${obol} positions --operator ${w.sek.url} --admin-token ${adminToken}
    ${obol} wallet buy --operator ${w.sek.url} --merchant ${w.news.moduleUrl} --product two-banks --price EUR:0.03 --top-up SEK:20.00 \\
      --trusted-root ${join(dataDir, 'keys', 'root', 'root.cert.pem')}
  Billing records: ${w.billingFile('op-sek')} and ${w.billingFile('op-eur')}

  The shops' dashboards (sales per day and per product; shop admin token: ${w.shopAdminToken}):
    ${w.news.moduleUrl}/admin/   and   ${w.downloads.moduleUrl}/admin/
`);
  if (args.includes('--browser')) await openBrowser([w.news.url, w.downloads.url]);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the demo world…');
    await w.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** Chromium with the wallet loaded, where there is a display to show it on. */
async function openBrowser(urls: string[]): Promise<void> {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    console.log('  --browser: no display here (DISPLAY is not set); load the extension by hand as above.');
    return;
  }
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (!chromium || !existsSync(join(EXTENSION_DIR, 'manifest.json'))) {
    console.log('  --browser: Chromium or the built extension is missing (apt-get install chromium; npm run build).');
    return;
  }
  const profile = await mkdtemp(join(tmpdir(), 'obol-chromium-'));
  const child = spawn(
    chromium,
    [
      `--user-data-dir=${profile}`,
      `--disable-extensions-except=${EXTENSION_DIR}`,
      `--load-extension=${EXTENSION_DIR}`,
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      ...urls,
    ],
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  console.log(`  Chromium started with the wallet loaded (profile ${profile}).`);
}
