// The CLI tried as a new user would, by a fuzzer: generated argument vectors for every verb
// (ids, flags, signals, paths, bundles gone wrong) and generated environments (XDG_RUNTIME_DIR,
// HOME, LISTEN_FDS, PATH), run as root and as the test user. Whatever the input:
// - the command finishes (no hang: stdin is /dev/null, and a timeout fails the run);
// - a failure exits non-zero with exactly one line on stderr, `hako: …` (or commander's own
//   usage line for an unknown verb or option, `error: …`), never a stack, `internal error`,
//   TypeError or ReferenceError; with --log, the log gets that failure as one line too (JSON
//   with --log-format json);
// - nothing is left behind: no entry under the --root it used (state dir, lock file), no
//   mount under the scratch dirs, no container process.
// The seed is pinned, so a run is reproducible; the hand-written cases after the property are
// what the fuzzer found, one readable regression test each.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';
import { CLI, IS_ROOT, TEST_USER } from '../helpers/env.js';
import { mountsUnder, rootEntries } from '../helpers/leftovers.js';

const { scratch, makeBundle } = scratchForThisFile();

/** Every container process the fuzzer's bundles start carries this in its environment. */
const TOKEN = `HAKO_FUZZ=${process.pid}-${Date.now()}`;
// HAKO_FUZZ_SEED explores other cases; the pinned seed is what CI runs.
const SEED = Number(process.env.HAKO_FUZZ_SEED ?? 20261130);
const RUNS_PER_USER = 150;
const TIMEOUT_MS = 15_000;

interface Fixture {
  who: Who;
  /** Scratch dir holding everything below, owned by `who`. */
  s: string;
  /** A valid bundle running `true`; `sleeper` runs `sleep 30`. */
  good: string;
  /** Odd bundles and odd paths, by name. */
  bundles: Record<string, string>;
  paths: Record<string, string>;
  /** State roots: some usable, some not. */
  roots: Record<string, string>;
  /** A valid XDG_RUNTIME_DIR (0700, owned by who). */
  xdg: string;
}

function chownTo(who: Who, p: string): void {
  if (who !== 'rootless') return;
  const { uid, gid } = testUserIds();
  fs.lchownSync(p, uid, gid);
}

