// The FHIR server in hako as a blind relay, rootless (as the test user) and as root:
// organisation A seals a Bundle to B with `hako seal --binary`, posts the Binary; B finds it by
// its own kid (_tag), fetches it and opens it with `hako open --from A`. The server's memory
// and its data volume (journal, snapshots) never hold the Bundle's plaintext marker — while a
// control Patient posted in the clear is found in both by the same searches.
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, scratch, testUserIds, WHO, type Who } from '../../../test/helpers/hako.js';
import { chownTree, serving, startUp, stopAll } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';
import { fullAccess } from './auth-helper.js';
import { rootEntries } from '../../../test/helpers/leftovers.js';

const running: ChildProcess[] = [];
const made: string[] = [];
afterEach(() => stopAll(running));
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** The pid and its descendants (the container's processes, from its init). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const children = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    for (const c of children ? children.split(' ') : []) out.push(...processTree(Number(c)));
  }
  return out;
}

/** Which needles a process's readable memory holds (read through /proc/PID/mem as root), in
 *  Latin-1 or UTF-16 (V8 keeps strings either way). */
function memoryHolding(pid: number, needles: string[]): Set<string> {
  const found = new Set<string>();
  const patterns = needles.flatMap((n) => [[n, Buffer.from(n, 'latin1')] as const, [n, Buffer.from(n, 'utf16le')] as const]);
  const overlap = Math.max(...patterns.map(([, b]) => b.length));
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) r/.exec(line);
      if (!m || line.endsWith('[vvar]') || line.endsWith('[vsyscall]')) continue;
      const [start, end] = [parseInt(m[1], 16), parseInt(m[2], 16)];
      const chunk = Buffer.alloc(16 << 20);
      for (let at = start; at < end; at += chunk.length - overlap) {
        let n = 0;
        try {
          n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, end - at), at);
        } catch {
          break; // a mapping gone or unreadable meanwhile
        }
        for (const [name, b] of patterns) if (chunk.subarray(0, n).includes(b)) found.add(name);
        if (n < chunk.length) break;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return found;
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, name);
    if (fs.lstatSync(p).isFile() && fs.readFileSync(p).includes(needle)) hits.push(name);
  }
  return hits;
}

describe.skipIf(!IS_ROOT).each(WHO)('FHIR server in hako as a blind relay (%s)', (who: Who) => {
  it('relays a Bundle sealed by A to B: found by kid, fetched, opened; no plaintext in its memory or data volume', async () => {
    const bundle = scratch(who, 'relay-');
    made.push(bundle);
    copyFhirBundle(bundle);
    // The store in the clear (no HAKO_FHIR_KEY_FILE): the relay must be blind by itself, not
    // thanks to the store's encryption at rest — and the clear control must be findable.
    const cfgFile = path.join(bundle, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.process.env = cfg.process.env.filter((e: string) => !e.startsWith('HAKO_FHIR_KEY_FILE='));
    fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    const data = path.join(bundle, 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    chownTree(who, bundle);
    const root = scratch(who, 'relay-state-');
    made.push(root);
    const keys = scratch(who, 'relay-keys-');
    made.push(keys);
    const k = (f: string) => path.join(keys, f);
    const run = (...args: string[]) => {
      const r = hako(who, root, args);
      expect(r.status, `hako ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r;
    };

    const u = startUp(who, bundle, root, ['--listen', '127.0.0.1:0'], running);
    const served = await serving(u);
    const base = served.url.replace(/\/$/, '');
    const token = await fullAccess(data, base);
    const fhir = (p: string, init: RequestInit = {}) =>
      fetch(`${base}${p}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...init.headers },
      });

    // A and B make their identities; A seals a Bundle to B as a Binary.
    run('keys', 'new', 'org-a', '--dir', keys);
    run('keys', 'new', 'org-b', '--dir', keys);
    run('keys', 'new', 'org-c', '--dir', keys);
    const MARKER = `sealed-marker-${who}-${process.pid}-c41f`;
    const CONTROL = `clear-marker-${who}-${process.pid}-77e0`;
    fs.writeFileSync(
      k('bundle.json'),
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: { resourceType: 'Patient', name: [{ family: MARKER }] } }],
      }),
    );
    if (who === 'rootless') fs.chownSync(k('bundle.json'), testUserIds().uid, testUserIds().gid);
    run('seal', '--binary', '--from', k('org-a.key'), '--to', k('org-b.id.json'), '-o', k('sealed.json'), k('bundle.json'));
    const posted = await fhir('/Binary', { method: 'POST', body: fs.readFileSync(k('sealed.json'), 'utf8') });
    expect(posted.status, await posted.clone().text()).toBe(201);
    const id = ((await posted.json()) as { id: string }).id;
    // The control: a resource in the clear, which the data-volume search must find.
    const control = await fhir('/Patient', {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: CONTROL }] }),
    });
    expect(control.status).toBe(201);

    // B finds what is addressed to its kid, and only that; C finds nothing.
    const kidOf = (n: string) => JSON.parse(fs.readFileSync(k(`${n}.id.json`), 'utf8')).kid as string;
    const search = async (kid: string) => {
      const r = await fhir(`/Binary?_tag=${encodeURIComponent(`urn:hako:seal:recipient|${kid}`)}`);
      expect(r.status).toBe(200);
      const b = (await r.json()) as { entry?: { resource: { resourceType: string; id: string } }[] };
      return (b.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`);
    };
    expect(await search(kidOf('org-b'))).toEqual([`Binary/${id}`]);
    expect(await search(kidOf('org-c'))).toEqual([]);
    const fetched = await fhir(`/Binary/${id}`, { headers: { accept: 'application/fhir+json' } });
    expect(fetched.status).toBe(200);
    const text = await fetched.text();
    expect(text).not.toContain(MARKER);
    fs.writeFileSync(k('fetched.json'), text);
    if (who === 'rootless') fs.chownSync(k('fetched.json'), testUserIds().uid, testUserIds().gid);

    // B opens it, checking it came from A; C cannot.
    const opened = run('open', '--key', k('org-b.key'), '--from', k('org-a.id.json'), k('fetched.json'));
    expect(JSON.parse(opened.stdout).entry[0].resource.name[0].family).toBe(MARKER);
    expect(opened.stderr).toMatch(/sealed by org-a \(fingerprint [0-9a-f ]+\) to 1 recipient .*signature verified/);
    const c = hako(who, root, ['open', '--key', k('org-c.key'), k('fetched.json')]);
    expect(c.status).not.toBe(0);
    expect(c.stderr).toMatch(/not sealed to you: org-c/);

    // The server's memory, while it runs: the control's clear marker is there, the sealed one is not.
    const state = hako(who, root, ['state', served.id]);
    expect(state.status, state.stderr).toBe(0);
    const inMemory = new Set<string>();
    for (const pid of processTree(JSON.parse(state.stdout).pid)) for (const hit of memoryHolding(pid, [MARKER, CONTROL])) inMemory.add(hit);
    expect([...inMemory]).toEqual([CONTROL]);

    // Stopped (the journal flushed and closed): the data volume holds the control, not the marker.
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(filesHolding(data, CONTROL).length).toBeGreaterThan(0);
    expect(filesHolding(data, MARKER)).toEqual([]);
    expect(rootEntries(root)).toEqual([]);
  }, 400_000); // up builds the FHIR rootfs first
});
