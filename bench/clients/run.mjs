#!/usr/bin/env node
// The lifecycle a client sees, per runtime: `ctr run --rm IMAGE ID /bin/true`
// (containerd 1.6's runc shim calls create, start, delete, delete --force) and
// `docker run --rm --network none IMAGE /bin/true` (dockerd 20.10 → containerd →
// the shim), with hako, runc and crun in one run, interleaved (A B C A B C …),
// medians and ratios to runc.
//
// crun refuses this hybrid-cgroup host; it runs behind a wrapper that gives it a
// private mount namespace with a tmpfs over /sys/fs/cgroup and
// --cgroup-manager=disabled (MACHINE.md), so crun's figures carry the cost of an
// extra `unshare` and `sh` per call (about 2 ms each here, measured below too).
//
// Usage (root): node bench/clients/run.mjs [rounds]   (default 10; BENCH_N too)
// Needs: containerd, ctr, dockerd, docker (Debian docker.io), runc, crun, and `npm run build`.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = Number(process.argv[2] ?? process.env.BENCH_N ?? 10);
const ROOTFS = path.join(REPO, 'test/.work/busybox-rootfs');
const DOCKER = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

if (process.geteuid() !== 0) {
  console.error('bench/clients: run as root (containerd and dockerd run as root)');
  process.exit(1);
}
for (const c of ['containerd', 'ctr', 'dockerd', 'runc', 'crun', 'unshare']) {
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) {
    console.error(`bench/clients: ${c} is not installed (test/debian-packages.txt)`);
    process.exit(1);
  }
}
if (!fs.existsSync(path.join(ROOTFS, 'bin/sh'))) {
  console.error(`bench/clients: ${ROOTFS} is missing: run the tests once (vitest's global setup builds it)`);
  process.exit(1);
}

fs.mkdirSync(path.join(REPO, 'test/.work'), { recursive: true });
const dir = fs.mkdtempSync(path.join(REPO, 'test/.work/bench-clients-'));
const sock = path.join(dir, 'ctd.sock');
const dsock = path.join(dir, 'docker.sock');

// The runtimes, as the clients get them: a path to a runc-compatible binary.
const crunWrapper = path.join(dir, 'crun-nocgroup');
fs.writeFileSync(
  crunWrapper,
  `#!/bin/sh
exec unshare -m --propagation private sh -c 'mount -t tmpfs none /sys/fs/cgroup && exec crun --cgroup-manager=disabled "$@"' crun "$@"
`,
  { mode: 0o755 },
);
// hako with its planner off (issue 20): today's path behind the front, through a sh wrapper
// that only sets HAKO_PLANNER (one extra exec of sh per call, as crun's wrapper has).
const hakoOff = path.join(dir, 'hako-planner-off');
fs.writeFileSync(hakoOff, `#!/bin/sh\nHAKO_PLANNER=off exec '${path.join(REPO, 'bin/hako')}' "$@"\n`, { mode: 0o755 });
const RUNTIMES = {
  hako: path.join(REPO, 'bin/hako'),
  'hako-off': hakoOff,
  runc: execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim(),
  crun: crunWrapper,
};

