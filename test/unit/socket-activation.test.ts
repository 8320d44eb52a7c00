import { describe, expect, test } from 'vitest';
import { planSocketActivation } from '../../src/runtime/activation.js';
import { defaultSpec } from '../../src/oci/default.js';

const cfg = () => {
  const c = defaultSpec(false);
  c.process!.env = ['PATH=/bin', 'LISTEN_PID=77'];
  return c;
};

describe('socket activation for create/run', () => {
  test('nothing to do without LISTEN_FDS anywhere', () => {
    const c = defaultSpec(false);
    const a = planSocketActivation(c, { env: {}, pid: 10, preserveFds: 2 });
    expect(a).toEqual({ cfg: c, preserveFds: 2, listenFds: 0 });
  });

  test("hako activated: its fds go first, --preserve-fds after them, LISTEN_PID=1 for the container's init", () => {
    const a = planSocketActivation(cfg(), {
      env: { LISTEN_FDS: '2', LISTEN_PID: '10', LISTEN_FDNAMES: 'http:admin' },
      pid: 10,
      preserveFds: 1,
    });
    expect(a.preserveFds).toBe(3);
    expect(a.listenFds).toBe(2);
    expect(a.cfg.process!.env).toEqual(['PATH=/bin', 'LISTEN_FDS=2', 'LISTEN_PID=1', 'LISTEN_FDNAMES=http:admin']);
  });

  test('LISTEN_FDS meant for another process (LISTEN_PID differs) is not ours', () => {
    const a = planSocketActivation(defaultSpec(false), { env: { LISTEN_FDS: '2', LISTEN_PID: '11' }, pid: 10, preserveFds: 0 });
    expect(a.listenFds).toBe(0);
  });

  test('config declares LISTEN_FDS for preserved fds: LISTEN_PID is corrected to 1', () => {
    const c = cfg();
    c.process!.env!.push('LISTEN_FDS=1');
    const a = planSocketActivation(c, { env: {}, pid: 10, preserveFds: 1 });
    expect(a.preserveFds).toBe(1);
    expect(a.cfg.process!.env).toEqual(['PATH=/bin', 'LISTEN_FDS=1', 'LISTEN_PID=1']);
  });

  test('config declares more fds than are preserved: one sentence', () => {
    const c = cfg();
    c.process!.env!.push('LISTEN_FDS=2');
    expect(() => planSocketActivation(c, { env: {}, pid: 10, preserveFds: 1 })).toThrow(
      'LISTEN_FDS=2 but --preserve-fds passes only 1 fd(s)',
    );
  });

  test('without a new pid namespace LISTEN_PID cannot be known: refused', () => {
    const c = cfg();
    c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'pid');
    expect(() => planSocketActivation(c, { env: { LISTEN_FDS: '1' }, pid: 10, preserveFds: 0 })).toThrow(
      'socket activation needs a new pid namespace',
    );
  });
});
