#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing (Debian/Ubuntu, as root
# or with sudo): Node.js and npm, for the test that drives the official JavaScript Socket.IO client and
# the web app's browser libraries; Debian's chromium, which the browser tests drive (never downloaded).
set -euo pipefail

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
# media plane: ffmpeg/ffprobe for transcoding, nginx with the RTMP module for ingest
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
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