function fixture(who: Who): Fixture {
  const s = scratch(who, 'fz-');
  const mk = (name: string, f: (p: string) => void, own = true) => {
    const p = path.join(s, name);
    f(p);
    if (own) chownTo(who, p);
    return p;
  };
  const { bundle: good } = makeBundle(who, (c) => c.process!.env!.push(TOKEN));
  const { bundle: sleeper } = makeBundle(who, (c) => {
    c.process!.env!.push(TOKEN);
    c.process!.args = ['sleep', '30'];
  });
  const goodConfig = path.join(good, 'config.json');
  const bundleWith = (name: string, cfg: (p: string) => void) =>
    mk(name, (b) => {
      fs.mkdirSync(b, { mode: 0o755 });
      chownTo(who, b);
      cfg(path.join(b, 'config.json'));
    });
  const bundles: Record<string, string> = {
    good,
    sleeper,
    missing: path.join(s, 'no-such-bundle'),
    file: mk('bundle-is-a-file', (p) => fs.writeFileSync(p, 'x')),
    cfgDir: bundleWith('b-cfgdir', (c) => fs.mkdirSync(c)),
    cfgLink: bundleWith('b-cfglink', (c) => fs.symlinkSync(goodConfig, c)),
    cfgDangling: bundleWith('b-dangling', (c) => fs.symlinkSync('/nonexistent/config.json', c)),
    cfgEmpty: bundleWith('b-empty', (c) => fs.writeFileSync(c, '')),
    cfgNotJson: bundleWith('b-notjson', (c) => fs.writeFileSync(c, '{"ociVersion": ')),
    cfgArray: bundleWith('b-array', (c) => fs.writeFileSync(c, '[]')),
    cfgHuge: bundleWith('b-huge', (c) => fs.writeFileSync(c, Buffer.alloc(17 * 1024 * 1024, 0x20))),
    cfgZero: bundleWith('b-zero', (c) => fs.symlinkSync('/dev/zero', c)),
    cfgFifo: bundleWith('b-fifo', (c) => execFileSync('mkfifo', [c])),
    unreadable: bundleWith('b-unreadable', (c) => fs.copyFileSync(goodConfig, c)),
  };
  fs.chmodSync(bundles.unreadable, 0o000);
  const others = mk('others', (p) => fs.mkdirSync(p, { mode: 0o755 }), false);
  // Owned by someone else: root's for the test user, the test user's for root.
  if (who === 'root') fs.chownSync(others, testUserIds().uid, testUserIds().gid);
  const paths: Record<string, string> = {
    file: mk('a-file', (p) => fs.writeFileSync(p, 'x')),
    dir: mk('a-dir', (p) => fs.mkdirSync(p, { mode: 0o755 })),
    missing: path.join(s, 'missing/deeper/x'),
    others,
    underFile: path.join(s, 'a-file/x'),
    proc: '/proc/no-such-dir/x',
    devnull: '/dev/null',
    empty: '',
    relative: 'rel/x',
    fifo: mk('a-fifo', (p) => execFileSync('mkfifo', [p])),
    zero: mk('zero.json', (p) => fs.symlinkSync('/dev/zero', p)),
  };
  const roots: Record<string, string> = {
    fresh: path.join(s, 'root-fresh'),
    existing: mk('root-existing', (p) => fs.mkdirSync(p, { mode: 0o700 })),
    nested: path.join(s, 'root-missing/a/b'),
    file: paths.file,
    others,
    symlink: mk('root-link', (p) => fs.symlinkSync(path.join(s, 'root-existing'), p)),
    groupWritable: mk('root-gw', (p) => fs.mkdirSync(p)),
    underFile: paths.underFile,
    proc: '/proc/no-such-dir/root',
    empty: '',
  };
  fs.chmodSync(roots.groupWritable, 0o775);
  const xdg = mk('xdg', (p) => fs.mkdirSync(p, { mode: 0o700 }));
  return { who, s, good, bundles, paths, roots, xdg };
}

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const OUT_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-fuzz-out-'));
afterAll(() => fs.rmSync(OUT_DIR, { recursive: true, force: true }));

/** hako (no --root added: the case chooses), stdin /dev/null, cwd the scratch dir. Output goes
 *  through files, not pipes: a container that create leaves behind inherits them, and would
 *  hold pipes open (and spawnSync waiting) for as long as it lives. */
