// Plan details the real clients depend on (test/e2e/docker.test.ts found them).
import { describe, expect, test } from 'vitest';
import { buildCreatePlan } from '../../src/plan/build.js';
import { readHostFacts } from '../../src/host/facts.js';
import { defaultSpec } from '../../src/oci/default.js';

describe('create plan order', () => {
  test('sysctls are written before /proc/sys and the root turn read-only (Docker sets net.ipv4.ip_unprivileged_port_start)', () => {
    const cfg = defaultSpec(false);
    cfg.root = { path: '/', readonly: true };
    cfg.process!.terminal = false;
    cfg.linux!.sysctl = { 'net.ipv4.ip_unprivileged_port_start': '0' };
    cfg.linux!.readonlyPaths = ['/proc/sys'];
    const plan = buildCreatePlan({ cfg, bundle: '/tmp', rootless: false, host: readHostFacts() });
    const sysctl = plan.steps.findIndex((s) => s.what === 'set sysctl net.ipv4.ip_unprivileged_port_start');
    const ro = plan.steps.findIndex((s) => s.op === 'READONLY_PATH' && s.args[0] === '/proc/sys');
    expect(sysctl).toBeGreaterThan(0);
    expect(ro).toBeGreaterThan(sysctl);
    const pivot = plan.steps.findIndex((s) => s.op === 'PIVOT_ROOT' || s.op === 'MOVE_CHROOT');
    expect(sysctl).toBeGreaterThan(pivot);
  });

  test('running inside a user namespace (rootless Podman), devices are bound from the host, not created with mknod', () => {
    const cfg = defaultSpec(false);
    cfg.root = { path: '/', readonly: true };
    cfg.process!.terminal = false;
    const host = { ...readHostFacts(), inUserNs: true };
    const steps = buildCreatePlan({ cfg, bundle: '/tmp', rootless: false, host }).steps;
    expect(steps.some((s) => s.op === 'MKNOD_IN_ROOT')).toBe(false);
    expect(steps.some((s) => s.op === 'MOUNT' && s.args[0] === '/dev/null')).toBe(true);
    const plain = buildCreatePlan({ cfg, bundle: '/tmp', rootless: false, host: { ...host, inUserNs: false } }).steps;
    expect(plain.some((s) => s.op === 'MKNOD_IN_ROOT' && s.args[0] === '/dev/null')).toBe(true);
  });
});
