// The FHIR server served by `hako up` from a container with no network of its own,
// rootless (as the test user) and as root, driven by a real FHIR client with an access token
// (SMART Backend Services: a client registered in the served data volume, its token from
// /auth/token), and the authorization itself: allowed, refused, unauthenticated, audited.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, REPO } from '../../../test/helpers/env.js';
import { hako, scratch, testUserIds, WHO, type Who } from '../../../test/helpers/hako.js';
import {
  createAndFindChart,
  failure,
  fhirClient,
  invalidResourceRefused,
  statusOf,
  transactionRewritesReferences,
  type Resource,
} from './scenario.js';
import { copyFhirBundle } from './copy.js';
import { fullAccess } from './auth-helper.js';
import { chownTree, serving as servingAt, startUp, stopAll, type Up } from '../../../test/helpers/up.js';
import { rootEntries } from '../../../test/helpers/leftovers.js';

/** As root, up maps the container onto user hako's subordinate range (created by the first up). */
function hakoSubUid(): number {
  const line = fs
    .readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('hako:') && Number(l.split(':')[2]) > 0);
  if (!line) throw new Error('/etc/subuid has no range for hako: hako up as root creates it');
  return Number(line.split(':')[1]);
}

/** A copy of the FHIR bundle owned by WHO: `up` builds its rootfs as that user. */
function fhirBundle(who: Who, o: { policy?: boolean } = {}): string {
  const bundle = scratch(who, 'fhir-');
  copyFhirBundle(bundle, o);
  chownTree(who, bundle);
  return bundle;
}

/** An empty data volume, as `up` expects it: a directory only the container's user can write. */
function freshData(who: Who, bundle: string): string {
  const data = path.join(bundle, 'data');
  fs.rmSync(data, { recursive: true, force: true });
  fs.mkdirSync(data, { mode: 0o700 });
  chownTree(who, data);
  return data;
}

/** The administration command, `npx hako-fhir` (as root: what it writes goes to the data volume's owner). */
function hakoFhir(args: string[]): string {
  return execFileSync(process.execPath, [path.join(REPO, 'bundles/fhir/bin/hako-fhir.mjs'), ...args], { encoding: 'utf8', cwd: REPO });
}

const up = (who: Who, bundle: string, root: string, args: string[] = ['--listen', '127.0.0.1:0']): Up =>
  startUp(who, bundle, root, args, running);