function runCli(who: Who, args: string[], env: Record<string, string | undefined>, cwd: string): Outcome {
  const outFile = path.join(OUT_DIR, 'stdout');
  const errFile = path.join(OUT_DIR, 'stderr');
  const out = fs.openSync(outFile, 'w+');
  const err = fs.openSync(errFile, 'w+');
  try {
    const r = spawnCli(who, args, env, cwd, ['ignore', out, err]);
    return { ...r, stdout: fs.readFileSync(outFile, 'utf8'), stderr: fs.readFileSync(errFile, 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
}

function spawnCli(
  who: Who,
  args: string[],
  env: Record<string, string | undefined>,
  cwd: string,
  stdio: ['ignore', number, number],
): Omit<Outcome, 'stdout' | 'stderr'> {
  const set = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
  const unset = Object.entries(env)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  let r;
  if (who === 'root') {
    const full = { ...process.env, ...Object.fromEntries(set) };
    for (const k of unset) delete full[k];
    r = spawnSync(CLI, args, { stdio, cwd, env: full, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
  } else {
    const base = { PATH: process.env.PATH!, ...Object.fromEntries(set) };
    const vars = Object.entries(base).map(([k, v]) => `${k}=${v}`);
    r = spawnSync(
      'setpriv',
      ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', '/usr/bin/env', '-i', ...vars, CLI, ...args],
      {
        stdio,
        cwd,
        env: { PATH: process.env.PATH },
        timeout: TIMEOUT_MS,
        killSignal: 'SIGKILL',
      },
    );
  }
  return { status: r.status, signal: r.signal, timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' };
}

function entries(dir: string | undefined): string[] {
  if (!dir) return [];
  try {
    if (!fs.lstatSync(dir).isDirectory()) return [];
    return rootEntries(dir).sort();
  } catch {
    return [];
  }
}

/** Processes whose environment carries the token: the fuzzer's containers. */
function tokenProcesses(): number[] {
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(TOKEN)) found.push(Number(p));
    } catch {
      // gone, or a kernel thread
    }
  }
  return found;
}

/** What must hold of any failed command's output. */
function expectOneSentence(o: Outcome, what: string): void {
  const all = o.stdout + o.stderr;
  expect(all, what).not.toMatch(/^ {4}at /m);
  expect(all, what).not.toMatch(/internal error|TypeError|ReferenceError|RangeError|SyntaxError: |node:internal|\^$/m);
  if (o.status === 0) return;
  const lines = o.stderr.split('\n');
  expect(lines.at(-1), `${what}: stderr ends with a newline`).toBe('');
  expect(lines.length - 1, `${what}: one line on stderr, got:\n${o.stderr}`).toBe(1);
  expect(lines[0], what).toMatch(/^(hako: |hako up: |error: )\S/);
}

// ---------------------------------------------------------------- generators

const pick = <T>(rec: Record<string, T>) => fc.constantFrom(...Object.values(rec));

const weirdIds = fc.constantFrom(
  '',
  'a'.repeat(300),
  'a'.repeat(201),
  'a/b',
  '../x',
  '.',
  '..',
  '.hidden',
  'ünïcødé',
  'a\tb',
  'a\x01b',
  'a\nb',
  '-x',
  '--',
  'a b',
  '*',
  'x'.repeat(255),
);
const anyText = fc.string({ maxLength: 12, unit: 'binary' }).map((s) => s.replace(/\0/g, ''));
const idArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('fz1', 'fz-2.x') },
  { weight: 3, arbitrary: weirdIds },
  { weight: 1, arbitrary: anyText },
);
const numArb = fc.constantFrom(
  '',
  'abc',
  '-1',
  '0',
  '1',
  '3',
  '16',
  '253',
  '254',
  '5000',
  '99999999999',
  '1e3',
  '0x10',
  ' 2',
  '99999999999999999999999',
);
const signalArb = fc.oneof(
  fc.constantFrom(
    'SIGFOO',
    'KILL',
    'SIGKILL',
    '9',
    '0',
    '65',
    '99999',
    '-1',
    '',
    'sigterm',
    'SIGRTMIN+99',
    'RTMIN+1',
    'TERM',
    '15x',
    'SIG',
  ),
  anyText,
);
const durationArb = fc.constantFrom('', '0s', '5', '1e999s', '-1s', '5s', 'x', '1ms1', '99999999999h');
const listenArb = fc.constantFrom('bogus', '1.2.3.4:99999', ':', '', 'localhost:-1', '[::1]:x', '256.0.0.1:80', 'host:', ':80x');

function argvArb(f: Fixture): fc.Arbitrary<string[]> {
  const pathArb = pick(f.paths);
  const bundleArb = pick(f.bundles);
  const valueArb = fc.oneof(pathArb, numArb, anyText);
  const opt = (flag: string, v: fc.Arbitrary<string>) => v.map((x) => [flag, x]);
  const flag = (name: string): fc.Arbitrary<string[]> => fc.constant([name]);
  const opts = (...choices: fc.Arbitrary<string[]>[]) => fc.array(fc.oneof(...choices), { maxLength: 4 }).map((l) => l.flat());
  const createOpts = [
    opt('-b', bundleArb),
    opt('--bundle', bundleArb),
    opt('--pid-file', pathArb),
    opt('--console-socket', pathArb),
    opt('--preserve-fds', numArb),
    flag('--no-pivot'),
    flag('--no-new-keyring'),
    flag('--bogus'),
    flag('-b'),
  ];
  const withId = (verb: string, ...o: fc.Arbitrary<string[]>[]) =>
    fc
      .tuple(o.length ? opts(...o) : fc.constant([]), idArb, fc.boolean())
      .map(([os, id, idFirst]) => (idFirst ? [verb, id, ...os] : [verb, ...os, id]));
  const verbs: fc.Arbitrary<string[]>[] = [
    fc.tuple(opts(...createOpts), idArb).map(([o, id]) => ['create', ...o, id]),
    fc.tuple(opts(...createOpts, flag('-d'), flag('--keep')), idArb).map(([o, id]) => ['run', ...o, id]),
    withId('start'),
    withId('state'),
    withId('delete', flag('-f'), flag('--force')),
    withId('pause'),
    withId('resume'),
    withId('events', flag('--stats'), opt('--interval', durationArb)),
    withId('ps', opt('-f', fc.oneof(fc.constantFrom('json', 'table'), anyText)), opt('--format', anyText)),
    fc
      .tuple(fc.boolean(), idArb, fc.option(signalArb, { nil: undefined }))
      .map(([all, id, sig]) => ['kill', ...(all ? ['-a'] : []), id, ...(sig === undefined ? [] : [sig])]),
    fc
      .tuple(
        opts(
          opt('-p', pathArb),
          opt('--process', fc.oneof(pathArb, fc.constant('-'))),
          opt('-u', valueArb),
          opt('--cwd', valueArb),
          opt('-e', valueArb),
          opt('-c', valueArb),
          opt('--preserve-fds', numArb),
          opt('--pid-file', pathArb),
          opt('--console-socket', pathArb),
          flag('-t'),
          flag('-d'),
          flag('--bogus'),
        ),
        idArb,
        fc.array(fc.oneof(fc.constantFrom('true', 'sh', '/nonexistent', '-c'), anyText), { maxLength: 2 }),
      )
      .map(([o, id, cmd]) => ['exec', ...o, id, ...cmd]),
    opts(opt('-f', fc.oneof(fc.constantFrom('json', 'table'), anyText)), flag('-q'), flag('--bogus')).map((o) => ['list', ...o]),
    fc
      .tuple(
        opts(
          ...[
            '--memory',
            '--memory-swap',
            '--pids-limit',
            '--cpu-quota',
            '--cpu-share',
            '--blkio-weight',
            '--cpuset-cpus',
            '--kernel-memory',
            '--l3-cache-schema',
          ].map((fl) => opt(fl, valueArb)),
          opt('-r', fc.oneof(pathArb, fc.constant('-'))),
          opt('--resources', pathArb),
        ),
        idArb,
      )
      .map(([o, id]) => ['update', ...o, id]),
    opts(opt('-b', fc.oneof(pathArb, bundleArb)), flag('--rootless'), flag('--bogus')).map((o) => ['spec', ...o]),
    opts(opt('-b', bundleArb), opt('--preserve-fds', numArb), opt('--console-socket', pathArb), flag('--no-pivot')).map((o) => [
      'plan',
      ...o,
    ]),
    fc.array(anyText, { maxLength: 2 }).map((extra) => ['features', ...extra]),
    fc.constant(['doctor']),
    fc
      .tuple(
        fc.oneof(bundleArb, pathArb),
        fc.option(listenArb, { nil: undefined }),
        opts(opt('--restart', anyText), opt('--max-restarts', numArb), opt('--stop-timeout', numArb)),
      )
      .map(([b, l, o]) => ['up', b, ...(l === undefined ? [] : ['--listen', l]), ...o]),
    fc.oneof(fc.constantFrom('bogus', 'Create', 'checkpoint', 'restore', 'help', 'ls', '-x'), anyText).map((v) => [v]),
  ];
  return fc.oneof(...verbs);
}

interface Case {
  /** --root value, or undefined for none (the default root). */
  root: string | undefined;
  globals: string[];
  /** A fresh --log file of this case, or an odd path, or none. */
  log: { path: string; fresh: boolean; format?: string } | undefined;
  argv: string[];
  env: Record<string, string | undefined>;
}

function caseArb(f: Fixture): fc.Arbitrary<Case> {
  const freshLog = path.join(f.s, 'log.json');
  const logArb = fc.option(
    fc
      .tuple(
        fc.oneof({ weight: 3, arbitrary: fc.constant(freshLog) }, { weight: 2, arbitrary: pick(f.paths) }),
        fc.constantFrom(undefined, 'json', 'text', 'xml', ''),
      )
      .map(([p, fmt]) => ({
        path: p,
        fresh: p === freshLog,
        format: fmt,
      })),
    { nil: undefined, freq: 2 },
  );
  const globalArb = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          ['--systemd-cgroup'],
          ['--criu', 'x'],
          ['--cgroup-manager', 'disabled'],
          ['--bogus-global'],
          ['--rootless', 'maybe'],
          ['--rootless', 'auto'],
          ['--rootless', ''],
        ),
      ),
      { maxLength: 2 },
    )
    .map((l) => l.flat());
  // The rootless user may go without --root: its default root is then under XDG_RUNTIME_DIR,
  // which is kept inside the scratch dir. Root always names one (its default is /run/hako).
  const rootArb =
    f.who === 'root' ? pick(f.roots) : fc.oneof({ weight: 4, arbitrary: pick(f.roots) }, { weight: 1, arbitrary: fc.constant(undefined) });
  const envArb = fc.record(
    {
      XDG_RUNTIME_DIR: fc.constantFrom(undefined, f.xdg, 'relative/dir', f.paths.file, f.paths.missing, f.paths.others, ''),
      HOME: fc.constantFrom(undefined, '', '/', '/nonexistent', f.paths.file),
      LISTEN_FDS: fc.constantFrom(undefined, 'abc', '-1', '99999999999', '2', '', '1'),
      LISTEN_PID: fc.constantFrom(undefined, 'x', '1'),
      PATH: fc.constantFrom(undefined, ''),
    },
    { requiredKeys: [] },
  );
  return fc.record({ root: rootArb, globals: globalArb, log: logArb, argv: argvArb(f), env: envArb }).map((c) => {
    const env = { ...c.env };
    // Without --root the default must stay in the scratch dir: only XDG values that are in it.
    if (c.root === undefined && (env.XDG_RUNTIME_DIR === undefined || !env.XDG_RUNTIME_DIR.startsWith(f.s))) env.XDG_RUNTIME_DIR = f.xdg;
    // The test user's environment starts empty (setpriv --reset-env): PATH stays unless chosen.
    return { ...c, env };
  });
}

