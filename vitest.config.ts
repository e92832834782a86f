import { defineConfig } from 'vitest/config';

// One runner for every workspace's unit and integration tests (and e2e/worker: the wallet's
// worker logic against real servers, kept out of extension/ so extension imports only protocol);
// the browser tests live in e2e/
// and run under Playwright.
export default defineConfig({
  test: {
    include: ['{protocol,backend,widget,extension}/**/*.test.{ts,tsx}', 'e2e/worker/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
