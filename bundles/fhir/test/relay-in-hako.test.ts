// The FHIR server in hako as a blind relay, rootless (as the test user) and as root:
// organisation A seals a Bundle to B with `hako seal --binary`, posts the Binary; B finds it by
// its own kid (_tag), fetches it and opens it with `hako open --from A`. The server's data
// volume (journal, snapshots) never holds the Bundle's plaintext marker — while a control
// Patient posted in the clear is found there by the same search.
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, scratch, testUserIds, WHO, type Who } from '../../../test/helpers/hako.js';
import { chownTree, serving, startUp, stopAll } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';
import { fullAccess } from './auth-helper.js';

const running: ChildProcess[] = [];
const made: string[] = [];
afterEach(() => stopAll(running));
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

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
  it('relays a Bundle sealed by A to B: found by kid, fetched, opened; no plaintext in the data volume', async () => {
    const bundle = scratch(who, 'relay-');
    made.push(bundle);
    copyFhirBundle(bundle);
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
    const base = (await serving(u)).url.replace(/\/$/, '');
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

    // Stopped (the journal flushed and closed): the data volume holds the control, not the marker.
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(filesHolding(data, CONTROL).length).toBeGreaterThan(0);
    expect(filesHolding(data, MARKER)).toEqual([]);
    expect(fs.readdirSync(root)).toEqual([]);
  }, 400_000); // up builds the FHIR rootfs first
});