function argsOf(c: Case): string[] {
  return [
    ...(c.root === undefined ? [] : ['--root', c.root]),
    ...c.globals,
    ...(c.log ? ['--log', c.log.path, ...(c.log.format === undefined ? [] : ['--log-format', c.log.format])] : []),
    ...c.argv,
  ];
}

/** The state root a case used, to look under it afterwards. */
function rootOf(f: Fixture, c: Case): string | undefined {
  if (c.root === undefined) return c.env.XDG_RUNTIME_DIR ? path.join(c.env.XDG_RUNTIME_DIR, 'hako') : undefined;
  return c.root === '' ? undefined : path.resolve(f.s, c.root);
}

/** Removes what a successful command made on purpose: its container, spec's config.json. */
function cleanUp(f: Fixture, c: Case): void {
  const id = c.argv.find((a, i) => i > 0 && (a === 'fz1' || a === 'fz-2.x'));
  if (id)
    runCli(
      f.who,
      [...(c.root === undefined ? [] : ['--root', c.root]), 'delete', '--force', id],
      { XDG_RUNTIME_DIR: c.env.XDG_RUNTIME_DIR },
      f.s,
    );
  // spec writes a config.json only where there was none: the scratch dir (its default
  // bundle is the cwd), the plain dir, and the others' dir (root may write there).
  if (c.argv[0] === 'spec') for (const d of [f.s, f.paths.dir, f.paths.others]) fs.rmSync(path.join(d, 'config.json'), { force: true });
}

