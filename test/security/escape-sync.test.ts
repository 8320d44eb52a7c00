// Issue 9, class 3: forged sync messages. A process in the container stops hako's helper, takes its
// sync socket with pidfd_getfd (SOCK_SEQPACKET; {u32 type, u32 step, i32 err, i32 value}) and
// sends MSG_PID(<a host pid>) then MSG_ERROR: a runtime that trusts the socket kills the host
// process it was named. The victim is a sacrificial `sleep 600` on the host, owned by whoever runs
// hako. Expected: pidfd_getfd fails on every helper, and the victim is alive afterwards.
// Controls: the attacker's forging works on a socket it owns (selftest) and, through pidfd_getfd,
// on the bait's socket; and the liveness check notices a death.
import { describe, it, expect } from 'vitest';
import { hako, WHO } from '../helpers/hako.js';
import { IS_ROOT, BUSYBOX_ROOTFS } from '../helpers/env.js';
import {
  attackKit,
  jsonLines,
  isRuntimeProcess,
  breaches,
  isAlive,
  until,
  sacrificialProcess,
  hakoAsync,
  nsPidOf,
  type Probe,
} from './helpers/attack.js';

const kit = attackKit();
const EXECS = 8;

function victim(who: 'root' | 'rootless'): { pid: number; kill: () => void } {
  const v = sacrificialProcess(who);
  kit.cleanups.push(v.kill);
  return v;
}

/** Sockets the attacker took from one of hako's processes (none may be). */
const stolenSockets = (probes: Probe[], except: number[]) =>
  probes
    .filter((p) => !except.includes(p.pid) && isRuntimeProcess(p))
    .flatMap((p) => p.getfd.got.map((g) => `pid ${p.pid} (${p.comm}) fd ${g.fd}: ${g.type} ${g.link}${g.forged ? ' FORGED' : ''}`));

describe('the check notices a dead victim (control)', () => {
  it('a sacrificial process the test kills is seen dead', async () => {
    const v = sacrificialProcess('root');
    expect(await until(() => isAlive(v.pid), 2000)).toBe(true);
    v.kill();
    expect(await until(() => !isAlive(v.pid), 5000)).toBe(true);
  });
});

describe.each(WHO)('forged sync messages (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('through the exec helper: MSG_PID(host pid) + MSG_ERROR on a stolen sync socket', async () => {
    const v = victim(who);
    // Rootless, the attacker has every capability in its user namespace (CAP_SYS_PTRACE too).
    const w = await kit.startWatcher(who, `fg-${who}`, { extra: [String(v.pid)], allCaps: who === 'rootless' });
    // Controls: forging works on a socket the attacker owns, and on the bait's through pidfd_getfd.
    const self = jsonLines<{ sent: boolean; received: number; firstType: number; firstValue: number; secondType: number }>(
      hako(who, w.root, ['exec', w.id, '/bin/attacker', 'selftest', String(v.pid)]).stdout,
    )[0];
    expect(self).toMatchObject({ sent: true, received: 2, firstType: 4, firstValue: v.pid, secondType: 2 });
    const b = await kit.bait(who, w.initPid);
    const onBait = kit.probeFrom(who, w.root, w.id, [b.nsPid], v.pid)[0];
    expect(onBait?.getfd.got.filter((g) => g.type === 'sock' && g.forged).length).toBeGreaterThan(0);

    for (let i = 0; i < EXECS; i++) await hakoAsync(who, w.root, ['exec', w.id, '/bin/true']);
    const probes = await kit.finish(w);
    expect(probes.filter((p) => p.pid !== b.nsPid && isRuntimeProcess(p) && p.stopped).length, 'no helper was caught').toBeGreaterThan(0);
    // One assertion, so a failure shows all of it: the victim's fate and what was stolen.
    expect({ victimAlive: isAlive(v.pid), stolen: stolenSockets(probes, [b.nsPid]), breaches: breaches(probes, [b.nsPid]) }).toEqual({
      victimAlive: true,
      stolen: [],
      breaches: [],
    });
  });

  run('through a created init in a shared pid namespace, during and after its setup', async () => {
    const v = victim(who);
    const w = await kit.startWatcher(who, `fgn-a-${who}`, { extra: [String(v.pid)] });
    const { bundle, root } = kit.makeBundle(who, (c) => {
      c.root = { path: BUSYBOX_ROOTFS, readonly: true };
      c.process!.args = ['true'];
      c.linux!.namespaces = c.linux!.namespaces!.map((n) =>
        n.type === 'pid'
          ? { type: 'pid', path: `/proc/${w.initPid}/ns/pid` }
          : n.type === 'user'
            ? { type: 'user', path: `/proc/${w.initPid}/ns/user` }
            : n,
      );
      if (who === 'rootless') {
        delete c.linux!.uidMappings;
        delete c.linux!.gidMappings;
      }
    });
    const id = `fgn-b-${who}`;
    hako(who, root, ['create', '-b', bundle, id], { detached: true });
    kit.cleanups.push(() => hako(who, root, ['delete', '--force', id]));
    const scanned: Probe[] = [];
    const st = hako(who, root, ['state', id]);
    if (st.status === 0) {
      const bInA = nsPidOf(JSON.parse(st.stdout).pid as number);
      scanned.push(...kit.probeFrom(who, w.root, w.id, [bInA], v.pid));
      expect(scanned.length).toBe(1);
    }
    const probes = [...(await kit.finish(w)), ...scanned];
    expect({ victimAlive: isAlive(v.pid), stolen: stolenSockets(probes, []) }).toEqual({ victimAlive: true, stolen: [] });
  });
});
