import { defineConfig } from 'vitest/config';

// One runner for every workspace's unit and integration tests (and e2e/worker: the wallet's
// worker logic against real servers, kept out of extension/ so extension imports only protocol);
// the browser tests live in e2e/
// and run under Playwright.
export default defineConfig({
  test: {
    include: ['{protocol,backend,widget,merchant,extension}/**/*.test.{ts,tsx}', 'e2e/worker/**/*.test.ts'],
    // The kill -9 crash trials (real processes, minutes each: a session no side reported waits out
    // the clearing grace) run by `npm run test:crash`, and at full size by `npm run reliability:crash`.
    exclude: ['**/node_modules/**', '**/dist/**', ...(process.env.OBOL_CRASH_TRIALS === '1' ? [] : ['backend/reliability/crash/**'])],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
