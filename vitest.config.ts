import { defineConfig } from 'vitest/config';

// One runner for every workspace's unit and integration tests; the browser tests live in e2e/
// and run under Playwright.
export default defineConfig({
  test: {
    include: ['{protocol,backend,widget,extension}/**/*.test.{ts,tsx}'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
