// Issue 16: the FHIR server under the preload shim. Rootless on this host (no cgroup may hold
// memory or processes for the test user) `hako up` runs it with the bundle's shim ceilings: it
// serves its scenario; an allocation past the memory ceiling and a connect outside the
// allowlist, from processes exec'd into it, are refused (ENOMEM, EACCES; the controls work)
// and each becomes a FHIR AuditEvent; a
// too-low memory ceiling ends `up` with one sentence naming it, not a hang nor a restart loop.
// As root the cgroups hold those limits: up runs no shim, and the cgroup holds the memory.
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, scratch, type Who } from '../../../test/helpers/hako.js';
import { chownTree, serving, startUp, stopAll, type Up } from '../../../test/helpers/up.js';
import { createAndFindChart, fhirClient, invalidResourceRefused, transactionRewritesReferences, type Resource } from './scenario.js';
import { copyFhirBundle } from './copy.js';
import { fullAccess } from './auth-helper.js';
import { rootEntries } from '../../../test/helpers/leftovers.js';

const SHIM_SUBTYPES = 'https://hako.run/fhir/CodeSystem/shim';
const running: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => stopAll(running));
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A copy of the FHIR bundle owned by WHO, its config edited. */
function fhirBundle(who: Who, edit: (cfg: Record<string, any>) => void = () => {}): string {
  const bundle = scratch(who, 'shimh-');
  dirs.push(bundle);
  copyFhirBundle(bundle);
  const file = path.join(bundle, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  fs.mkdirSync(path.join(bundle, 'data'), { mode: 0o700 });
  chownTree(who, bundle);
  return bundle;
}

function stateRoot(who: Who): string {
  const r = scratch(who, 'shimh-root-');
  dirs.push(r);
  return r;
}

const up = (who: Who, bundle: string, root: string, extra: string[] = []): Up =>
  startUp(who, bundle, root, ['--listen', '127.0.0.1:0', ...extra], running);

function initPid(who: Who, root: string, id: string): number {
  const r = hako(who, root, ['state', id]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).pid;
}

/** Whether the process mapped the preload shim (the host's view of its maps). */
const mapsShim = (pid: number) => fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('hako-shim.so');

/** node -e SCRIPT in the served container, with the server's own process settings. */
function execNode(who: Who, root: string, bundle: string, id: string, script: string) {
  const proc = path.join(root, 'probe.json');
  const base = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).process;
  fs.writeFileSync(proc, JSON.stringify({ ...base, args: ['/node', '-e', script] }), { mode: 0o644 });
  try {
    return hako(who, root, ['exec', '--process', proc, id]);
  } finally {
    fs.rmSync(proc);
  }
}

/** Waits for the AuditEvent hako up wrote for a shim denial of this kind. */
async function shimAuditEvent(base: string, data: string, kind: string): Promise<any> {
  const admin = fhirClient(base, await fullAccess(data, base, 'auditor'));
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((res) => setTimeout(res, 200))) {
    const found = await admin.search({ resourceType: 'AuditEvent', searchParams: { type: '110113', _count: 1000 } });
    const event = (found.entry ?? [])
      .map((e: { resource: Resource }) => e.resource)
      .find((a: any) => a.subtype?.[0]?.system === SHIM_SUBTYPES && a.subtype[0].code === kind);
    if (event) return event;
  }
  throw new Error(`no AuditEvent for a shim ${kind} denial`);
}

