import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { bundleForBrowser, servePage } from '../browser/bundle.ts';

test('protocol/ runs unchanged in headless Chromium: signs, verifies and checks a certificate chain', async ({ page }) => {
  const code = await bundleForBrowser(fileURLToPath(new URL('../browser/protocolSelfTest.ts', import.meta.url)), 'ObolSelfTest');
  const { url, server } = await servePage(code);
  try {
    await page.goto(url);
    const result = await page.evaluate(async () => {
      const w = window as unknown as { ObolSelfTest: { selfTest(): Promise<Record<string, unknown>> } };
      return w.ObolSelfTest.selfTest();
    });
    expect(result.userAgent).toContain('Chrome');
    expect(result.verifiedPrice).toBe('EUR:0.03');
    expect(result.tampered).toBe('BAD_SIGNATURE');
    expect(result.leafKind).toBe('temporary');
    expect(result.leafTransaction).toBe('t-q8VbZmC3Tzm1cS0xQ5m9Lw'); // a temporary certificate names the trade handle
    expect(result.expired).toBe('CERT_EXPIRED');
  } finally {
    server.close();
  }
});
