// A glibc root filesystem for the preload shim's tests: the shim only loads in dynamically
// linked programs, and the busybox rootfs is static. Holds test/helpers/shim/shimtest.c
// compiled here (twice: /usr/bin/shimtest and /usr/bin/shimtest-b, distinct files for the
// exec allowlist), the libraries ldd says they load (as bundles/fhir/build does for node), a
// static busybox for sh and env, and an empty /etc/ld.so.preload for the shim's bind mount
// (a rootless runtime cannot create it in a rootfs it does not own).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BUSYBOX_ROOTFS, REPO } from './env.js';

function libraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const paths: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=> (\/\S+) \(0x/.exec(line) ?? /^\s*(\/\S+) \(0x/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

function copyInto(root: string, file: string, as = file): void {
  const dest = path.join(root, as);
  fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
  fs.copyFileSync(fs.realpathSync(file), dest);
  fs.chmodSync(dest, 0o755);
}

/** Builds the rootfs at dir (made fresh) and returns it. */
export function makeShimRootfs(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'usr/bin', 'etc', 'proc', 'sys', 'dev', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  const bin = path.join(dir, 'usr/bin/shimtest');
  execFileSync('gcc', ['-Wall', '-Wextra', '-Werror', '-O2', '-pthread', '-o', bin, path.join(REPO, 'test/helpers/shim/shimtest.c')]);
  fs.copyFileSync(bin, path.join(dir, 'usr/bin/shimtest-b'));
  for (const lib of libraries(bin)) copyInto(dir, lib);
  copyInto(dir, path.join(BUSYBOX_ROOTFS, 'bin/busybox'), '/bin/busybox');
  for (const applet of ['sh', 'env', 'sleep', 'true', 'echo', 'ls']) fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  fs.writeFileSync(path.join(dir, 'etc/ld.so.preload'), '', { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n', { mode: 0o644 });
  return dir;
}
