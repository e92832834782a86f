#!/usr/bin/env bash
# `npm run bench`: works from a fresh clone. Installs what the benches need when it is missing
# (Chromium and PostgreSQL from Debian, node_modules from the lock file), builds the demo wallet
# and the widget the browser bench loads, runs every workspace's bench, then prints one table
# (scripts/bench-report.ts) even when a bench failed, and exits with the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# The demo build of the wallet: its content script also runs on the demo shop (http://127.0.0.1).
export OBOL_DEMO=1

bash scripts/ensure-system-deps.sh || exit 1
if [ ! -d node_modules ]; then npm ci --no-audit --no-fund --loglevel=error || exit 1; fi
echo "── build"; npm run build --silent || exit 1

npm run bench --workspaces --if-present
status=$?
if ! npx tsx scripts/bench-report.ts && [ "$status" -eq 0 ]; then status=1; fi
exit $status
