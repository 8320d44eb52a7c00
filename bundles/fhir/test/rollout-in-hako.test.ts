// Issue 18: `hako rollout` replaces the FHIR server `hako up` runs, on the same listening socket,
// rootless (as the test user) and as root, under a constant keep-alive load of reads and writes
// from a process of its own (bench/rollout/load.mjs: every failure counted, nothing retried).
// Proofs: consecutive rollouts with zero failed requests and every acknowledged write kept; a
// bundle whose server crashes (before and after taking the data over) rolls back with zero
// failed requests; two rollouts racing (one refused); SIGHUP; up killed mid-rollout, then restarted.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT, TEST_USER } from '../../../test/helpers/env.js';
import { hako, hakoAsync, scratch, WHO, type Who } from '../../../test/helpers/hako.js';
import { chownTree, clearUps, serving, startUp, until, upLeftovers, type Up } from '../../../test/helpers/up.js';
import { missing, rolloutBundle, sameKey, startLoad as loadOn, version, type Rollouts } from './rollout-helpers.js';

/** Rollouts per run of the first proof (bench/rollout.mjs does 20). */
const ROLLOUTS = 5;
/** Connects to a unix socket and prints the outcome: CONNECTED or the error code. */
const CONNECT =
  "require('net').connect(process.argv[1]).on('connect', function () { console.log('CONNECTED'); this.destroy(); }).on('error', (e) => console.log(e.code))";
const PORT: Record<Who, number> = { rootless: 18860, root: 18870 };

const t: Rollouts = { running: [], made: [] };
const made = t.made;
let root: string | undefined;

afterEach(() => clearUps(t.running, root));
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

const bundle = (who: Who, v: string, o?: Parameters<typeof rolloutBundle>[3]) => rolloutBundle(t, who, v, o);
const startLoad = (url: string, out: string) => loadOn(t, url, out);

const upIn = (who: Who, b: string, id: string): Up => {
  root = scratch(who, 'roll-state-');
  return startUp(who, b, root, ['--listen', `127.0.0.1:${PORT[who]}`, '--id', id], t.running);
};

