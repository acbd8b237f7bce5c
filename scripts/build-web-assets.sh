#!/usr/bin/env bash
# Installs the web app's browser libraries from npm (exact versions from the lockfile) and copies the
# files pages load into src/halobuzz/web/static/vendor. Nothing is fetched from a CDN at run time.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
assets="$root/src/halobuzz/web/assets"
vendor="$root/src/halobuzz/web/static/vendor"

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: run scripts/system-deps.sh (or install Node.js and npm), then rerun" >&2
  exit 1
fi
stamp="$assets/node_modules/.lock-stamp"
if [ ! -f "$stamp" ] || [ "$assets/package-lock.json" -nt "$stamp" ]; then
  (cd "$assets" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch "$stamp"
fi
mkdir -p "$vendor"
cp "$assets/node_modules/hls.js/dist/hls.min.js" "$vendor/hls.min.js"
cp "$assets/node_modules/socket.io-client/dist/socket.io.min.js" "$vendor/socket.io.min.js"
for license in hls.js socket.io-client; do
  cp "$assets/node_modules/$license/LICENSE" "$vendor/$license.LICENSE" 2>/dev/null || true
done
