#!/usr/bin/env bash
# The formatters hold the layout: Prettier for TypeScript, JavaScript and JSON, clang-format
# (.clang-format) for the C core and the C test helpers. `npm test` runs this; fix with
# `npm run format`.
set -euo pipefail
cd "$(dirname "$0")/.."
npx prettier --check --log-level warn .
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format is not installed (apt-get install clang-format; npm test as root installs it)" >&2
  exit 1
fi
git ls-files -z 'native/*.c' 'native/*.h' 'native/*.cc' 'test/**/*.c' | xargs -0 clang-format --dry-run -Werror
