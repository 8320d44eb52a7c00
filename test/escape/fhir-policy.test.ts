// Issue 12: the FHIR server's own policy. A profile is learned from the server (rootless and as
// root), tried, and enforced by `hako up`; the escape program, `hako exec`'d into the serving
// container, tries every attack class there, and each refused call is a queryable AuditEvent.
// Bad input to `hako profile` is one sentence and leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, REPO } from '../helpers/env.js';
import { hako, scratch, WHO, type Who } from '../helpers/hako.js';
import { copyFhirBundle } from '../../bundles/fhir/test/copy.js';
import { getToken, registerClient } from '../../bundles/fhir/test/auth-helper.js';
import { ESCAPE_AT, ESCAPE_BIN, buildEscape, escapeArgs, reportEscapes, execEscapeAsync, worked, type EscapeOutcome } from './suite.js';
import { chownTree, serving, startUp, stopAll, type Up } from '../helpers/up.js';
import type { OciSeccomp } from '../../src/seccomp/types.js';
import { rootEntries } from '../helpers/leftovers.js';

const DRIVER = path.join(REPO, 'bundles/fhir/profile/driver.mjs');
const dirs: string[] = [];
const running: ChildProcess[] = [];

beforeAll(() => {
  if (IS_ROOT) buildEscape();
});
afterEach(() => stopAll(running));
afterAll(() => {
  reportEscapes('fhir-policy', 'escape suite under the FHIR policy', outcomes);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the FHIR bundle, owned by WHO, optionally with the escape program bound in. */
function fhirBundle(who: Who, o: { escape?: boolean; edit?: (cfg: Record<string, any>) => void } = {}): string {
  const bundle = scratch(who, 'fhir-pol-');
  dirs.push(bundle);
  copyFhirBundle(bundle);
  const file = path.join(bundle, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (o.escape) cfg.mounts.push({ destination: ESCAPE_AT, type: 'bind', source: ESCAPE_BIN, options: ['bind', 'ro', 'nosuid'] });
  o.edit?.(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  chownTree(who, bundle);
  return bundle;
}

function stateRoot(who: Who): string {
  const r = scratch(who, 'root-');
  dirs.push(r);
  return r;
}

/** What the escape program's attempts must meet in the FHIR policy's filter itself (each then
 *  an AuditEvent), not in a later wall: the calls only an attacker makes. (setns does not get
 *  that far: /proc/1/ns/* of the server is not the exec'd process's to open, EACCES.) */
const SECCOMP_REFUSED = [
  'unshare',
  'mount',
  'umount2',
  'pivot_root',
  'ptrace',
  'keyctl',
  'add_key',
  'bpf',
  'perf_event_open',
  'init_module',
  'finit_module',
  'kexec_load',
  'kexec_file_load',
  'open_by_handle_at',
  'userfaultfd',
  'io_uring_setup',
  'clone',
];
const outcomes: Array<{ name: string; outcome: EscapeOutcome }> = [];

const ALLOWED = (p: OciSeccomp) => new Set(p.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
const DANGEROUS = [
  'ptrace',
  'unshare',
  'setns',
  'mount',
  'umount2',
  'pivot_root',
  'keyctl',
  'add_key',
  'bpf',
  'perf_event_open',
  'execve',
  'init_module',
  'kexec_load',
  'userfaultfd',
  'io_uring_setup',
];

const up = (who: Who, bundle: string, root: string, extra: string[] = []): Up =>
  startUp(who, bundle, root, ['--listen', '127.0.0.1:0', ...extra], running);

/** GET with an access token when given (/metadata is open; the audit trail needs system/AuditEvent.rs). */
function get(url: string, token?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers = { accept: 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : undefined) };
    http
      .get(url, { agent: false, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
      })
      .on('error', reject);
  });
}

describe.skipIf(!IS_ROOT).each(WHO)('the FHIR policy (%s)', (who) => {
  it('is learned from the server in two phases: a small serving set, no namespaces, nothing dangerous', () => {
    const bundle = fhirBundle(who);
    const out = path.join(bundle, 'learned.json');
    const r = hako(who, stateRoot(who), ['profile', 'learn', '-b', bundle, '--driver', DRIVER, '-o', out], { timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/hako profile: \d+ calls allowed while serving, \d+ during start-up only/);
    const p = JSON.parse(fs.readFileSync(out, 'utf8')) as OciSeccomp;
    expect(p.defaultAction).toBe('SCMP_ACT_NOTIFY');
    const allowed = ALLOWED(p);
    expect(allowed.size).toBeLessThanOrEqual(80);
    for (const name of DANGEROUS)
      expect(
        p.syscalls!.some((s) => s.names.includes(name) && s.action !== 'SCMP_ACT_ERRNO'),
        name,
      ).toBe(false);
    const clone = p.syscalls!.find((s) => s.names.includes('clone'))!;
    // threads only: (flags & (namespace bits | CLONE_THREAD)) == CLONE_THREAD
    expect(clone.args).toEqual([{ index: 0, value: 0x7e030080, valueTwo: 0x10000, op: 'SCMP_CMP_MASKED_EQ' }]);
    expect(p.syscalls!.find((s) => s.names.includes('clone3'))).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    // The server's start-up (taking the lock, opening the listener, recovery) is not its serving set.
    const startup = new Set(p.syscalls!.filter((s) => s.action === 'SCMP_ACT_NOTIFY').flatMap((s) => s.names));
    expect(startup.has('listen') && startup.has('ftruncate') && !allowed.has('listen')).toBe(true);

    // trial: the learned profile narrowed by write and futex reports them, as serving-phase refusals.
    const narrowed = path.join(bundle, 'narrowed.json');
    const n = structuredClone(p);
    n.syscalls![0]!.names = n.syscalls![0]!.names.filter((x) => x !== 'write' && x !== 'futex');
    fs.writeFileSync(narrowed, JSON.stringify(n));
    chownTree(who, bundle);
    const t = hako(who, stateRoot(who), ['profile', 'trial', '-b', bundle, '--profile', narrowed], { timeout: 240_000 });
    expect(t.status).not.toBe(0);
    expect(t.stdout).toMatch(/^would refuse (write|futex) \(serving\)/m);
    expect(t.stderr.trim().split('\n').at(-1)).toMatch(/narrowed\.json would have refused \d+ calls \(\d+ kinds\): see the list above$/);

    const d = hako(who, stateRoot(who), ['profile', 'diff', out, narrowed]);
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toContain('no longer has 2 allowed: futex, write.');
  }, 600_000); // a learn and a trial, each up to 240 s on a busy machine

  it('is enforced by hako up: every attack from inside is refused and written as an AuditEvent; the server keeps answering', async () => {
    const bundle = fhirBundle(who, { escape: true });
    const root = stateRoot(who);
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    // A client that may read the audit trail, registered in the served data volume.
    const auditor = await registerClient(path.join(bundle, 'data'), 'auditor', 'system/AuditEvent.rs');
    await new Promise((r) => setTimeout(r, 1_100)); // the server re-reads the registry within a second
    const audit = await getToken(url.replace(/\/$/, ''), auditor, 'system/AuditEvent.rs');
    const r = await execEscapeAsync(who, root, id, { args: escapeArgs({ forkN: 600 }) });
    expect(r.done, r.stdout + r.stderr).toBe(true);
    // The fork bomb too, rootless where neither a cgroup nor RLIMIT_NPROC (which would count all
    // the caller's processes) bounds it: the server only ever started threads, so may only that.
    expect(worked(r)).toEqual([]);
    expect((await get(`${url}metadata`)).status).toBe(200);

    outcomes.push({ name: `FHIR policy ${who} exec`, outcome: r });
    // The refusals reach up's stderr from its agent's thread: wait for them a little.
    const refusedNow = () => new Set([...u.stderr().matchAll(/seccomp: refused (\w+)\(/g)].map((m) => m[1]!));
    for (const until = Date.now() + 15_000; Date.now() < until && !SECCOMP_REFUSED.every((n) => refusedNow().has(n));)
      await new Promise((r) => setTimeout(r, 100));
    const refused = refusedNow();
    console.log(`FHIR policy ${who}: seccomp refused ${[...refused].sort().join(' ')}`);
    for (const name of SECCOMP_REFUSED) expect(refused, name).toContain(name);
    // Within a second every refused call is an AuditEvent the server answers with (hako up posts
    // them with the server's supervisor credential, DATA/auth/supervisor.secret).
    const deadline = Date.now() + 1_000;
    let stored = new Set<string>();
    do {
      const bundleOf = (await get(`${url}AuditEvent?type=110113&_count=1000`, audit)).body;
      stored = new Set((bundleOf.entry ?? []).map((e: any) => e.resource.subtype?.[0]?.code));
    } while ([...refused].some((n) => !stored.has(n)) && Date.now() < deadline);
    expect([...refused].filter((n) => !stored.has(n))).toEqual([]);
    const one = (await get(`${url}AuditEvent?type=110113&_count=1000`, audit)).body.entry.find(
      (e: any) => e.resource.subtype[0].code === 'unshare',
    ).resource;
    expect(one.type.code).toBe('110113');
    expect(one.outcomeDesc).toMatch(
      new RegExp(
        `^hako refused unshare\\(.*\\) from pid \\d+ \\(escape, started by hako exec\\) in container ${id} during startup with EPERM$`,
      ),
    );
    // The fork bomb's 600 refused clones: 10 written one by one, the rest as one summary after.
    const summary = /^hako refused clone (\d+) more times in container /;
    let summarised: any;
    for (const until = Date.now() + 5_000; !summarised && Date.now() < until; await new Promise((r) => setTimeout(r, 200)))
      summarised = (await get(`${url}AuditEvent?type=110113&_count=1000`, audit)).body.entry.find((e: any) =>
        summary.test(e.resource.outcomeDesc),
      );
    expect(summarised, 'no summary AuditEvent for the refused clones').toBeDefined();

    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  });

  it('--on-violation stop ends the container at the first refusal', async () => {
    const bundle = fhirBundle(who, { escape: true });
    const root = stateRoot(who);
    const u = up(who, bundle, root, ['--on-violation', 'stop']);
    const { id } = await serving(u);
    await execEscapeAsync(who, root, id, { args: escapeArgs({ classes: ['unshare.user'] }) });
    expect(await u.exited).toBe(0);
    expect(u.stderr()).toContain(`--on-violation stop: stopping container ${id}`);
    expect(rootEntries(root)).toEqual([]);
  });

  it('--on-violation freeze keeps the container paused for inspection (stopped where it cannot be paused)', async () => {
    const bundle = fhirBundle(who, { escape: true });
    const root = stateRoot(who);
    const u = up(who, bundle, root, ['--on-violation', 'freeze']);
    const { url, id } = await serving(u);
    await execEscapeAsync(who, root, id, { args: escapeArgs({ classes: ['unshare.user'] }) });
    const paused = `--on-violation freeze: container ${id} is paused for inspection (hako resume ${id} to continue)`;
    const cannot = new RegExp(`--on-violation freeze: could not pause container ${id} \\(.+\\): stopping it instead`);
    for (const until = Date.now() + 10_000; !u.stderr().includes(paused) && !cannot.test(u.stderr()) && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 100));
    // as root the container has a cgroup, and with it a freezer
    if (who === 'root') expect(u.stderr()).toContain(paused);
    if (u.stderr().includes(paused)) {
      const st = hako(who, root, ['state', id]);
      expect(JSON.parse(st.stdout).status).toBe('paused');
      expect(hako(who, root, ['resume', id]).status).toBe(0);
      expect((await get(`${url}metadata`)).status).toBe(200);
      u.child.kill('SIGTERM');
    } else {
      // rootless without a cgroup of its own there is no freezer
      expect(u.stderr()).toMatch(cannot);
    }
    expect(await u.exited).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  });

  it('bad input to hako profile is one sentence and leaves nothing behind', () => {
    const root = stateRoot(who);
    const last = (s: string) => s.trim().split('\n').at(-1)!;
    const exits = fhirBundle(who, { edit: (c) => (c.process.args = ['/node', '-e', 'process.exit(3)']) });
    const a = hako(who, root, ['profile', 'learn', '-b', exits, '-o', path.join(exits, 'p.json')], { timeout: 120_000 });
    expect(a.status).not.toBe(0);
    expect(last(a.stderr)).toMatch(
      /^hako: the workload exited with status 3 before it answered on 127\.0\.0\.1:\d+ \(run 1\): nothing to learn$/,
    );
    expect(fs.existsSync(path.join(exits, 'p.json'))).toBe(false);

    const bundle = fhirBundle(who);
    const failing = path.join(bundle, 'failing-driver.mjs');
    fs.writeFileSync(failing, "console.error('no such resource'); process.exit(4);\n", { mode: 0o644 });
    const b = hako(who, root, ['profile', 'learn', '-b', bundle, '--driver', failing, '-o', path.join(bundle, 'p.json')], {
      timeout: 120_000,
    });
    expect(b.status).not.toBe(0);
    expect(last(b.stderr)).toBe(`hako: the driver ${failing} exited with status 4: no such resource`);

    const notProfile = path.join(bundle, 'server', 'definition-files.json');
    const c = hako(who, root, ['profile', 'diff', notProfile, notProfile]);
    expect(c.status).not.toBe(0);
    expect(c.stderr).toBe(`hako: ${notProfile}: not a seccomp profile: defaultAction: missing\n`);
    expect(rootEntries(root)).toEqual([]);
  });
});
