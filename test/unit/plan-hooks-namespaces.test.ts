// Two limits the executor has that the plan now knows: a startContainer hook's
// strings (one RUN_HOOK step, bounded by plan_ops.def), and each namespace the
// parent thread joins carries its type (the native side no longer guesses it
// from the path).
import { describe, it, expect } from 'vitest';
import { buildCreatePlan } from '../../src/plan/build.js';
import { planNamespaces } from '../../src/plan/namespaces.js';
import { encodeSteps } from '../../src/plan/encode.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import { LIMIT } from '../../src/plan/ops.js';
import { HakoError } from '../../src/errors.js';
import type { HostFacts } from '../../src/host/facts.js';
import type { Config } from '../../src/oci/config.js';

const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };

function cfg(edit: (c: Config) => void): Config {
  const c = defaultSpec(true);
  c.root = { path: '/nonexistent-rootfs', readonly: true };
  c.process!.terminal = false;
  c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
  c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
  edit(c);
  return validateConfig(JSON.parse(JSON.stringify(c)));
}
const plan = (c: Config) => buildCreatePlan({ cfg: c, bundle: '/b', rootless: true, host, fifoPath: '/s/exec.fifo' });
const env = (n: number) => Array.from({ length: n }, (_, i) => `V${i}=${i}`);

describe("startContainer hooks and the executor's argument limit", () => {
  const room = LIMIT.MAX_ARGS - 2; // timeout and argc take two of the step's arguments

  it('plans a hook whose args and env fill the step exactly, and encodes it', () => {
    const p = plan(cfg((c) => (c.hooks = { startContainer: [{ path: '/bin/true', args: ['true', 'a'], env: env(room - 2) }] })));
    const step = p.steps.find((s) => s.op === 'RUN_HOOK')!;
    expect(step.args.length).toBe(LIMIT.MAX_ARGS);
    expect(() => encodeSteps(p.steps)).not.toThrow();
  });

  it('refuses one string more, naming the hook and the limit', () => {
    const c = cfg(
      (c) => (c.hooks = { startContainer: [{ path: '/bin/true' }, { path: '/bin/true', args: ['true', 'a'], env: env(room - 1) }] }),
    );
    expect(() => plan(c)).toThrow(HakoError);
    expect(() => plan(c)).toThrow(
      `config.json: hooks.startContainer[1]: args and env hold ${room + 1} strings together, more than the ${room} a startContainer hook can take (it runs inside the container from one plan step of at most ${LIMIT.MAX_ARGS} arguments)`,
    );
  });
});

describe('namespaces the parent thread joins carry their type', () => {
  const joinBoth = (pid: string, time: string) =>
    cfg((c) => {
      c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: pid } : n));
      c.linux!.namespaces.push({ type: 'time', path: time });
    });

  it('a pid namespace reached through a path that says "time" is still a pid namespace', () => {
    const ns = planNamespaces(joinBoth('/run/time-ns/pid', '/proc/7/ns/time'));
    expect(ns.parentNamespaces).toEqual(['/run/time-ns/pid', '/proc/7/ns/time']);
    expect(ns.parentNamespaceTypes).toEqual(['pid', 'time']);
    const p = plan(joinBoth('/run/time-ns/pid', '/proc/7/ns/time'));
    expect(p.parentNamespaceTypes).toEqual(['pid', 'time']);
  });

  it('none without a new user namespace (the child joins them with setns)', () => {
    const ns = planNamespaces(
      cfg((c) => {
        c.linux!.namespaces = c
          .linux!.namespaces!.filter((n) => n.type !== 'user')
          .map((n) => (n.type === 'pid' ? { type: 'pid', path: '/proc/7/ns/pid' } : n));
      }),
    );
    expect(ns.parentNamespaces).toEqual([]);
    expect(ns.parentNamespaceTypes).toEqual([]);
  });
});
