// The escape suite's tools (issue 12): escape.c compiled once per run into the work dir, a
// rootfs with it, a way to get it into any other container (the FHIR rootfs has no shell), and
// runners that start a hako container from a given OCI config — rootless or root — run the
// program inside it and hand back one result per attempt.
//
// Entry points for a later test (the FHIR policy's):
//   const cfg = withEscapeBinary(readBundleConfig('bundles/fhir'));     // + the policy's edits
//   const r = runEscape({ who, config: cfg, scratch, args: escapeArgs({ tcp, udp }) });
//   // or, into a container the test runs itself (the server as its init):
//   const r = execEscape(who, stateRoot, id, { args: escapeArgs({ ... }) });
//   expect(worked(r)).toEqual([]);
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { beforeAll } from 'vitest';
import { REPO, TEST_USER, WORK } from '../helpers/env.js';
import { hako, hakoAsync, scratch as plainScratch, scratchForThisFile, testUserIds, type Who } from '../helpers/hako.js';
import { buildAttackTools, copyRootfs, jsonLines } from '../security/helpers/attack.js';
import type { Config } from '../../src/oci/config.js';
import { errnoName } from '../../src/sys/errno.js';

const SRC = path.join(REPO, 'test/escape/escape.c');
/** The static program, compiled once per run (the global teardown removes it after the run). */
export const ESCAPE_BIN = path.join(WORK, 'escape-tools/escape');
/** busybox (a few applets) + /bin/escape: a rootfs for busybox-style configs. */
export const ESCAPE_ROOTFS = path.join(WORK, 'escape-rootfs');
/** Where withEscapeBinary() binds the program into a container that has no copy of its own:
 *  under /dev, the tmpfs every default config mounts, so the mount point is made there and
 *  never in the (host's, maybe read-only) rootfs. */
export const ESCAPE_AT = '/dev/escape';

/** One attempt's line (escape.c): ok=true means the attack worked. */
export interface EscapeResult {
  class: string;
  ok: boolean;
  errno: number;
  detail: string;
  skipped?: boolean;
}

export interface EscapeOutcome {
  results: EscapeResult[];
  byClass: Map<string, EscapeResult>;
  /** the program's last line was seen: it did not die on the way */
  done: boolean;
  status: number | null;
  stdout: string;
  stderr: string;
}

function newer(out: string, src: string): boolean {
  try {
    return fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs;
  } catch {
    return false;
  }
}

/** Compiles escape.c (gcc -static -O2 -Wall -Werror) once per run and makes ESCAPE_ROOTFS from
 *  the attack tests' small busybox rootfs (test/security/helpers/attack.ts). */
