#!/usr/bin/env node
// The CLI of another commit against this tree's, in one run: `run` of a busybox
// /bin/true bundle by each, with runc and `node -e 0` for scale, interleaved,
// medians and ratios to runc. The other commit is checked out in a git worktree
// under /tmp and built there (node_modules shared with this tree).
//
// usage (root): node bench/cli-revisions.mjs REV [rounds=30]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [rev, roundsArg] = process.argv.slice(2);
if (!rev) {
  console.error('usage: node bench/cli-revisions.mjs REV [rounds]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 30);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-revs-'));
const other = path.join(work, 'tree');
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });

try {
  sh('git', ['worktree', 'add', '--detach', other, rev], repo);
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(other, 'node_modules'));
  sh('node', ['tools/native-build.mjs'], other);
  spawnSync(path.join(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: other, stdio: 'ignore' }); // emits despite type errors
  sh('node', ['tools/bundle-cli.mjs'], other);
  // Older commits ran the ESM bundle straight from bin/hako too: bin/hako is the entry either way.
  const bundle = path.join(work, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs/bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(bundle, 'rootfs/bin/busybox'));
  fs.chmodSync(path.join(bundle, 'rootfs/bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(bundle, 'rootfs/bin/true'));
  for (const d of ['proc', 'dev', 'sys', 'tmp']) fs.mkdirSync(path.join(bundle, 'rootfs', d));
  sh('node', [path.join(repo, 'bin/hako'), 'spec', '-b', bundle]);
  const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  Object.assign(cfg.process, { terminal: false, args: ['/bin/true'] });
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg));

  const runners = {
    [`hako ${rev}`]: (id) => ['node', path.join(other, 'bin/hako'), '--root', path.join(work, 'old'), 'run', '-b', bundle, id],
    'hako (this tree)': (id) => [path.join(repo, 'bin/hako'), '--root', path.join(work, 'new'), 'run', '-b', bundle, id],
    runc: (id) => ['runc', '--root', path.join(work, 'runc'), 'run', '-b', bundle, id],
    'node -e 0': () => ['node', '-e', '0'],
  };
  const times = Object.fromEntries(Object.keys(runners).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, argv] of Object.entries(runners)) {
      const a = argv(`r${i}`);
      const t0 = process.hrtime.bigint();
      const r = spawnSync(a[0], a.slice(1), { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`${name} failed (exit ${r.status})`);
      times[name].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const runc = median(times.runc);
  console.log(`run of /bin/true, ${rounds} interleaved rounds, medians (ms, / runc):`);
  for (const [name, v] of Object.entries(times))
    console.log(`  ${name.padEnd(28)} ${median(v).toFixed(1).padStart(7)}  ${(median(v) / runc).toFixed(2)}`);
} finally {
  spawnSync('git', ['worktree', 'remove', '--force', other], { cwd: repo, stdio: 'ignore' });
  fs.rmSync(work, { recursive: true, force: true });
}
