import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '@obol/protocol/clock';
import { certToPem } from '@obol/protocol/pki';
import { expect, test } from '@playwright/test';
import { JsonlFileSink } from '../../backend/src/billing/index.ts';
import { createRoot } from '../../backend/src/operator/identity.ts';
import { type Db, openDb } from '../../backend/src/store/db.ts';
import { type World, startOperators } from '../../backend/src/world/world.ts';
import { type ExtensionBrowser, launchWithExtension } from '../support/extension.ts';

/**
 * The built wallet trusts only the interbank root it was built with (the demo root). An operator
 * certified under another root — here a real operator server under a root of its own, same name —
 * is refused at onboarding with a sentence; the shopper can still add that operator's root herself,
 * under an explicit warning, and then it works for her account.
 */
test.describe.configure({ mode: 'serial' });

let world: World;
let db: Db;
let billing: string;
let browser: ExtensionBrowser;

test.beforeAll(async () => {
  db = await openDb();
  billing = mkdtempSync(join(tmpdir(), 'obol-trust-'));
  const root = await createRoot('Obol Demo Interbank Root', Date.now()); // the demo root's name, another key
  world = await startOperators(
    [{ operatorId: 'op-sek', name: 'Elsewhere Bank', currency: 'SEK', rates: { EUR: '0.0874' }, db, sinks: [new JsonlFileSink(join(billing, 'sek.jsonl'))] }],
    { clock: systemClock, root },
  );
  browser = await launchWithExtension();
});

test.afterAll(async () => {
  await browser?.close();
  await world?.close();
  await db?.close();
  rmSync(billing, { recursive: true, force: true });
});

test('an operator under a root the wallet was not built with is refused; a root the shopper adds, warned, is trusted for her', async () => {
  const page = await browser.openPage('onboarding.html');
  await page.getByLabel('operator URL').fill(world.operators['op-sek']!.url);
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.locator('p.error').last()).toContainText(/not trusted.*interbank root this wallet trusts/);
  const popup = await browser.openPage('popup.html');
  await expect(popup.getByTestId('balance')).toHaveCount(0); // no account was kept
  await popup.close();

  // The form starts over after an error: the custom URL again, then the root under its warning.
  await page.getByLabel('operator URL').fill(world.operators['op-sek']!.url);
  await page.getByText('My operator is not under a root this wallet trusts').click();
  await expect(page.getByRole('note')).toContainText('whoever holds that root’s key can pose as any operator');
  await page.getByLabel('operator root certificate (PEM)').fill(certToPem(world.root.cert));
  await page.getByRole('button', { name: 'Create my wallet account' }).click();
  await expect(page.getByRole('heading', { name: '2. Add demo money' })).toBeVisible({ timeout: 20_000 });
  await page.getByLabel('top-up amount').fill('10');
  await page.getByRole('button', { name: 'Top up' }).click();
  await expect(page.getByTestId('balance')).toHaveText('SEK 10.00');
});