describe.skipIf(!IS_ROOT)('the FHIR server under the preload shim (rootless)', () => {
  const who: Who = 'rootless';

  it('serves its scenario with the shim loaded; an allocation past its memory ceiling fails and becomes an AuditEvent', async () => {
    const bundle = fhirBundle(who);
    const root = stateRoot(who);
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    const pid = initPid(who, root, id);
    expect(mapsShim(pid)).toBe(true);
    const base = url.replace(/\/$/, '');
    const client = fhirClient(base, await fullAccess(path.join(bundle, 'data'), base));
    await createAndFindChart(client);
    await transactionRewritesReferences(client);
    await invalidResourceRefused(client);

    // From a process hako exec's into the container (under the FHIR policy's serving phase,
    // which refuses it sockets and processes): 64 MiB is there (the control), 600 MiB would
    // pass the ceiling of 512M: the allocation fails as an allocator's does, the process goes on.
    const r = execNode(
      who,
      root,
      bundle,
      id,
      `const get = (n) => { try { return Buffer.alloc(n * 1048576, 1).length / 1048576; } catch (e) { return e.message; } };
       console.log(JSON.stringify({ small: get(64), large: get(600) }));`,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ small: 64, large: 'Array buffer allocation failed' });
    const sentence = new RegExp(
      `container ${id}: the preload shim refused (calloc|malloc|mmap) to /node \\(pid \\d+\\): \\d+ more bytes would pass its memory ceiling of 536870912 \\(\\d+ held\\)`,
    );
    const event = await shimAuditEvent(base, path.join(bundle, 'data'), 'memory');
    expect(u.stderr()).toMatch(sentence);
    expect(event.outcome).toBe('4');
    expect(event.outcomeDesc).toMatch(sentence);
    expect(event.entity[0].detail).toContainEqual({ type: 'ceiling', valueString: '536870912' });
    expect((await fetch(`${base}/metadata`)).status).toBe(200); // still serving

    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(rootEntries(root)).toEqual([]);
  });

  it("connect: the data directory's lock answers, another address is refused with EACCES and audited", async () => {
    // Without the seccomp policy (which refuses a serving container new sockets at all) and
    // Landlock's TCP rule: the shim is then the one wall a connect meets.
    const bundle = fhirBundle(who, (cfg) => {
      delete cfg.linux.seccomp;
      delete cfg.annotations['run.hako.landlock.net.connect'];
    });
    const root = stateRoot(who);
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    const base = url.replace(/\/$/, '');
    const lock = fs.readdirSync(path.join(bundle, 'data')).find((n) => /^lock\.\d+$/.test(n));
    expect(lock).toBeDefined();
    const r = execNode(
      who,
      root,
      bundle,
      id,
      `const net = require('net');
       const connect = (...a) => new Promise((r) => { let said = ''; const s = net.connect(...a);
         s.on('data', (d) => (said += d)); s.on('end', () => r(said ? 'answered' : 'connected')); s.on('error', (e) => r(e.code)); });
       (async () => console.log(JSON.stringify({ lock: await connect('/data/${lock}'), loopback: await connect(9, '127.0.0.1') })))();`,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ lock: 'answered', loopback: 'EACCES' });
    const sentence = new RegExp(
      `container ${id}: the preload shim refused connect to /node \\(pid \\d+\\): 127\\.0\\.0\\.1:9 is not in run\\.hako\\.shim\\.connect`,
    );
    const event = await shimAuditEvent(base, path.join(bundle, 'data'), 'connect');
    expect(u.stderr()).toMatch(sentence);
    expect(event.outcomeDesc).toMatch(sentence);
    expect(event.entity[0].detail).toContainEqual({ type: 'target', valueString: '127.0.0.1:9' });
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  });

  it('under a too-low memory ceiling, up ends in one sentence naming it (no hang, no restarts), leaving nothing', async () => {
    const bundle = fhirBundle(who, (cfg) => (cfg.annotations['run.hako.shim.memory'] = '40M'));
    const root = stateRoot(who);
    const u = up(who, bundle, root);
    const code = await Promise.race([u.exited, new Promise((r) => setTimeout(() => r('hung'), 60_000))]);
    expect(code, u.stderr()).toBe(1);
    expect(u.stdout()).toBe('');
    expect(u.stderr()).toMatch(
      /\nhako: container \S+ (was killed by SIG[A-Z]+|exited with status \d+) after [\d.]+ s: the preload shim refused it memory past its ceiling run\.hako\.shim\.memory="40M" \(41943040 bytes\) before it could serve \(\w+ in \/node\): raise run\.hako\.shim\.memory in config\.json\n/,
    );
    expect(u.stderr()).not.toMatch(/restarting in/);
    expect(rootEntries(root)).toEqual([]);
  });

  it('a shim annotation that does not parse: one sentence before anything runs, nothing left', async () => {
    const bundle = fhirBundle(who, (cfg) => (cfg.annotations['run.hako.shim.connect'] = '/data/*/lock'));
    const root = stateRoot(who);
    const u = up(who, bundle, root);
    expect(await u.exited).toBe(1);
    expect(u.stdout()).toBe('');
    expect(u.stderr()).toMatch(
      /\nhako: config\.json: annotations\["run\.hako\.shim\.connect"\]: "\/data\/\*\/lock": a \* may only end a unix socket path \(\/data\/lock\.\* for every path it begins\)\n$/,
    );
    expect(rootEntries(root)).toEqual([]);
  });
});

describe.skipIf(!IS_ROOT)('the FHIR server as root, where cgroups hold its limits', () => {
  it('runs without the shim: the cgroup holds its memory', async () => {
    const bundle = fhirBundle('root');
    const root = stateRoot('root');
    const u = up('root', bundle, root);
    const { url, id } = await serving(u);
    const pid = initPid('root', root, id);
    expect(mapsShim(pid)).toBe(false);
    expect(fs.readFileSync(`/proc/${pid}/root/etc/ld.so.preload`, 'utf8')).toBe('');
    const memory = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))!
      .split(':')[2]!;
    expect(fs.readFileSync(path.join('/sys/fs/cgroup/memory', memory, 'memory.limit_in_bytes'), 'utf8').trim()).toBe('536870912');
    expect((await fetch(`${url}metadata`)).status).toBe(200);
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  });
});
