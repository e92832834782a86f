import { expect, test } from '@playwright/test';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';
import { artifacts } from '../support/shopper.ts';
import { type TestWorld, startWorld } from '../support/world.ts';

/**
 * Onboarding when the first try fails: the operator URL the shopper typed stays in its field and
 * stays selected, with the error beside it, so she corrects it rather than types it again; and the
 * ready screen says where to go next.
 */

test.describe.configure({ mode: 'serial' });

let world: TestWorld;
let browser: ExtensionBrowser;

test.beforeAll(async () => {
  // Two operators, two shops and Chromium: as in the other specs, room for a loaded machine.
  test.setTimeout(120_000);
  world = await startWorld();
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
});

test('a custom operator URL that fails keeps what the shopper typed, still selected; corrected, it registers', async () => {
  const page = await browser.openPage('onboarding.html');
  await page.setViewportSize({ width: 800, height: 700 });
  await expect(page.getByRole('heading', { name: '1. Choose your bank' })).toBeVisible();
  // The first listed operator is selected at first.
  await expect(page.getByRole('radio', { name: /Svea Bank/ })).toBeChecked();
  // Nothing listens on port 9 of this machine: registration fails.
  const wrong = 'http://127.0.0.1:9';
  await page.getByLabel('operator URL').fill(wrong);
  await expect(page.getByRole('radio', { name: /Another operator/ })).toBeChecked();
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('alert')).toBeVisible({ timeout: 20_000 });
  await expect(page.getByLabel('operator URL')).toHaveValue(wrong);
  await expect(page.getByRole('radio', { name: /Another operator/ })).toBeChecked();
  await expect(page.getByRole('radio', { name: /Svea Bank/ })).not.toBeChecked();
  await page.screenshot({ path: `${artifacts}onboarding-failed-url.png`, fullPage: true });

  // She corrects the URL in place and registers.
  await page.getByLabel('operator URL').fill(world.sek.url);
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('heading', { name: '2. Add demo money' })).toBeVisible({ timeout: 20_000 });
  await page.getByRole('button', { name: 'Skip' }).click();
  await expect(page.getByRole('heading', { name: '3. Ready' })).toBeVisible();
  // The test world's operator is not one of the listed demo ones: the screen says what to do next.
  await expect(page.getByTestId('next-step')).toContainText('open a site that takes Obol');
  await page.screenshot({ path: `${artifacts}onboarding-ready.png`, fullPage: true });
  await page.close();
});
