#!/usr/bin/env bash
# The one test command (README, `npm test`, `.ci/run`): installs what the tests need when it is
# missing, builds everything, then typecheck, lint, unit and integration tests, and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

bash scripts/ensure-system-deps.sh
# `npm install` (not `npm ci`): it installs exactly what package-lock.json pins, and unlike
# `npm ci` it does not refuse a lock file that lacks other platforms' optional binaries.
npm install --no-audit --no-fund --loglevel=error

echo "── build";     npm run build --silent
echo "── typecheck"; npm run typecheck --silent
echo "── lint";      npm run lint --silent
echo "── unit and integration tests (vitest)"; npx vitest run
echo "── browser tests (playwright)";          npm run test:e2e --silent
