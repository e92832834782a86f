#!/usr/bin/env bash
# The one start command (README, `npm start`): installs, builds, and runs the demo world.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm install --no-audit --no-fund --loglevel=error
npm run build --silent
exec node backend/bin/demo.js "$@"