function check(f: Fixture, c: Case): void {
  const args = argsOf(c);
  const what = `${f.who}: hako ${JSON.stringify(args)} env ${JSON.stringify(c.env)}`;
  const root = rootOf(f, c);
  const before = entries(root);
  if (c.log?.fresh) fs.rmSync(c.log.path, { force: true });
  const o = runCli(f.who, args, c.env, f.s);
  try {
    expect(o.timedOut, `${what}: timed out`).toBe(false);
    expect(o.signal, `${what}: killed by a signal`).toBe(null);
    // doctor reports on stdout and exits 1 when rootless containers cannot run here.
    if (c.argv[0] !== 'doctor') expectOneSentence(o, what);
    if (
      o.status !== 0 &&
      c.argv[0] !== 'doctor' &&
      c.log?.fresh &&
      (c.log.format === 'json' || c.log.format === 'text' || c.log.format === undefined)
    ) {
      // A valid --log: the failure is in it, as one line (JSON with --log-format json).
      const text = fs.existsSync(c.log.path) ? fs.readFileSync(c.log.path, 'utf8') : '';
      const lines = text.split('\n').filter(Boolean);
      expect(lines, `${what}: the log holds the failure as one line`).toHaveLength(1);
      if (c.log.format === 'json') {
        const rec = JSON.parse(lines[0]) as { level: string; msg: string };
        expect(rec.level, what).toBe('error');
        expect(rec.msg, what).toBeTypeOf('string');
      }
    }
  } finally {
    if (o.status === 0) cleanUp(f, c);
  }
  expect(entries(root), `${what}: left entries under the state root ${root}`).toEqual(before);
  expect(mountsUnder(f.s), `${what}: left mounts`).toEqual([]);
  expect(tokenProcesses(), `${what}: left container processes`).toEqual([]);
}

