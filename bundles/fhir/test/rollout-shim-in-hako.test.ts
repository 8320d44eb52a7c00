// Issue 18 and the preload shim: after a rollout, the new container's shim denials are reported
// as the first one's are (src/up/shim-supervision.ts watches every container up runs): a line on
// up's stderr and a FHIR AuditEvent naming the new container's id. Rootless, where the shim runs
// (no cgroup may hold memory for the test user); the control is the same allocation in the
// first container, reported before the rollout.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, hakoAsync, scratch, type Who } from '../../../test/helpers/hako.js';
import { clearUps, serving, startUp, until, upLeftovers } from '../../../test/helpers/up.js';
import { rolloutBundle, sameKey, version, type Rollouts } from './rollout-helpers.js';

const SHIM_SUBTYPES = 'https://hako.run/fhir/CodeSystem/shim';
const PORT = 18430;
const t: Rollouts = { running: [], made: [] };

afterEach(() => clearUps(t.running, t.root));
afterAll(() => {
  for (const d of t.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** From a process exec'd into container ID (the bundle's process settings): 64 MiB (there) and
 *  600 MiB (past the shim's 512M ceiling, refused as an allocator refuses). */
function allocate(who: Who, root: string, bundle: string, id: string): void {
  const proc = path.join(root, 'probe.json');
  const base = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).process;
  const script = `const get = (n) => { try { return Buffer.alloc(n * 1048576, 1).length / 1048576; } catch (e) { return e.message; } };
    console.log(JSON.stringify({ small: get(64), large: get(600) }));`;
  fs.writeFileSync(proc, JSON.stringify({ ...base, args: ['/node', '-e', script] }), { mode: 0o644 });
  try {
    const r = hako(who, root, ['exec', '--process', proc, id]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ small: 64, large: 'Array buffer allocation failed' });
  } finally {
    fs.rmSync(proc);
  }
}

const refusal = (id: string) =>
  new RegExp(
    `container ${id}: the preload shim refused (calloc|malloc|mmap) to /node \\(pid \\d+\\): \\d+ more bytes would pass its memory ceiling of 536870912`,
  );

/** The shim memory AuditEvents the server holds (authorization is off in these bundles). */
async function memoryEvents(url: string): Promise<{ outcomeDesc: string }[]> {
  const res = await fetch(`${url}AuditEvent?type=110113&_count=1000`, { headers: { accept: 'application/fhir+json' } });
  const found = (await res.json()) as { entry?: { resource: { subtype?: { system: string; code: string }[]; outcomeDesc: string } }[] };
  return (found.entry ?? [])
    .map((e) => e.resource)
    .filter((a) => a.subtype?.[0]?.system === SHIM_SUBTYPES && a.subtype[0].code === 'memory');
}

describe.skipIf(!IS_ROOT)('the preload shim after a rollout (rootless)', () => {
  const who: Who = 'rootless';

  it("the new container's denials are reported under its own id, as the first one's are", async () => {
    const v1 = rolloutBundle(t, who, '1.0.0');
    const v2 = rolloutBundle(t, who, '2.0.0');
    t.root = scratch(who, 'rollshim-state-');
    const id = 'e-rollshim';
    const u = startUp(who, v1, t.root, ['--listen', `127.0.0.1:${PORT}`, '--id', id], t.running);
    const { url } = await serving(u);
    sameKey(v1, v2);

    // The control: the first container's denial is reported.
    allocate(who, t.root, v1, id);
    await until('the first denial reported', u, () => refusal(id).test(u.stderr()), 10_000);

    const r = await hakoAsync(who, t.root, ['rollout', id, '--bundle', v2, '--timeout', '90'], { timeout: 180_000 });
    expect(r.status, r.stderr + u.stderr()).toBe(0);
    expect(await version(url)).toBe('2.0.0');
    allocate(who, t.root, v2, `${id}-r1`);
    await until("the new container's denial reported", u, () => refusal(`${id}-r1`).test(u.stderr()), 10_000);
    // And stored as an AuditEvent naming it, beside the first one's.
    let events: { outcomeDesc: string }[] = [];
    for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((res) => setTimeout(res, 200))) {
      events = await memoryEvents(url);
      if (events.some((e) => refusal(`${id}-r1`).test(e.outcomeDesc))) break;
    }
    // (an allocation may be refused several times: the allocator tries again smaller)
    expect([...new Set(events.map((e) => e.outcomeDesc.match(/^container (\S+):/)?.[1]))].sort()).toEqual([id, `${id}-r1`]);

    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(upLeftovers(t.root)).toEqual([]);
  }, 600_000);
});
