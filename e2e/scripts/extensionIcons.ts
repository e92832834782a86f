// Renders the wallet's coin (extension/src/shared/walletInfo.ts, COIN_SVG) into the toolbar and
// store icons the manifest names, extension/public/icons/icon-{16,32,48,128}.png, with the
// installed Chromium the browser tests use (so it lives here: extension/ imports only protocol/).
// The PNGs are committed; run this again only when the coin changes:
//   npm run icons -w e2e
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';
import { COIN_SVG } from '../../extension/src/shared/walletInfo.ts';
import { chromiumArgs, chromiumPath } from '../chromium.ts';

const ICON_SIZES = [16, 32, 48, 128] as const;
const outDir = fileURLToPath(new URL('../../extension/public/icons/', import.meta.url));

const browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
try {
  for (const size of ICON_SIZES) {
    const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
    const svg = COIN_SVG.replace('<svg ', `<svg width="${size}" height="${size}" `);
    await page.setContent(`<!doctype html><html><body style="margin:0;background:transparent">${svg}</body></html>`);
    const png = await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
    writeFileSync(`${outDir}icon-${size}.png`, png);
    console.log(`extension/public/icons/icon-${size}.png  ${png.length} bytes`);
    await page.close();
  }
} finally {
  await browser.close();
}
