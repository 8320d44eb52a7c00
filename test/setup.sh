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
# What is tested is what package-lock.json pins: `npm ci` installs exactly that and fails when
# package.json and the lockfile disagree (`npm install` would rewrite the lockfile instead).
# Again whenever the lockfile is newer than the install (npm writes node_modules/.package-lock.json).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
