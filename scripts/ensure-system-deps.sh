#!/usr/bin/env bash
# Installs the system programs the tests need when they are missing: Debian's Chromium (never a
# browser downloaded by Playwright) and the PostgreSQL server programs (initdb, pg_ctl, postgres).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
if ! command -v chromium >/dev/null 2>&1 && ! [ -x /usr/bin/chromium ]; then need+=(chromium); fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then need+=(postgresql); fi

if [ ${#need[@]} -gt 0 ]; then
  echo "Installing missing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "chromium: $(command -v chromium || echo /usr/bin/chromium)"
echo "postgres: $(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | head -1)"
