// Issue 18 with signed bundles: an `hako up --require-signed --trust DIR` serving a signed FHIR
// bundle refuses to roll out to a bundle that is unsigned, or signed and then altered (a file of
// its rootfs, its config.json), with one sentence naming what failed, before anything stops:
// the old container (same id, same process) serves on under a constant load that sees no failed
// request. The control: the same bundle, signed and unaltered, rolls out. Rootless and as root.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT, TEST_USER } from '../../../test/helpers/env.js';
import { hako, hakoAsync, scratch, WHO, type Who } from '../../../test/helpers/hako.js';
import { clearUps, serving, startUp, chownTree, upLeftovers } from '../../../test/helpers/up.js';
import { newKeys } from '../../../src/seal/keys.js';
import { rolloutBundle, sameKey, startLoad, version, type Rollouts } from './rollout-helpers.js';

const PORT: Record<Who, number> = { rootless: 18410, root: 18420 };
const t: Rollouts = { running: [], made: [] };

afterEach(() => clearUps(t.running, t.root));
afterAll(() => {
  for (const d of t.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs the bundle's own build hook as WHO (what `up` would run; a signed `up` runs none). */
function build(who: Who, dir: string): void {
  const argv = [process.execPath, path.join(dir, 'build/index.mjs'), dir];
  const r =
    who === 'root'
      ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
      : spawnSync('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', ...argv], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

/** alice's and mallory's keys (readable by WHO) and a trust dir holding alice's identity only. */
function keys(who: Who): { key: string; untrusted: string; mallory: string; trust: string } {
  const dir = scratch(who, 'rolls-keys-');
  t.made.push(dir);
  const trust = path.join(dir, 'trust');
  fs.mkdirSync(trust, { mode: 0o755 });
  newKeys('alice', dir);
  newKeys('mallory', dir);
  fs.copyFileSync(path.join(dir, 'alice.id.json'), path.join(trust, 'alice.id.json'));
  chownTree(who, dir);
  const mallory = (JSON.parse(fs.readFileSync(path.join(dir, 'mallory.id.json'), 'utf8')) as { fingerprint: string }).fingerprint;
  return { key: path.join(dir, 'alice.key'), untrusted: path.join(dir, 'mallory.key'), mallory, trust };
}

function sign(who: Who, root: string, dir: string, key: string): void {
  const r = hako(who, root, ['sign', '-b', dir, '--key', key], { timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
}

/** The old container serves on: the only one, the same process. */
function sameContainer(who: Who, root: string, id: string, pid: number): void {
  const list = JSON.parse(hako(who, root, ['list', '--format', 'json']).stdout) as { id: string; pid: number }[];
  expect(list.map((c) => [c.id, c.pid])).toEqual([[id, pid]]);
}

describe.skipIf(!IS_ROOT).each(WHO)('hako rollout under --require-signed (%s)', (who) => {
  it('an unsigned or altered bundle is refused before anything stops; the signed one rolls out', async () => {
    const { key, untrusted, mallory, trust } = keys(who);
    const v1 = rolloutBundle(t, who, '1.0.0');
    const v2 = rolloutBundle(t, who, '2.0.0');
    build(who, v1);
    sameKey(v1, v2);
    build(who, v2);
    t.root = scratch(who, 'rolls-state-');
    sign(who, t.root, v1, key);
    const id = `e-rolls-${who}`;
    const u = startUp(who, v1, t.root, ['--listen', `127.0.0.1:${PORT[who]}`, '--id', id, '--require-signed', '--trust', trust], t.running);
    const { url } = await serving(u);
    expect(await version(url)).toBe('1.0.0');
    const pid = (JSON.parse(hako(who, t.root, ['state', id]).stdout) as { pid: number }).pid;
    const load = startLoad(t, url, path.join(t.root, '..', `${id}.load.json`));
    const loadT0 = Date.now();
    const rollout = () => hakoAsync(who, t.root!, ['rollout', id, '--bundle', v2, '--timeout', '90'], { timeout: 180_000 });
    const refused = async (what: string) => {
      const r = await rollout();
      expect(r.status, r.stdout).toBe(1);
      expect(r.stderr).toBe(
        `hako: rollout of ${id} failed: --require-signed: ${what}; nothing was stopped, container ${id} still serves\n`,
      );
      expect(u.stderr()).not.toMatch(/rollout: started container/);
      sameContainer(who, t.root!, id, pid);
      expect(await version(url)).toBe('1.0.0');
    };

    // (a) Unsigned.
    const from = Date.now() - loadT0;
    await refused(`${v2} is not signed (it has no hako.sig.json; hako sign makes one)`);
    // Signed by someone the up does not trust.
    sign(who, t.root, v2, untrusted);
    await refused(
      `hako.sig.json: signed by mallory (fingerprint ${mallory}), who is not trusted: no identity in ${trust} has that fingerprint`,
    );
    // (b) Signed, then a file of its rootfs altered; then its config.json.
    sign(who, t.root, v2, key);
    const server = path.join(v2, 'rootfs/server.js');
    const code = fs.readFileSync(server);
    const more = '\n// altered after signing\n';
    fs.appendFileSync(server, more);
    await refused(
      `the bundle changed since alice signed it: rootfs/server.js: content changed (size ${code.length} → ${code.length + more.length} bytes)`,
    );
    fs.writeFileSync(server, code);
    const cfgFile = path.join(v2, 'config.json');
    const cfg = fs.readFileSync(cfgFile, 'utf8');
    fs.writeFileSync(cfgFile, cfg.replace('HAKO_FHIR_AUTH=off', 'HAKO_FHIR_AUTH=of'));
    await refused('the bundle changed since alice signed it: config.json changed');
    fs.writeFileSync(cfgFile, cfg);
    const to = Date.now() - loadT0;

    // (c) The control: restored, as signed, it rolls out.
    const ok = await rollout();
    expect(ok.status, ok.stderr + u.stderr()).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^rolled out ${id}: container ${id} -> ${id}-r1 \\(${v2}\\); .*; version served 2\\.0\\.0\\n$`));
    const seen = await load.stop();
    expect(seen.failures).toEqual({});
    // Requests kept succeeding while the refused rollouts were asked, and after.
    expect(seen.samples.filter(([at, , ok]) => at >= from && at <= to && ok === 1).length).toBeGreaterThan(20);
    expect(seen.samples.filter(([at, , ok]) => at > to && ok === 1).length).toBeGreaterThan(20);
    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(upLeftovers(t.root)).toEqual([]);
  }, 900_000);
});
