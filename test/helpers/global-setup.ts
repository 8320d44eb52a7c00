// Once per test run: a busybox rootfs for real containers, and (as root) an
// unprivileged user with subordinate id ranges for the rootless tests.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BUSYBOX_ROOTFS, TEST_USER, WORK, IS_ROOT } from './env.js';

function buildBusyboxRootfs(): void {
  if (fs.existsSync(path.join(BUSYBOX_ROOTFS, 'bin/sh'))) return;
  const tmp = `${BUSYBOX_ROOTFS}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc', 'root']) fs.mkdirSync(path.join(tmp, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(tmp, 'bin/busybox'));
  fs.chmodSync(path.join(tmp, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'busybox') fs.symlinkSync('busybox', path.join(tmp, 'bin', a));
  fs.writeFileSync(path.join(tmp, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(tmp, 'etc/group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  fs.chmodSync(path.join(tmp, 'tmp'), 0o1777);
  fs.renameSync(tmp, BUSYBOX_ROOTFS);
}

/** Ranges in /etc/subuid or /etc/subgid: [owner, start, count] per valid line. */
function subRanges(file: string): [string, number, number][] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    // no file yet: no ranges
  }
  return text
    .split('\n')
    .map((l) => l.trim().split(':'))
    .filter((f) => f.length === 3 && /^\d+$/.test(f[1]) && /^\d+$/.test(f[2]))
    .map(([o, s, c]) => [o, Number(s), Number(c)]);
}

function ensureTestUser(): void {
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER]);
  }
  // The rootless tests map ranges through newuidmap. useradd gives a new user one, but a user
  // made otherwise (or before /etc/subuid existed) may have none: add one past every range in use.
  const uid = execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim();
  for (const [file, flag] of [
    ['/etc/subuid', '--add-subuids'],
    ['/etc/subgid', '--add-subgids'],
  ]) {
    const ranges = subRanges(file);
    if (ranges.some(([o]) => o === TEST_USER || o === uid)) continue;
    const start = Math.max(100000, ...ranges.map(([, s, c]) => s + c));
    execFileSync('usermod', [flag, `${start}-${start + 65535}`, TEST_USER]);
  }
}

// Shared trees the next run reuses; everything else in test/.work is a test's scratch dir.
const KEEP = new Set([path.basename(BUSYBOX_ROOTFS), 'seccomp-tools', 'seccomp-rootfs']);

/** After the run: a mount still under test/.work means some container setup leaked into the
 *  host's mount namespace: the run fails, and nothing is removed (rm would descend into it).
 *  Otherwise the scratch dirs go. */
function teardown(): void {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.startsWith(`${WORK}/`));
  if (mounts.length) throw new Error(`the tests left mounts under ${WORK}: ${mounts.join(', ')}`);
  for (const entry of fs.readdirSync(WORK)) if (!KEEP.has(entry)) fs.rmSync(path.join(WORK, entry), { recursive: true, force: true });
}

export default function setup(): () => void {
  fs.mkdirSync(WORK, { recursive: true });
  fs.chmodSync(WORK, 0o755);
  buildBusyboxRootfs();
  if (IS_ROOT) ensureTestUser();
  return teardown;
}
