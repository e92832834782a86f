import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { launchWithExtension } from '../support/extension.ts';
import { buyButton, buyElement, clickInWindow, nextConfirmWindow, onboard, openShop, paywall } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * Issue 13's browser figures, with every part real (the built extension in Chromium, the news
 * shop's page with the widget, both operators): click-to-content — from the click on a buy button
 * to the purchased text in the page — for the first purchase at a site (the confirmation window's
 * Pay clicked by the test as soon as it is armed) and for purchases inside the session that opened.
 * A fresh browser profile per round, so each round's first purchase is a first one.
 */
const ROUNDS = Number(process.env.BENCH_BROWSER_ROUNDS ?? 4);
const ARTICLES = ['why-micropayments', 'two-banks', 'fair-exchange', 'pseudonyms', 'deposits'];
const out = fileURLToPath(new URL('../../bench-results/', import.meta.url));

let world: TestWorld;
test.beforeAll(async () => {
  world = await startWorld();
});
test.afterAll(async () => {
  await world?.close();
});

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

test('click-to-content: the first purchase at a site, and purchases inside its session', async () => {
  const first: number[] = [];
  const inSession: number[] = [];
  let chromium = '';
  for (let round = 0; round < ROUNDS; round++) {
    const browser = await launchWithExtension();
    try {
      await onboard(browser, world.sek.url);
      const shop = await openShop(browser.context, world.shop.url);
      chromium = /Chrome\/([0-9.]+)/.exec(await shop.evaluate(() => navigator.userAgent))?.[1] ?? chromium;
      const [firstId, ...rest] = ARTICLES;
      const windowOpened = nextConfirmWindow(browser.context);
      const t0 = performance.now();
      await buyButton(shop, firstId!).click();
      const confirm = await windowOpened;
      await clickInWindow(confirm, confirm.getByRole('button', { name: /^Pay / }));
      await expect(paywall(shop, firstId!)).toHaveAttribute('unlocked', '', { timeout: 30_000 });
      first.push(performance.now() - t0);
      for (const id of rest) {
        const t = performance.now();
        await buyButton(shop, id).click();
        await expect(paywall(shop, id)).toHaveAttribute('unlocked', '', { timeout: 30_000 });
        inSession.push(performance.now() - t);
        await expect(buyElement(shop, id).getByRole('status')).toHaveText(/^Paid /);
      }
    } finally {
      await browser.close();
    }
  }
  const figure = (xs: number[]) => ({ p50Ms: percentile(xs, 50), p95Ms: percentile(xs, 95), runs: xs.length });
  const result = { chromium, firstPurchase: figure(first), inSession: figure(inSession) };
  mkdirSync(out, { recursive: true });
  writeFileSync(`${out}browser.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `click-to-content (Chromium ${chromium}): first purchase p50 ${result.firstPurchase.p50Ms.toFixed(0)} ms, p95 ${result.firstPurchase.p95Ms.toFixed(0)} ms (${first.length}); ` +
      `inside the session p50 ${result.inSession.p50Ms.toFixed(0)} ms, p95 ${result.inSession.p95Ms.toFixed(0)} ms (${inSession.length})`,
  );
});
