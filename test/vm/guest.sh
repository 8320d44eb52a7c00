#!/usr/bin/env bash
# Runs inside the test VM (chrooted into the host's read-only /): prepares cgroup v2 the
# way a systemd host would (all controllers enabled, a subtree delegated to uid 1000),
# then runs the VM suite as root and as that user; results go to .cache/vm/out.
set -uo pipefail
repo=$1 mode=$2
out=$repo/.cache/vm/out
cd "$repo"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HAKO_VM=1 UV_USE_IO_URING=0 NO_COLOR=1
cg=/sys/fs/cgroup

# Enable every controller at the root, as systemd does.
ctrls=$(cat $cg/cgroup.controllers)
for c in $ctrls; do echo "+$c" > $cg/cgroup.subtree_control 2>/dev/null || echo "guest: cannot enable $c"; done
echo "guest: kernel $(uname -r), controllers: $(cat $cg/cgroup.subtree_control)"

# Delegation like systemd's user@.service: /user/1000 owned by the user (its
# cgroup.procs, cgroup.subtree_control, cgroup.threads too), the user's shell in a leaf.
uid=1000
mkdir -p $cg/user/$uid/session
for c in $(cat $cg/user/cgroup.controllers); do echo "+$c" > $cg/user/cgroup.subtree_control 2>/dev/null; done
chown $uid:$uid $cg/user/$uid $cg/user/$uid/cgroup.{procs,subtree_control,threads}
chown -R $uid:$uid $cg/user/$uid/session
mkdir -p /tmp/home && chown $uid:$uid /tmp/home

# The tree is read-only: the runner config loader writes no bundled config beside it.
run_suite() { # who, then the command prefix that becomes that user
  local who=$1; shift
  echo "guest: ---- $who suite ----"
  # Through a pipe, so vitest prints a plain log rather than redrawing a terminal.
  "$@" node node_modules/vitest/vitest.mjs run --config test/vm/vitest.config.ts --configLoader runner ${VM_TESTS:-} 2>&1 | cat
  local s=${PIPESTATUS[0]}
  echo $s > "$out/status-$who"
  echo "guest: $who suite exit status $s"
}

if [ "$mode" = bench ]; then
  node bench/cgroups/bench.mjs > "$out/bench.txt" 2>&1
  echo "guest: bench exit status $?"
  exit 0
fi
run_suite root env HOME=/root
run_suite user sh -c "echo \$\$ > $cg/user/$uid/session/cgroup.procs && exec setpriv --reuid=$uid --regid=$uid --clear-groups env HOME=/tmp/home \"\$0\" \"\$@\""
