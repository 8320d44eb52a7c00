// The storage guarantees of issue 13 under `hako up`, rootless (as the test user): one writer
// per data directory between containers (where every server is pid 1), a restarted server
// takes the lock of the one SIGKILLed before it, racing `up`s leave one serving, a stop signal
// at any moment ends `up` promptly, and SIGKILLs of the container under a write load lose no
// acknowledged write. On a copy without the learned seccomp policy (it is re-learned with the
// driver, profile/driver.mjs, which exercises these paths), and without authorization
// (HAKO_FHIR_AUTH=off: storage is what is tested; in-hako.test.ts serves with tokens).
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, scratch } from '../../../test/helpers/hako.js';
import { chownTree, serving, startUp, stopAll, type Up } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';
import { fhir } from './storage-server.js';

const running: ChildProcess[] = [];
let bundle: string;
let root: string;

beforeAll(() => {
  if (!IS_ROOT) return;
  bundle = scratch('rootless', 'fhir-storage-');
  copyFhirBundle(bundle, { policy: false, auth: false });
  chownTree('rootless', bundle);
});
afterAll(() => {
  if (bundle) fs.rmSync(bundle, { recursive: true, force: true });
});
afterEach(async () => {
  // A failed test must not leave `up` or its container running.
  await stopAll(running);
  if (root && fs.existsSync(root)) {
    for (const id of fs.readdirSync(root).filter((n) => !n.startsWith('.'))) hako('rootless', root, ['delete', '--force', id]);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

function setup(): string {
  root = scratch('rootless', 'state-');
  const data = path.join(bundle, 'data');
  fs.rmSync(data, { recursive: true, force: true });
  fs.mkdirSync(data, { mode: 0o700 });
  chownTree('rootless', data);
  return data;
}

const up = (args: string[] = []): Up => startUp('rootless', bundle, root, ['--listen', '127.0.0.1:0', ...args], running);

function initPid(id: string): number {
  const r = hako('rootless', root, ['state', id]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).pid;
}

async function stopUp(u: Up): Promise<void> {
  if (u.child.exitCode !== null) return;
  u.child.kill('SIGTERM');
  expect(await u.exited).toBe(0);
}

const HELD =
  /hako-fhir: data directory \/data is in use by another hako FHIR server \(pid 1 on host [^,]+, serving the activated socket \(fd 3\), since [^)]+\)/;

describe.skipIf(!IS_ROOT)('FHIR storage under hako up (rootless)', () => {
  it('refuses a second container on the same data in one sentence naming the holder', async () => {
    setup();
    const first = up();
    const { url } = await serving(first);
    const created = await fhir(url.replace(/\/$/, ''), 'POST', 'Patient', { resourceType: 'Patient', active: true });
    expect(created.status).toBe(201);
    const second = up(['--restart', 'no']);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toMatch(HELD);
    expect(second.stdout()).toBe('');
    expect((await fhir(url.replace(/\/$/, ''), 'GET', `Patient/${created.json.id}`)).json.active).toBe(true);
    await stopUp(first);
  });

  it('restarts after SIGKILL onto the stale lock, and of two racing ups one serves', async () => {
    setup();
    const first = up();
    const { url, id } = await serving(first);
    const base = url.replace(/\/$/, '');
    const created = await fhir(base, 'POST', 'Patient', { resourceType: 'Patient', active: true });
    const pid = initPid(id);
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const again = await fhir(base, 'GET', `Patient/${created.json.id}`).catch(() => undefined);
      if (again?.status === 200 && initPid(id) !== pid) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(initPid(id)).not.toBe(pid);
    expect(first.stderr()).not.toContain('is in use');
    await stopUp(first);

    // Two ups at once on the same data: one serves, the other is refused until it gives up.
    const racers = [up(['--max-restarts', '2']), up(['--max-restarts', '2'])];
    const outcome = await Promise.all(
      racers.map((u) =>
        serving(u).then(
          () => 'serving',
          () => 'refused',
        ),
      ),
    );
    expect(outcome.filter((o) => o === 'serving')).toHaveLength(1);
    const loser = racers[outcome.indexOf('refused')];
    expect(await loser.exited).toBe(1);
    expect(loser.stderr()).toMatch(HELD);
    await stopUp(racers[outcome.indexOf('serving')]);
  });

  for (const ms of [0, 200, 1000, 1500, 2000, 3000]) {
    it(`stops within 6 s on SIGTERM ${ms} ms after up starts, leaving no container`, async () => {
      setup();
      const u = up();
      await new Promise((r) => setTimeout(r, ms));
      const sent = Date.now();
      u.child.kill('SIGTERM');
      const code = await u.exited;
      expect(Date.now() - sent).toBeLessThan(6_000);
      // Until `up` itself (a node process) has its handler — up to a second on a busy machine —
      // the signal's default action ends it, before it has made a container.
      if (u.child.signalCode === null) expect(code).toBe(0);
      else expect(u.child.signalCode).toBe('SIGTERM');
      expect(fs.readdirSync(root).filter((n) => !n.startsWith('.'))).toEqual([]);
    });
  }

  it('keeps every acknowledged write across 6 SIGKILLs of the container under a write load', async () => {
    setup();
    const u = up(['--max-restarts', '100']);
    const { url, id } = await serving(u);
    const base = url.replace(/\/$/, '');
    const acknowledged = new Map<string, string>();
    for (let k = 0; k < 6; k++) {
      const pid = initPid(id);
      let stop = false;
      const worker = async (w: number): Promise<void> => {
        for (let n = 0; !stop; n++) {
          try {
            const r = await fhir(base, 'POST', 'Patient', { resourceType: 'Patient', name: [{ family: `K${k}W${w}`, given: [`n${n}`] }] });
            if (r.status === 201) acknowledged.set(`${r.json.id}/${r.json.meta.versionId}`, r.text);
          } catch {
            // in flight when the container died
          }
        }
      };
      const load = Promise.all([0, 1, 2].map(worker));
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await load;
      // up restarts it; the socket stays open meanwhile, so this waits for the new server.
      for (const [key, text] of acknowledged) {
        const [rid, version] = key.split('/');
        const got = await fhir(base, 'GET', `Patient/${rid}/_history/${version}`);
        expect(got.text, key).toBe(text);
      }
    }
    expect(acknowledged.size).toBeGreaterThan(20);
    await stopUp(u);
  });
});
