#!/usr/bin/env bash
# The one test command (README, `npm test`, `.ci/run`): installs what the tests need when it is
# missing, builds everything, then typecheck, lint, unit and integration tests, and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# The demo build of the wallet: its content script also runs on the demo shops (http://127.0.0.1).
export OBOL_DEMO=1

bash scripts/ensure-system-deps.sh
# The lock file is complete (every platform's optional binaries, engines that Node 20 satisfies), so
# CI installs with the standard `npm ci` on its fresh clone; on a developer's machine `npm install`
# keeps node_modules and installs exactly what package-lock.json pins.
if [ "${CI:-}" = "true" ] || [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

echo "── build";     npm run build --silent
echo "── typecheck"; npm run typecheck --silent
echo "── lint";      npm run lint --silent
echo "── unit and integration tests (vitest)"; npx vitest run
echo "── reliability under faults (quick simulation)"; npm run reliability --silent -- --quick
echo "── browser tests (playwright)";          npm run test:e2e --silent