describe.skipIf(!IS_ROOT).each(WHO)('hako rollout of the FHIR server (%s)', (who) => {
  it(`${ROLLOUTS} consecutive rollouts under load: no failed request, every acknowledged write kept`, async () => {
    const v1 = bundle(who, '1.0.0');
    const v2 = bundle(who, '2.0.0');
    const id = `roll-${who}-a`;
    const u = upIn(who, v1, id);
    const { url } = await serving(u);
    sameKey(v1, v2);
    expect(await version(url)).toBe('1.0.0');
    // Both rootfs built before the load starts: a build is not what this measures.
    const load = startLoad(url, path.join(root!, '..', `${id}.load.json`));
    for (let i = 1; i <= ROLLOUTS; i++) {
      const to = i % 2 ? v2 : v1;
      const r = await hakoAsync(who, root!, ['rollout', id, '--bundle', to, '--timeout', '90'], { timeout: 180_000 });
      expect(r.status, r.stderr + u.stderr()).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(
          `^rolled out ${id}: container ${id}(-r${i - 1})? -> ${id}-r${i} \\(${to}\\); handover \\d+ ms \\(old one drained in \\d+ ms\\); version served ${i % 2 ? '2.0.0' : '1.0.0'}\\n$`,
        ),
      );
    }
    const seen = await load.stop();
    expect(seen.failures).toEqual({});
    expect(seen.samples.length).toBeGreaterThan(100);
    expect(seen.acked.length).toBeGreaterThan(50);
    expect(await missing(url, seen.acked)).toEqual([]);
    // One container serves, the last one; up logged each step.
    expect(JSON.parse(hako(who, root!, ['list', '--format', 'json']).stdout).map((c: { id: string }) => c.id)).toEqual([
      `${id}-r${ROLLOUTS}`,
    ]);
    expect(u.stderr()).toMatch(/rollout: started container \S+-r1 from /);
    expect(u.stderr()).toMatch(/asked to hand the data directory over/);
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(upLeftovers(root!)).toEqual([]);
  }, 900_000);

  it('a bundle whose server crashes at start rolls back, with no failed request, before and after the handover', async () => {
    const v1 = bundle(who, '1.0.0');
    // Before: an invalid setting ends it before it asks for the data. After: it exits once it holds the lock.
    const early = bundle(who, '2.0.0-early', { env: ['HAKO_FHIR_SNAPSHOT_BYTES=lots'] });
    const late = bundle(who, '2.0.0-late', {
      patch: (m) =>
        m.replace('const lock: Lock = taken;', "const lock: Lock = taken;\n  if (lock) fail('crashing on purpose, holding the lock');"),
    });
    const id = `roll-${who}-b`;
    const u = upIn(who, v1, id);
    const { url } = await serving(u);
    for (const b of [early, late]) sameKey(v1, b);
    const load = startLoad(url, path.join(root!, '..', `${id}.load.json`));
    const a = await hakoAsync(who, root!, ['rollout', id, '--bundle', early, '--timeout', '90'], { timeout: 180_000 });
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(
      new RegExp(
        `^hako: rollout of ${id} failed: the new container ${id}-r1 exited with status 1 before taking over: rolled back, container ${id} still serves \\(it was never stopped\\)\\n$`,
      ),
    );
    const b = await hakoAsync(who, root!, ['rollout', id, '--bundle', late, '--timeout', '90'], { timeout: 180_000 });
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(
      new RegExp(
        `^hako: rollout of ${id} failed: the new container ${id}-r2 exited with status 1: rolled back, container ${id} \\(${v1}\\) was started again and serves\\n$`,
      ),
    );
    const seen = await load.stop();
    expect(seen.failures).toEqual({});
    expect(seen.acked.length).toBeGreaterThan(20);
    expect(await missing(url, seen.acked)).toEqual([]);
    expect(await version(url)).toBe('1.0.0');
    expect(JSON.parse(hako(who, root!, ['list', '--format', 'json']).stdout).map((c: { id: string }) => c.id)).toEqual([id]);
  }, 600_000);

  it('two rollouts racing: one is refused; SIGHUP rolls out; up killed mid-rollout and restarted: data whole, one server', async () => {
    const v1 = bundle(who, '1.0.0');
    const v2 = bundle(who, '2.0.0');
    const id = `roll-${who}-c`;
    const u = upIn(who, v1, id);
    const { url } = await serving(u);
    sameKey(v1, v2);
    // v2's rootfs first, so that both racers ask while the first one's handover runs.
    const warm = await hakoAsync(who, root!, ['rollout', id, '--bundle', v2], { timeout: 180_000 });
    expect(warm.status, warm.stderr).toBe(0);
    const load = startLoad(url, path.join(root!, '..', `${id}.load.json`));
    const [one, two] = await Promise.all([
      hakoAsync(who, root!, ['rollout', id, '--bundle', v1], { timeout: 180_000 }),
      new Promise((r) => setTimeout(r, 300)).then(() => hakoAsync(who, root!, ['rollout', id, '--bundle', v2], { timeout: 180_000 })),
    ]);
    expect(one.status, one.stderr).toBe(0);
    expect(two.status).toBe(1);
    expect(two.stderr).toBe(`hako: rollout of ${id} failed: a rollout of ${id} is already in progress: try again when it has ended\n`);
    expect(await version(url)).toBe('1.0.0');

    // SIGHUP rolls out the running bundle again (it used to stop up).
    u.child.kill('SIGHUP');
    await until('the SIGHUP rollout', u, () => new RegExp(`SIGHUP: container ${id}-r3 serves in place of ${id}-r2 `).test(u.stderr()));
    expect(u.child.exitCode).toBe(null);

    // Killed while the next rollout's container starts: the containers die with up.
    const pending = hakoAsync(who, root!, ['rollout', id, '--bundle', v2], { timeout: 180_000 });
    await until('the rollout starting', u, () => /started container \S+-r4 from/.test(u.stderr()));
    u.child.kill('SIGKILL');
    await u.exited;
    const cut = await pending;
    expect(cut.status).toBe(1);
    expect(cut.stderr).toMatch(/^hako: the hako up at \S+ gave no answer \(did it stop\?\)\n$/);
    const seen = await load.stop();
    // Requests in flight when up died may fail (its server died with it); every write it acknowledged stays.
    const again = startUp(who, v1, root!, ['--listen', `127.0.0.1:${PORT[who]}`, '--id', id], t.running);
    const s = await serving(again);
    expect(await missing(s.url, seen.acked)).toEqual([]);
    expect(JSON.parse(hako(who, root!, ['list', '--format', 'json']).stdout).map((c: { id: string }) => c.id)).toEqual([id]);
    expect(await version(s.url)).toBe('1.0.0');
    // And it rolls out again: the control socket left by the killed up was replaced.
    const next = await hakoAsync(who, root!, ['rollout', id, '--bundle', v2], { timeout: 180_000 });
    expect(next.status, next.stderr).toBe(0);
    expect(next.stdout).toMatch(/version served 2\.0\.0\n$/);

    // Bad input: one sentence, exit 1, nothing started, the server untouched.
    const none = hako(who, root!, ['rollout', 'roll-nosuch']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^hako: no hako up of "roll-nosuch" runs under \S+ \(no control socket \S+\.roll-nosuch\.up\.sock\)\n$/);
    const broken = scratch(who, 'roll-broken-');
    made.push(broken);
    fs.writeFileSync(path.join(broken, 'config.json'), '{"ociVersion": 1}');
    chownTree(who, broken);
    const bad = hako(who, root!, ['rollout', id, '--bundle', broken]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(
      new RegExp(`^hako: rollout of ${id} failed: .*config\\.json.*; nothing was stopped, container ${id}-r1 still serves\n$`),
    );
    expect(JSON.parse(hako(who, root!, ['list', '--format', 'json']).stdout).map((c: { id: string }) => c.id)).toEqual([`${id}-r1`]);
    expect(await version(s.url)).toBe('2.0.0');
    // The control socket is its owner's: another user cannot even connect (the control: its owner did, above).
    if (who === 'root') {
      const other = spawnSync(
        'setpriv',
        ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', process.execPath, '-e', CONNECT, path.join(root!, `.${id}.up.sock`)],
        { encoding: 'utf8' },
      );
      expect(other.stdout).toBe('EACCES\n');
    }
  }, 900_000);
});
