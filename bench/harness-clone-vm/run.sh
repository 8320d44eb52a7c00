#!/bin/sh
# usage: sh bench/harness-clone-vm/run.sh [MB of heap to hold=100] [rounds=100]   (as root)
# Builds the measuring addon and the exiting program in a temp dir, then interleaves fork-like and
# CLONE_VM clones from one node process holding that much heap.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -Werror -static -nostartfiles -o "$out/exit0" "$here/exit0.c"
gcc -O2 -Wall -Werror -shared -fPIC -I/usr/include/node -o "$out/clone.node" "$here/clone.c"
CLONE_ADDON="$out/clone.node" EXIT0="$out/exit0" node "$here/run.mjs" "${1:-100}" "${2:-100}"