function daemon(cmd, args, log) {
  const out = fs.openSync(path.join(dir, log), 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  return p;
}
async function until(what, fn, ms = 60_000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const ctr = (args) => spawnSync('ctr', ['--address', sock, '--namespace', 'bench', ...args], { encoding: 'utf8' });
const docker = (args) => spawnSync(DOCKER, ['-H', `unix://${dsock}`, ...args], { encoding: 'utf8' });

fs.writeFileSync(
  path.join(dir, 'containerd.toml'),
  `version = 2
root = "${dir}/ctd-root"
state = "${dir}/ctd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/ctd-opt"
`,
);

const procs = [];
function stop(p) {
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    // gone
  }
}
async function teardown() {
  for (const p of procs.reverse()) {
    stop(p);
    await until(
      'daemon exit',
      () => {
        try {
          process.kill(p.pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      20_000,
    ).catch(() => process.kill(p.pid, 'SIGKILL'));
  }
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  fs.rmSync(dir, { recursive: true, force: true });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function timed(fn) {
  const t = process.hrtime.bigint();
  const r = fn();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${r.stderr}`);
  return ms;
}

let n = 0;
const CASES = {
  'ctr run': (rt) => {
    const id = `b${n++}`;
    return ctr([
      'run',
      '--rm',
      '--runc-binary',
      RUNTIMES[rt],
      '--runc-root',
      path.join(dir, `root-${rt}`),
      '--fifo-dir',
      path.join(dir, 'fifo'),
      'docker.io/local/bench:1',
      id,
      '/bin/true',
    ]);
  },
  'docker run': (rt) =>
    docker(['run', '--rm', '--network', 'none', '--runtime', rt === 'runc' ? 'runc' : `bench-${rt}`, 'local/bench:1', '/bin/true']),
};

try {
  procs.push(daemon('containerd', ['--config', path.join(dir, 'containerd.toml')], 'containerd.log'));
  await until('containerd', () => fs.existsSync(sock) && ctr(['version']).status === 0);
  procs.push(
    daemon(
      'dockerd',
      [
        '--data-root',
        path.join(dir, 'docker-root'),
        '--exec-root',
        path.join(dir, 'docker-exec'),
        '-H',
        `unix://${dsock}`,
        '--pidfile',
        path.join(dir, 'docker.pid'),
        '--iptables=false',
        '--ip-masq=false',
        '--bridge=none',
        '--containerd',
        sock,
        '--add-runtime',
        `bench-hako=${RUNTIMES.hako}`,
        '--add-runtime',
        `bench-crun=${RUNTIMES.crun}`,
        '--add-runtime',
        `bench-hako-off=${RUNTIMES['hako-off']}`,
      ],
      'dockerd.log',
    ),
  );
  await until('dockerd', () => fs.existsSync(dsock) && docker(['version']).status === 0);
  const tar = path.join(dir, 'rootfs.tar');
  execFileSync('tar', ['--numeric-owner', '-C', ROOTFS, '-cf', tar, '.']);
  if (docker(['import', tar, 'local/bench:1']).status !== 0) throw new Error('docker import failed');
  execFileSync(DOCKER, ['-H', `unix://${dsock}`, 'save', '-o', path.join(dir, 'image.tar'), 'local/bench:1']);
  const imp = ctr(['images', 'import', path.join(dir, 'image.tar')]);
  if (imp.status !== 0) throw new Error(`ctr import: ${imp.stderr}`);

  // Bare cost of the crun wrapper's extra exec's, to read crun's figures by.
  const wrapCost = [];
  for (let i = 0; i < 20; i++)
    wrapCost.push(
      timed(() => spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /sys/fs/cgroup && exec true'])),
    );

  const runtimes = Object.keys(RUNTIMES);
  const results = {};
  for (const [name, fn] of Object.entries(CASES)) {
    results[name] = Object.fromEntries(runtimes.map((r) => [r, []]));
    for (const rt of runtimes) timed(() => fn(rt)); // warm-up (page cache, shim binary)
    for (let i = 0; i < ROUNDS; i++) {
      const order = runtimes.map((_, k) => runtimes[(k + i) % runtimes.length]);
      for (const rt of order) results[name][rt].push(timed(() => fn(rt)));
    }
  }

  const lines = [];
  lines.push(`rounds: ${ROUNDS}, interleaved; median ms (ratio to runc)`);
  lines.push(`| lifecycle | ${runtimes.join(' | ')} |`);
  lines.push(`| --- | ${runtimes.map(() => '---').join(' | ')} |`);
  for (const [name, byRt] of Object.entries(results)) {
    const base = median(byRt.runc);
    lines.push(
      `| ${name} /bin/true | ${runtimes.map((rt) => `${median(byRt[rt]).toFixed(0)} (${(median(byRt[rt]) / base).toFixed(2)}×)`).join(' | ')} |`,
    );
  }
  lines.push(
    `crun's wrapper (unshare -m + sh + tmpfs mount) alone: ${median(wrapCost).toFixed(1)} ms per call; the shim calls the runtime 4 times per ctr run`,
  );
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ rounds: ROUNDS, results }, null, 0));
} finally {
  await teardown();
}
