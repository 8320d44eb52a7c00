#!/usr/bin/env bash
# The real-kernel test bed: boots Debian's kernel under qemu (software emulation, as
# MACHINE.md says KVM hangs here) with the host's / shared read-only over 9p, and runs the
# cgroup v2 suite inside as root and as an unprivileged user with a delegated subtree.
# The host is in hybrid cgroup mode, so this is the only place v2 limits are real.
# Usage: bash test/vm/run.sh [--bench]   (exit status: non-zero when any VM test fails)
#        BENCH_N=30 bash test/vm/run.sh --bench   (rounds; 10 by default)
#        VM_TESTS=containers bash test/vm/run.sh  (only the VM test files whose name has that)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
cache=$repo/.cache/vm
mode=test
[ "${1:-}" = --bench ] && mode=bench
mkdir -p "$cache"

need=(qemu-system-x86 busybox-static cpio)
[ "$mode" = bench ] && need+=(runc)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "vm: missing Debian packages (install them as root): ${missing[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The guest has no network: node_modules and dist/ come from this tree over 9p.
[ -d node_modules ] || npm install --no-audit --no-fund
# dist/ is rebuilt every time (the guest cannot): a stale CLI would test old code.
# tsc emits even when it reports type errors (others may be mid-edit in this tree); the bundle must follow.
[ -f build/Release/hako_native.node ] || npm run build --silent
node_modules/.bin/tsc -p tsconfig.json || echo "vm: warning: tsc reported type errors (JavaScript emitted anyway)" >&2
node tools/bundle-cli.mjs
# The busybox rootfs the container tests use (test/helpers/global-setup.ts makes the same one).
bb=test/.work/busybox-rootfs
if [ ! -e "$bb/bin/sh" ]; then
  rm -rf "$bb.tmp" && mkdir -p "$bb.tmp"/{bin,proc,dev,sys,tmp,etc,root}
  cp /bin/busybox "$bb.tmp/bin/busybox" && chmod 755 "$bb.tmp/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$bb.tmp/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$bb.tmp/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$bb.tmp/etc/group"
  chmod 1777 "$bb.tmp/tmp" && mv "$bb.tmp" "$bb"
fi

# Kernel: the version linux-image-amd64 points at, unpacked once.
kver=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)$/\1/p' | head -1)
[ -n "$kver" ] || { echo "vm: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
kdir=$cache/kernel-$kver
if [ ! -f "$kdir/vmlinuz" ]; then
  tmp=$(mktemp -d "$cache/dl.XXXXXX")
  (cd "$tmp" && apt-get download -q "linux-image-$kver" >/dev/null 2>&1 && dpkg-deb -x ./*.deb x)
  mkdir -p "$kdir/modules"
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
    cp "$(find "$tmp/x/lib/modules" -name "$m.ko" | head -1)" "$kdir/modules/"
  done
  cp "$tmp/x/boot/vmlinuz-$kver" "$kdir/vmlinuz"
  rm -rf "$tmp"
fi

# Initramfs: static busybox, the 9p modules and test/vm/init; rebuilt when init changes.
initrd=$cache/initrd-$kver-$(sha256sum test/vm/init | cut -c1-12).gz
if [ ! -f "$initrd" ]; then
  root=$(mktemp -d "$cache/initrd.XXXXXX")
  mkdir -p "$root"/{bin,proc,sys,dev,host,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  cp "$kdir"/modules/*.ko "$root/lib/modules/"
  cp test/vm/init "$root/init" && chmod 755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp" && mv "$initrd.tmp" "$initrd"
  rm -rf "$root"
fi

# The guest writes results here through a second, writable share.
out=$cache/out
rm -rf "$out" && mkdir -p "$out"
echo "vm: booting $kver (tcg) for the $mode stage"
start=$(date +%s)
timeout 1200 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 3072 -nographic -no-reboot \
  -kernel "$kdir/vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 hako.repo=$repo hako.mode=$mode hako.ci=${CI:-} hako.n=${BENCH_N:-10} hako.tests=${VM_TESTS:-}" \
  -virtfs local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs "local,path=$out,mount_tag=out,security_model=passthrough" \
  </dev/null || { echo "vm: qemu failed or timed out" >&2; exit 1; }
echo "vm: guest ran for $(( $(date +%s) - start )) s"

status=0
for who in root user; do
  if [ "$mode" = bench ]; then break; fi
  if [ ! -f "$out/status-$who" ]; then echo "vm: the $who suite did not finish" >&2; status=1; continue; fi
  s=$(cat "$out/status-$who")
  echo "vm: $who suite exit status $s"
  [ "$s" = 0 ] || status=1
done
if [ "$mode" = bench ]; then
  [ -f "$out/bench.txt" ] || { echo "vm: the benchmark did not finish" >&2; exit 1; }
  cat "$out/bench.txt"
fi
exit $status
