#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, then builds hako.
# Runs as root (CI); as a normal user it only checks and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' test/debian-packages.txt | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test setup: missing Debian packages (install them as root): ${missing[*]}" >&2
    exit 1
  fi
fi
[ -d node_modules ] || npm install --no-audit --no-fund
npm run build --silent
