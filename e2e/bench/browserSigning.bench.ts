// `npm run bench` (e2e): the protocol's signing bench inside headless Chromium.
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { bundleForBrowser, servePage } from '../browser/bundle.ts';
import { chromiumArgs, chromiumPath } from '../chromium.ts';

const entry = fileURLToPath(new URL('./browserSigningEntry.ts', import.meta.url));
const { url, server } = await servePage(await bundleForBrowser(entry, 'ObolBench'));
const browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
try {
  const page = await browser.newPage();
  await page.goto(url);
  const ms = Number(process.env.BENCH_MS ?? 1000);
  const { version, rows } = await page.evaluate(async (ms) => {
    const w = window as unknown as { ObolBench: { run(ms: number): Promise<{ version: string; rows: { what: string; opsPerSec: number }[] }> } };
    return w.ObolBench.run(ms);
  }, ms);
  console.log(`\nChromium ${version}, crypto.subtle`);
  for (const r of rows) console.log(`  ${r.what.padEnd(52)} ${r.opsPerSec.toLocaleString('en-US').padStart(9)} ops/s`);
} finally {
  await browser.close();
  server.close();
}
