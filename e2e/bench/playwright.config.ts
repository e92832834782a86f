import { defineConfig } from '@playwright/test';
import { chromiumArgs, chromiumPath } from '../chromium.ts';

/** `npm run bench -w e2e`: the browser's click-to-content figures (clickToContent.bench.spec.ts). */
export default defineConfig({
  testDir: '.',
  testMatch: /\.bench\.spec\.ts$/,
  outputDir: '../test-results/bench',
  timeout: 300_000,
  workers: 1,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: { executablePath: chromiumPath(), args: chromiumArgs },
  },
});
