#!/usr/bin/env bash
# The one start command (README, `npm start`): installs, builds, and runs the demo world.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# The demo build of the wallet: its content script also runs on the demo shops (http://127.0.0.1).
export OBOL_DEMO=1
npm install --no-audit --no-fund --loglevel=error
npm run build --silent
exec node backend/bin/demo.js "$@"