describe.each(WHO)('the CLI under fuzzed arguments and environments (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);
  let f: Fixture;
  beforeAll(() => {
    if (who === 'root' && !IS_ROOT) return;
    f = fixture(who);
  });

  run(
    'every failure is one sentence and leaves nothing behind',
    () => {
      fc.assert(
        fc.property(
          fc.constant(null).chain(() => caseArb(f)),
          (c) => check(f, c),
        ),
        { seed: SEED + (who === 'root' ? 1 : 0), numRuns: RUNS_PER_USER, endOnFailure: true },
      );
    },
    240_000,
  );
});

// What the fuzzer found, one case each (both users where both apply).
describe.each(WHO)('what the CLI fuzzer found (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);
  let f: Fixture;
  beforeAll(() => {
    if (who === 'root' && !IS_ROOT) return;
    f = fixture(who);
  });
  const cli = (args: string[], env: Record<string, string | undefined> = {}) => {
    const o = runCli(who, args, env, f.s);
    expect(o.timedOut, `hako ${args.join(' ')} timed out`).toBe(false);
    return o;
  };
  const refused = (args: string[], line: string | RegExp, env: Record<string, string | undefined> = {}) => {
    const o = cli(args, env);
    expect(o.status).not.toBe(0);
    expectOneSentence(o, args.join(' '));
    if (typeof line === 'string') expect(o.stderr).toBe(`${line}\n`);
    else expect(o.stderr.trimEnd()).toMatch(line);
    return o;
  };

  run('a flag that takes a number names the flag and the value (was: internal error and a stack)', () => {
    const root = f.roots.fresh;
    refused(
      ['--root', root, 'create', '--preserve-fds', 'abc', '-b', f.good, 'fz1'],
      `error: option '--preserve-fds <n>' argument 'abc' is invalid. "abc" is not a non-negative integer.`,
    );
    refused(
      ['--root', root, 'run', '--preserve-fds', '99999999999999999999', '-b', f.good, 'fz1'],
      /^error: option '--preserve-fds <n>' argument '9+' is invalid\. "9+" is too large\.$/,
    );
    expect(entries(root)).toEqual([]);
  });

  run('--preserve-fds beyond what hako was given is refused at once (was: a hang, E2BIG, EPIPE)', () => {
    const root = f.roots.fresh;
    refused(
      ['--root', root, 'create', '--preserve-fds', '99999999999', '-b', f.good, 'fz1'],
      'hako: --preserve-fds 99999999999: at most 253 fds can be passed to a container',
    );
    refused(
      ['--root', root, 'plan', '--preserve-fds', '99999999999', '-b', f.good],
      'hako: --preserve-fds 99999999999: at most 253 fds can be passed to a container',
    );
    refused(
      ['--root', root, 'run', '--preserve-fds', '200', '-b', f.good, 'fz1'],
      /^hako: --preserve-fds 200: fd \d+ is not open \(it passes fds 3 to 202, which hako must have been given\)$/,
    );
    // LISTEN_FDS in hako's environment adds to them.
    refused(
      ['--root', root, 'run', '-b', f.good, 'fz1'],
      'hako: --preserve-fds 99999999999: at most 253 fds can be passed to a container',
      { LISTEN_FDS: '99999999999' },
    );
    expect(entries(root)).toEqual([]);
    expect(tokenProcesses()).toEqual([]);
  });

  run('a --log that cannot be written is one sentence (was: a raw node crash, or a hang under /proc)', () => {
    const root = f.roots.fresh;
    refused(
      ['--root', root, '--log', f.paths.dir, 'state', 'fz1'],
      `hako: --log ${f.paths.dir}: cannot open it for writing: it is a directory`,
    );
    refused(
      ['--root', root, '--log', f.paths.underFile, 'state', 'fz1'],
      `hako: --log ${f.paths.underFile}: cannot open it for writing: a part of its path is not a directory`,
    );
    refused(
      ['--root', root, '--log', '/proc/no-such-dir/log', 'state', 'fz1'],
      'hako: --log /proc/no-such-dir/log: cannot open it for writing: its directory cannot be created',
    );
    refused(
      ['--root', root, '--log', f.paths.fifo, 'state', 'fz1'],
      `hako: --log ${f.paths.fifo}: cannot open it for writing: it is a FIFO nobody reads`,
    );
  });

  run("every failure, commander's usage errors too, is one line in a JSON --log", () => {
    const log = path.join(f.s, 'usage.json');
    for (const [args, msg] of [
      [['bogus'], `unknown command 'bogus'`],
      [['create', '--preserve-fds', 'x', 'fz1'], `option '--preserve-fds <n>' argument 'x' is invalid. "x" is not a non-negative integer.`],
      [['state', 'fz1'], 'container "fz1" does not exist'],
    ] as const) {
      fs.rmSync(log, { force: true });
      const o = cli(['--root', f.roots.fresh, '--log', log, '--log-format', 'json', ...args]);
      expect(o.status).not.toBe(0);
      const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0])).toMatchObject({ level: 'error', msg });
    }
  });

  run("commander's suggestion stays on its error line", () => {
    refused(['--root', f.roots.fresh, 'Create'], `error: unknown command 'Create' (Did you mean create?)`);
  });

  run('global flags with values runc refuses are refused', () => {
    refused(['--root', f.roots.fresh, '--log-format', 'xml', 'list'], 'hako: --log-format: "xml" is not text or json');
    refused(['--root', f.roots.fresh, '--rootless', 'maybe', 'list'], 'hako: --rootless: "maybe" is not true, false or auto');
    refused(['--root', f.roots.fresh, 'list', '-f', 'xml'], 'hako: list: --format must be table or json, not "xml"');
  });

  run('a --root below a file is one sentence (was: internal error ENOTDIR)', () => {
    refused(
      ['--root', f.paths.underFile, 'state', 'fz1'],
      `hako: cannot use the state root ${f.paths.underFile}: a part of its path is not a directory`,
    );
  });

  run(
    "config.json that is not a regular file, or too big, is refused without reading it (was: EISDIR in node's words, a hang on /dev/zero or a FIFO)",
    () => {
      const root = f.roots.fresh;
      const cfg = (b: string) => path.join(b, 'config.json');
      refused(['--root', root, 'run', '-b', f.bundles.cfgDir, 'fz1'], `hako: cannot read ${cfg(f.bundles.cfgDir)}: it is a directory`);
      refused(
        ['--root', root, 'run', '-b', f.bundles.cfgZero, 'fz1'],
        `hako: cannot read ${cfg(f.bundles.cfgZero)}: it is not a regular file`,
      );
      refused(
        ['--root', root, 'create', '-b', f.bundles.cfgFifo, 'fz1'],
        `hako: cannot read ${cfg(f.bundles.cfgFifo)}: it is not a regular file`,
      );
      refused(
        ['--root', root, 'plan', '-b', f.bundles.cfgHuge],
        `hako: cannot read ${cfg(f.bundles.cfgHuge)}: it is ${17 * 1024 * 1024} bytes, more than the 16777216 hako reads`,
      );
      refused(
        ['--root', root, 'run', '-b', f.bundles.file, 'fz1'],
        `hako: cannot read ${cfg(f.bundles.file)}: a part of its path is not a directory`,
      );
      // A symlinked config.json is followed, as runc does.
      expect(cli(['--root', root, 'run', '-b', f.bundles.cfgLink, 'fz1']).status).toBe(0);
      expect(entries(root)).toEqual([]);
    },
  );

  run('spec into a missing bundle, or over a dangling symlink (was: internal error, or a write through the link)', () => {
    refused(['spec', '-b', f.bundles.missing], `hako: --bundle: ${f.bundles.missing} does not exist`);
    refused(
      ['spec', '-b', f.bundles.cfgDangling],
      `hako: ${path.join(f.bundles.cfgDangling, 'config.json')} already exists; remove it first`,
    );
    expect(fs.existsSync('/nonexistent/config.json')).toBe(false);
  });

  run('exec: --process unreadable, --preserve-fds too many (was: internal error with a stack)', () => {
    const root = f.roots.existing;
    expect(runCli(who, ['--root', root, 'create', '-b', f.bundles.sleeper, 'fz-exec'], {}, f.s).status).toBe(0);
    try {
      refused(['--root', root, 'exec', '-p', f.paths.missing, 'fz-exec'], `hako: cannot read --process ${f.paths.missing}: no such file`);
      refused(['--root', root, 'exec', '-p', f.paths.dir, 'fz-exec'], `hako: cannot read --process ${f.paths.dir}: it is a directory`);
      refused(
        ['--root', root, 'exec', '-p', f.paths.zero, 'fz-exec'],
        `hako: cannot read --process ${f.paths.zero}: it is not a regular file`,
      );
      refused(
        ['--root', root, 'exec', '--preserve-fds', '9999', 'fz-exec', 'true'],
        'hako: --preserve-fds 9999: at most 253 fds can be passed to a container',
      );
      refused(
        ['--root', root, 'update', '-r', f.paths.zero, 'fz-exec'],
        `hako: cannot read --resources ${f.paths.zero}: it is not a regular file`,
      );
    } finally {
      runCli(who, ['--root', root, 'delete', '--force', 'fz-exec'], {}, f.s);
    }
    expect(entries(root)).toEqual([]);
    expect(tokenProcesses()).toEqual([]);
  });
});