const HOW = /^(rootless|as root, in a user namespace with no capabilities, as host uid \d+ \(user hako's subordinate range\))$/;

/** Waits for the URL line; returns the base URL and the container id it names. */
async function serving(u: Up): Promise<{ url: string; id: string }> {
  const s = await servingAt(u);
  expect(s.how).toMatch(HOW);
  return { url: s.url, id: s.id };
}

function initPid(who: Who, root: string, id: string): number {
  const r = hako(who, root, ['state', id]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).pid;
}

/** SIGTERM to `up`: it stops the container, deletes it and exits 0, leaving no state and no process. */
async function stop(up: Up, root: string, pid: number): Promise<void> {
  up.child.kill('SIGTERM');
  expect(await up.exited).toBe(0);
  expect(up.stderr()).toMatch(/container \S+ stopped\n$/);
  expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  expect(rootEntries(root)).toEqual([]);
}

const running: ChildProcess[] = [];
const bundles: Partial<Record<Who, string>> = {};
const extraBundles: string[] = [];
let root: string;

beforeAll(() => {
  if (IS_ROOT) for (const who of WHO) bundles[who] = fhirBundle(who);
});
afterAll(() => {
  for (const dir of [...Object.values(bundles), ...extraBundles]) fs.rmSync(dir!, { recursive: true, force: true });
});
afterEach(async () => {
  // A failed test must not leave `up` or its container running.
  await stopAll(running);
  if (root && fs.existsSync(root)) {
    for (const id of rootEntries(root).filter((n) => !n.startsWith('.'))) hako('root', root, ['delete', '--force', id]);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// The rootless half runs as the test user through setpriv, so the whole file needs root.
describe.skipIf(!IS_ROOT).each(WHO)('FHIR server under hako up (%s)', (who) => {
  const setup = () => {
    root = scratch(who, 'state-');
    const bundle = bundles[who]!;
    return { bundle, data: freshData(who, bundle) };
  };

  it('serves create/read/search/update/delete, a transaction Bundle and 400 for an invalid resource', async () => {
    const { bundle, data } = setup();
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    expect(u.stdout()).toContain(
      who === 'rootless'
        ? ', rootless)'
        : `, as root, in a user namespace with no capabilities, as host uid ${hakoSubUid()} (user hako's subordinate range))`,
    );
    expect(id).toMatch(new RegExp(`^${path.basename(bundle)}-\\d+$`));
    const base = url.replace(/\/$/, '');
    const client = fhirClient(base, await fullAccess(data, base));

    const { patient, encounter, observation } = await createAndFindChart(client);

    const changes: Array<[string, Resource & { id: string; meta?: { versionId?: string } }, Record<string, string>]> = [
      ['Patient', patient as never, { birthDate: '1980-02-04' }],
      ['Observation', observation as never, { status: 'amended' }],
      ['Encounter', encounter as never, { status: 'cancelled' }],
    ];
    for (const [type, resource, change] of changes) {
      const updated = await client.update({ resourceType: type, id: resource.id, body: { ...resource, ...change } });
      expect(updated.meta.versionId).not.toBe(resource.meta?.versionId);
      expect(await client.read({ resourceType: type, id: resource.id })).toMatchObject(change);
    }
    for (const [type, resource] of [
      ['Observation', observation],
      ['Encounter', encounter],
      ['Patient', patient],
    ] as const) {
      await client.delete({ resourceType: type, id: resource.id! });
      expect((await failure(client.read({ resourceType: type, id: resource.id! }))).status).toBe(410);
    }

    await transactionRewritesReferences(client);
    await invalidResourceRefused(client);

    await stop(u, root, initPid(who, root, id));
  });

  it('authorizes with SMART tokens: a backend-services read allowed, another refused (403), 401 without a token, each audited', async () => {
    const { bundle, data } = setup();
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    const base = url.replace(/\/$/, '');
    expect((await fetch(`${base}/metadata`)).status).toBe(200); // open
    const smart = await (await fetch(`${base}/.well-known/smart-configuration`)).json();
    expect(smart.token_endpoint).toBe(`${base}/auth/token`);
    const admin = fhirClient(base, await fullAccess(data, base, 'admin'));
    const patient = await admin.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Nakamura' }] } });
    await admin.create({ resourceType: 'Observation', body: { resourceType: 'Observation', status: 'final', code: { text: 'pulse' } } });

    // The README's commands: register a client with a new key pair, get a token, read a Patient.
    const key = path.join(scratch(who, 'key-'), 'reader.private.jwk');
    extraBundles.push(path.dirname(key));
    expect(hakoFhir(['--data', data, 'clients', 'add', 'reader', '--new-key', key, '--scopes', 'system/Patient.rs'])).toContain(
      'client reader registered',
    );
    await new Promise((r) => setTimeout(r, 1_100)); // the server re-reads the registry within a second
    const token = hakoFhir(['token', '--client', 'reader', '--key', key, '--scope', 'system/Patient.rs', '--url', base]).trim();
    const reader = fhirClient(base, token);
    expect((await reader.read({ resourceType: 'Patient', id: patient.id })).name).toEqual([{ family: 'Nakamura' }]);
    const refused = await failure(reader.search({ resourceType: 'Observation', searchParams: {} }));
    expect(refused.status).toBe(403);
    expect(refused.data.resourceType).toBe('OperationOutcome');
    const anonymous = await fetch(`${base}/Patient/${patient.id}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="hako-fhir"');

    // The trail, read with the audit scope: the token request, the read, the refusal, the 401.
    const events = async (): Promise<any[]> =>
      ((await admin.search({ resourceType: 'AuditEvent', searchParams: { _count: 1000 } })).entry ?? []).map(
        (e: { resource: Resource }) => e.resource,
      );
    const by = (client: string) => (a: any) => a.agent.some((g: any) => g.who?.identifier?.value === client);
    const anonymousRead = (a: any) =>
      a.subtype?.[0]?.code === 'read' && a.agent.some((g: any) => g.requestor && g.who?.display === 'anonymous');
    let trail: any[] = [];
    for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      trail = await events();
      if (trail.some(anonymousRead)) break;
    }
    const read = trail.find((a) => by('reader')(a) && a.subtype?.[0]?.code === 'read');
    expect(read?.outcome).toBe('0');
    expect(read.entity[0].what.reference).toBe(`Patient/${patient.id}`);
    expect(trail.find((a) => by('reader')(a) && a.subtype?.[0]?.code === 'search-type')?.outcome).toBe('4');
    expect(trail.some((a) => by('reader')(a) && a.subtype?.[0]?.code === '110122' && a.outcome === '0')).toBe(true);
    const unauthenticated = trail.find(anonymousRead);
    expect(unauthenticated?.outcome).toBe('4');
    expect(unauthenticated.entity[0].what.reference).toBe(`Patient/${patient.id}`);

    await stop(u, root, initPid(who, root, id));
  });

  it('is restarted after SIGKILL in the middle of a write load, with every acknowledged write kept', async () => {
    const { bundle, data } = setup();
    const u = up(who, bundle, root);
    const { url, id } = await serving(u);
    const first = initPid(who, root, id);
    const base = url.replace(/\/$/, '');
    // The token outlives the restart: the signing key is in the data volume.
    const client = fhirClient(base, await fullAccess(data, base));
    const acknowledged: string[] = [];
    let afterKill = 0;
    let killed = false;
    const worker = async (w: number): Promise<void> => {
      for (let n = 0; n < 75; n++) {
        try {
          const created = await client.create({
            resourceType: 'Patient',
            body: { resourceType: 'Patient', name: [{ family: `Load${w}`, given: [`n${n}`] }] },
          });
          if (statusOf(created) === 201) {
            acknowledged.push(created.id);
            if (killed) afterKill++;
          }
        } catch {
          // in flight when the server died: never acknowledged
        }
        if (acknowledged.length >= 100 && !killed) {
          killed = true;
          process.kill(first, 'SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    expect(killed).toBe(true);
    expect(u.stderr()).toMatch(
      new RegExp(`container ${id} was killed by SIGKILL after [\\d.]+ s; restarting in 0.1 s \\(restart 1 of at most 5 in a row\\)`),
    );
    expect(afterKill).toBeGreaterThan(0); // the restarted server took the queued and later writes
    const second = initPid(who, root, id);
    expect(second).not.toBe(first);

    const all = await client.search({ resourceType: 'Patient', searchParams: { _count: 1000 } });
    const present = new Set(all.entry.map((e: { resource: Resource }) => e.resource.id));
    expect(acknowledged.filter((x) => !present.has(x))).toEqual([]);
    await stop(u, root, second);
  });

  it('has only loopback, cannot connect out, has a read-only root and no capabilities', async () => {
    setup();
    // The probe lists /sys and tries writes the server never makes: without the seccomp policy,
    // so the walls looked at here are the namespaces, the mounts and the capabilities.
    const bundle = fhirBundle(who, { policy: false });
    extraBundles.push(bundle);
    // A host server on every address: reachable from the host, not from the container.
    const host = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => host.listen(0, '0.0.0.0', resolve));
    const { port } = host.address() as net.AddressInfo;
    const hostIp = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    const u = up(who, bundle, root);
    try {
      const { id } = await serving(u);
      const script = `
        const fs = require('fs'), net = require('net');
        const connect = (h) => new Promise((r) => { const s = net.connect(${port}, h, () => { s.destroy(); r('connected'); }); s.on('error', (e) => r(e.code)); });
        let write; try { fs.writeFileSync('/probe', 'x'); write = 'written'; } catch (e) { write = e.code; }
        (async () => console.log(JSON.stringify({
          sys: fs.readdirSync('/sys/class/net'),
          dev: fs.readFileSync('/proc/net/dev', 'utf8').split('\\n').slice(2).filter(Boolean).map((l) => l.split(':')[0].trim()),
          capEff: /CapEff:\\s+(\\w+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1],
          write,
          loopback: await connect('127.0.0.1'),
          host: ${hostIp ? `await connect('${hostIp}')` : 'null'},
        })))();`;
      // As a process.json: the script's own flags must not reach hako's option parser.
      const proc = path.join(root, 'probe.json');
      const base = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).process;
      fs.writeFileSync(proc, JSON.stringify({ ...base, args: ['/node', '-e', script] }), { mode: 0o644 });
      const r = hako(who, root, ['exec', '--process', proc, id]);
      fs.rmSync(proc);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const inside = JSON.parse(r.stdout);
      expect(inside.sys).toEqual(['lo']);
      expect(inside.dev).toEqual(['lo']);
      expect(inside.capEff).toBe('0000000000000000');
      expect(inside.write).toBe('EROFS');
      expect(inside.loopback).toBe('ECONNREFUSED'); // the container's own loopback, not the host's
      if (hostIp) {
        expect(inside.host).toBe('ENETUNREACH');
        const fromHost = net.connect(port, hostIp);
        await new Promise((resolve, reject) => fromHost.once('connect', resolve).once('error', reject));
        fromHost.destroy();
      }
      await stop(u, root, initPid(who, root, id));
    } finally {
      host.close();
    }
  });

  it('recovers from a torn journal tail and says so', async () => {
    const { bundle, data } = setup();
    let u = up(who, bundle, root);
    let { url, id } = await serving(u);
    const token = await fullAccess(data, url.replace(/\/$/, ''));
    let client = fhirClient(url.replace(/\/$/, ''), token);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } })).id);
    await stop(u, root, initPid(who, root, id));

    // A record header promising 1000 bytes, then 29 of them: a write torn by a crash.
    const torn = Buffer.alloc(8 + 29, 0x7b);
    torn.writeUInt32LE(1000, 0);
    fs.appendFileSync(path.join(data, 'journal'), torn);

    u = up(who, bundle, root);
    ({ url, id } = await serving(u));
    // The three creates and the audit trail's batches
    expect(u.stderr()).toMatch(/journal \/data\/journal ended in a torn or corrupt record: dropped 37 bytes after \d+ whole records/);
    client = fhirClient(url.replace(/\/$/, ''), token);
    for (const x of ids) expect((await client.read({ resourceType: 'Patient', id: x })).active).toBe(true);
    expect(statusOf(await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient' } }))).toBe(201);
    await stop(u, root, initPid(who, root, id));
  });

  it('gives up after --max-restarts crashes in a row, in one sentence', async () => {
    const { bundle } = setup();
    const u = up(who, bundle, root, ['--listen', '127.0.0.1:0', '--max-restarts', '0']);
    const { id } = await serving(u);
    const pid = initPid(who, root, id);
    process.kill(pid, 'SIGKILL');
    expect(await u.exited).toBe(1);
    expect(u.stderr()).toMatch(
      new RegExp(
        `hako: container ${id} was killed by SIGKILL after [\\d.]+ s: giving up after 0 restarts in a row \\(--max-restarts 0\\)\\n$`,
      ),
    );
    expect(rootEntries(root)).toEqual([]);
  });

  describe('refuses bad input in one sentence, leaving nothing behind', () => {
    const refused = async (u: Up, sentence: string) => {
      expect(await u.exited).toBe(1);
      expect(u.stdout()).toBe('');
      // The first `up` of a bundle also says that it builds the rootfs; as root, that it hands
      // a fresh (root-owned) data volume to the container's user.
      expect(
        u
          .stderr()
          .replace(/^hako up: building .*\n/, '')
          .replace(/^hako up: data volume .* now belongs to uid \d+ gid \d+, the container's user on the host.*\n/m, ''),
      ).toBe(`hako: ${sentence}\n`);
      expect(fs.existsSync(root) ? rootEntries(root) : []).toEqual([]);
    };

    it('a missing data volume', async () => {
      // The FHIR builder creates BUNDLE/data itself, so point the volume somewhere else.
      const { bundle } = setup();
      const configPath = path.join(bundle, 'config.json');
      const original = fs.readFileSync(configPath, 'utf8');
      const cfg = JSON.parse(original);
      cfg.mounts.find((m: { destination: string }) => m.destination === '/data').source = 'volumes/fhir';
      fs.writeFileSync(configPath, JSON.stringify(cfg));
      try {
        const missing = path.join(bundle, 'volumes/fhir');
        await refused(
          up(who, bundle, root),
          `the data volume ${missing} (mounted at /data) does not exist: create it (mkdir -p ${missing})`,
        );
      } finally {
        fs.writeFileSync(configPath, original);
      }
    });

    it('a data volume the container user cannot write', async () => {
      const { bundle, data } = setup();
      fs.chmodSync(data, 0o500);
      // As root, up first hands the volume to the container's user (the range's root).
      const uid = who === 'rootless' ? testUserIds().uid : hakoSubUid();
      await refused(
        up(who, bundle, root),
        `the data volume ${data} (mounted at /data) is not writable by uid ${uid}, the container's user on the host`,
      );
    });

    it('a port in use', async () => {
      const { bundle } = setup();
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const { port } = blocker.address() as net.AddressInfo;
      try {
        await refused(
          up(who, bundle, root, ['--listen', `127.0.0.1:${port}`]),
          `cannot listen on 127.0.0.1:${port}: the address is already in use (is another server running there?)`,
        );
      } finally {
        blocker.close();
      }
    });
  });
});