export function buildEscape(): { binary: string; rootfs: string } {
  fs.mkdirSync(path.dirname(ESCAPE_BIN), { recursive: true, mode: 0o755 });
  if (!newer(ESCAPE_BIN, SRC)) {
    const tmp = `${ESCAPE_BIN}.${process.pid}.tmp`;
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', tmp, SRC], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, ESCAPE_BIN);
  }
  if (!newer(path.join(ESCAPE_ROOTFS, 'bin/escape'), ESCAPE_BIN)) {
    buildAttackTools(); // copyRootfs() links its files from the attack rootfs
    const tmp = `${ESCAPE_ROOTFS}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    copyRootfs(tmp);
    fs.copyFileSync(ESCAPE_BIN, path.join(tmp, 'bin/escape'));
    fs.chmodSync(path.join(tmp, 'bin/escape'), 0o755);
    fs.rmSync(ESCAPE_ROOTFS, { recursive: true, force: true });
    fs.renameSync(tmp, ESCAPE_ROOTFS);
  }
  return { binary: ESCAPE_BIN, rootfs: ESCAPE_ROOTFS };
}

/** escape's arguments: options first, then the classes (default: all). */
export function escapeArgs(o: { tcp?: string; udp?: string; forkN?: number; tmp?: string; classes?: string[] } = {}): string[] {
  return [
    ...(o.tcp ? [`--tcp=${o.tcp}`] : []),
    ...(o.udp ? [`--udp=${o.udp}`] : []),
    ...(o.forkN ? [`--fork-n=${o.forkN}`] : []),
    ...(o.tmp ? [`--tmp=${o.tmp}`] : []),
    ...(o.classes?.length ? o.classes : ['all']),
  ];
}

export function parseEscape(stdout: string, status: number | null = 0, stderr = ''): EscapeOutcome {
  const lines = jsonLines<Record<string, unknown>>(stdout);
  const results = lines.filter((l) => typeof l.class === 'string') as unknown as EscapeResult[];
  return { results, byClass: new Map(results.map((r) => [r.class, r])), done: lines.some((l) => l.done === true), status, stdout, stderr };
}

/** The attacks that worked (skipped ones had nothing to attack). */
export const worked = (o: EscapeOutcome): string[] => o.results.filter((r) => r.ok).map((r) => r.class);

/** A bundle's config.json with root.path and bind sources made absolute (hako resolves them
 *  against the bundle, and runEscape writes the config into a bundle of its own): e.g.
 *  readBundleConfig('bundles/fhir'). */
export function readBundleConfig(bundleDir: string): Config {
  const dir = path.resolve(REPO, bundleDir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Config;
  if (cfg.root?.path && !path.isAbsolute(cfg.root.path)) cfg.root.path = path.join(dir, cfg.root.path);
  for (const m of cfg.mounts ?? []) {
    const bind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    if (bind && m.source && !path.isAbsolute(m.source)) m.source = path.join(dir, m.source);
  }
  return cfg;
}

/** The config `hako spec` writes (`--rootless` for rootless), written by the CLI itself as `who`. */
export function specConfig(who: Who, scratch: (who: Who, prefix?: string) => string = plainScratch): Config {
  const dir = scratch(who, 'spec-');
  const r = hako(who, scratch(who, 'root-'), ['spec', ...(who === 'rootless' ? ['--rootless'] : []), '-b', dir]);
  if (r.status !== 0) throw new Error(`hako spec failed (${r.status}): ${r.stderr}`);
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Config;
}

/** The containers' generic default profile (Podman's /usr/share/containers/seccomp.json) as the
 *  FHIR bundle's build resolves it: what the bundle shipped before its learned policy. */
export async function genericSeccomp(): Promise<Record<string, unknown>> {
  const { seccomp } = (await import(path.join(REPO, 'bundles/fhir/build/config.mjs'))) as {
    seccomp: (p: unknown) => Record<string, unknown>;
  };
  return seccomp(JSON.parse(fs.readFileSync('/usr/share/containers/seccomp.json', 'utf8')));
}

/** A config that runs on ESCAPE_ROOTFS (busybox + /bin/escape); its own process a `sleep`
 *  that an exec can enter (runEscape's 'run' mode replaces it with the program). */
export function onEscapeRootfs(cfg: Config): Config {
  const c = structuredClone(cfg);
  c.root = { path: ESCAPE_ROOTFS, readonly: c.root?.readonly ?? true };
  c.process!.terminal = false;
  c.process!.args = ['sleep', '600'];
  return c;
}

/** Binds the program into any config at ESCAPE_AT (a rootfs of its own is not needed). */
export function withEscapeBinary(cfg: Config, at = ESCAPE_AT): Config {
  const c = structuredClone(cfg);
  c.mounts = [...(c.mounts ?? []), { destination: at, type: 'bind', source: ESCAPE_BIN, options: ['bind', 'ro', 'nosuid'] }];
  return c;
}

/** Where the program is inside a container made from cfg. */
function binaryIn(cfg: Config): string {
  if (cfg.mounts?.some((m) => m.source === ESCAPE_BIN)) return cfg.mounts.find((m) => m.source === ESCAPE_BIN)!.destination;
  if (cfg.root?.path === ESCAPE_ROOTFS) return '/bin/escape';
  throw new Error(`the escape program is not in this config: use onEscapeRootfs() or withEscapeBinary() (root ${cfg.root?.path})`);
}

/** Writes cfg as a bundle owned by whoever runs hako (rootless: the test user). */
function writeBundle(who: Who, cfg: Config, scratch: (who: Who, prefix?: string) => string): string {
  const bundle = scratch(who, 'escape-b-');
  const file = path.join(bundle, 'config.json');
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  if (who === 'rootless') {
    const { uid, gid } = testUserIds();
    fs.chownSync(file, uid, gid);
  }
  return bundle;
}

export interface RunEscapeOptions {
  who: Who;
  /** a full OCI config: onEscapeRootfs(...) or withEscapeBinary(...) of it */
  config: Config;
  /** escape's arguments (escapeArgs()) */
  args?: string[];
  /** 'run': the program is the container's process (pid 1). 'exec': the config's own process
   *  runs (detached) and the program enters through `hako exec`, as an attacker who got code
   *  execution in a running server would; the container is deleted after. */
  mode?: 'run' | 'exec';
  /** makes dirs owned by who (scratchForThisFile().scratch removes them after the file) */
  scratch?: (who: Who, prefix?: string) => string;
  timeoutMs?: number;
}

/** Runs the escape program in a hako container made from opts.config; the parsed results. */
export function runEscape(opts: RunEscapeOptions): EscapeOutcome {
  const sc = opts.scratch ?? plainScratch;
  const args = opts.args ?? escapeArgs();
  const timeout = opts.timeoutMs ?? 180_000;
  const cfg = structuredClone(opts.config);
  const bin = binaryIn(cfg);
  const root = sc(opts.who, 'escape-root-');
  const id = `escape-${crypto.randomBytes(4).toString('hex')}`;
  if ((opts.mode ?? 'run') === 'run') {
    cfg.process!.args = [bin, ...args];
    const r = hako(opts.who, root, ['run', '-b', writeBundle(opts.who, cfg, sc), id], { timeout });
    hako(opts.who, root, ['delete', '--force', id]); // only if it was left behind (a timeout)
    return parseEscape(r.stdout ?? '', r.status, r.stderr ?? '');
  }
  const started = hako(opts.who, root, ['run', '-d', '-b', writeBundle(opts.who, cfg, sc), id], { detached: true });
  if (started.status !== 0) throw new Error(`hako run -d ${id} failed (${started.status}): ${started.stderr}`);
  try {
    return execEscape(opts.who, root, id, { args, timeoutMs: timeout, at: bin });
  } finally {
    hako(opts.who, root, ['delete', '--force', id]);
  }
}

/** `hako exec ID <escape> ARGS` into a running container the caller started (and deletes after). */
export function execEscape(
  who: Who,
  root: string,
  id: string,
  o: { args?: string[]; timeoutMs?: number; at?: string } = {},
): EscapeOutcome {
  const r = hako(who, root, ['exec', id, o.at ?? ESCAPE_AT, ...(o.args ?? escapeArgs())], { timeout: o.timeoutMs ?? 180_000 });
  return parseEscape(r.stdout ?? '', r.status, r.stderr ?? '');
}

/** execEscape into a container served by a `hako up` of the test's own: the test's event loop
 *  keeps draining up's output meanwhile (a blocked pipe would stall up and its seccomp agent). */
export async function execEscapeAsync(
  who: Who,
  root: string,
  id: string,
  o: { args?: string[]; timeoutMs?: number; at?: string } = {},
): Promise<EscapeOutcome> {
  const r = await hakoAsync(who, root, ['exec', id, o.at ?? ESCAPE_AT, ...(o.args ?? escapeArgs())], { timeout: o.timeoutMs ?? 180_000 });
  return parseEscape(r.stdout, r.status, r.stderr);
}

/** The program outside any container (the control): as root, or as the test user. */
export function runEscapeOnHost(who: Who, args: string[]): EscapeOutcome {
  const argv =
    who === 'root'
      ? [ESCAPE_BIN, ...args]
      : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ESCAPE_BIN, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000, cwd: os.tmpdir() });
  return parseEscape(r.stdout ?? '', r.status, r.stderr ?? '');
}

/** Listeners the network attempts aim at: a TCP port that accepts and a UDP port that echoes,
 *  on every address, counting what reached them (the host's side of the evidence). They live in
 *  a process of their own: the runners are synchronous (spawnSync), and a listener on the test's
 *  own event loop could not answer while the program waits for its echo. */
export interface Listeners {
  /** a host address a container could aim at: the first non-loopback IPv4, else 127.0.0.1 */
  host: string;
  tcpPort: number;
  udpPort: number;
  readonly tcpAccepted: number;
  readonly udpReceived: number;
  close: () => Promise<void>;
}

export function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

const LISTENER = `
const net = require('node:net'), dgram = require('node:dgram'), fs = require('node:fs');
const log = process.argv[1];
process.stdin.on('end', () => process.exit(0)).resume(); // the test is gone: so are we
const t = net.createServer((s) => { fs.appendFileSync(log, 'tcp\\n'); s.destroy(); });
t.listen(0, '0.0.0.0', () => {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => { fs.appendFileSync(log, 'udp\\n'); u.send(m, r.port, r.address); });
  u.bind(0, '0.0.0.0', () => process.stdout.write(JSON.stringify({ tcp: t.address().port, udp: u.address().port }) + '\\n'));
});`;

export async function startListeners(): Promise<Listeners> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'escape-listen-'));
  const log = path.join(dir, 'log');
  fs.writeFileSync(log, '');
  const child = spawn(process.execPath, ['-e', LISTENER, log], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<{ tcp: number; udp: number }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.on('exit', (code) => reject(new Error(`the listener exited (${code})`)));
  });
  const count = (what: string) =>
    fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l === what).length;
  return {
    host: hostAddress(),
    tcpPort: ports.tcp,
    udpPort: ports.udp,
    get tcpAccepted() {
      return count('tcp');
    },
    get udpReceived() {
      return count('udp');
    },
    close: async () => {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A table, class × column, each cell "refused (ERRNO)", "WORKED", "n/a" (nothing to attack
 *  here) or "—" (not run in that column). */
export function escapeTable(columns: Array<{ name: string; outcome: EscapeOutcome }>, errnoName: (n: number) => string = String): string {
  const classes: string[] = [];
  for (const c of columns) for (const r of c.outcome.results) if (!classes.includes(r.class)) classes.push(r.class);
  const cell = (r: EscapeResult | undefined) =>
    !r ? '—' : r.skipped ? 'n/a' : r.ok ? '**WORKED**' : r.errno ? `refused (${errnoName(r.errno)})` : 'refused';
  const rows = [`| class | ${columns.map((c) => c.name).join(' | ')} |`, `| --- | ${columns.map(() => '---').join(' | ')} |`];
  for (const k of classes) rows.push(`| ${k} | ${columns.map((c) => cell(c.outcome.byClass.get(k))).join(' | ')} |`);
  return rows.join('\n');
}

/** Everything one test file needs: the program built before its tests, its dirs removed after. */
export function escapeKit() {
  const sc = scratchForThisFile();
  beforeAll(() => {
    buildEscape();
  });
  return {
    scratch: sc.scratch,
    run: (o: Omit<RunEscapeOptions, 'scratch'>) => runEscape({ ...o, scratch: sc.scratch }),
    specConfig: (who: Who) => specConfig(who, sc.scratch),
  };
}

/** Prints the table of a test file's runs and, with ESCAPE_REPORT=DIR, keeps it and every line
 *  in DIR/NAME.json (the work dir is emptied after the run; docs/security.md is made from these). */
export function reportEscapes(name: string, title: string, outcomes: Array<{ name: string; outcome: EscapeOutcome }>): void {
  if (!outcomes.length) return;
  const table = escapeTable(outcomes, errnoName);
  console.log(`\n${title} (WORKED = the attack worked):\n${table}\n`);
  const dir = process.env.ESCAPE_REPORT;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  const lines = outcomes.map((o) => ({ name: o.name, results: o.outcome.results }));
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ table, outcomes: lines }, null, 1));
}
