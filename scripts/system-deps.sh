#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing (Debian/Ubuntu, as root
# or with sudo): Node.js and npm, for the test that drives the official JavaScript Socket.IO client.
set -euo pipefail

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing system packages: ${need[*]} …"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get is not available: install ${need[*]} with your package manager, then rerun" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
