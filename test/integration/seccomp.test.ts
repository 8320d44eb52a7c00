// seccomp on real containers, rootless and as root: the configured errno, KILL, LOG, TRAP,
// NOTIFY answered by an agent at listenerPath, the containers default profile, and bad
// profiles refused with one sentence and nothing left behind.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { makeBundle, hako, WHO, scratch, type Who } from '../helpers/hako.js';
import { IS_ROOT, BUSYBOX_ROOTFS, REPO, WORK } from '../helpers/env.js';
import { CONTAINERS_PROFILE, ociFromProfile } from '../helpers/libseccomp/profile.js';
import type { Config } from '../../src/oci/config.js';
import type { OciSeccomp } from '../../src/seccomp/index.js';

// x86_64 syscall numbers the probe calls.
const NR = { getppid: 110, mkdir: 83, mkdirat: 258, unshare: 272, mount: 165, move_pages: 279, lsm_list_modules: 461 };
const AT_FDCWD = '-100';
const CLONE_NEWNS = '0x20000';
const SIGSYS_EXIT = 128 + 31;

const TOOLS = path.join(WORK, 'seccomp-tools');
const ROOTFS = path.join(WORK, 'seccomp-rootfs');
const AGENT = path.join(TOOLS, 'agent');

/** busybox plus /bin/probe (a static raw-syscall caller), built once per run. */
function buildTools(): void {
  fs.mkdirSync(TOOLS, { recursive: true });
  const src = path.join(REPO, 'test/helpers/seccomp-agent');
  execFileSync('cc', ['-O2', '-static', '-o', path.join(TOOLS, 'probe'), path.join(src, 'probe.c')]);
  execFileSync('cc', ['-O2', '-Wall', '-o', AGENT, path.join(src, 'agent.c')]);
  if (!fs.existsSync(path.join(ROOTFS, 'bin/sh'))) {
    fs.rmSync(`${ROOTFS}.tmp`, { recursive: true, force: true });
    execFileSync('cp', ['-a', BUSYBOX_ROOTFS, `${ROOTFS}.tmp`]);
    fs.renameSync(`${ROOTFS}.tmp`, ROOTFS);
  }
  fs.copyFileSync(path.join(TOOLS, 'probe'), path.join(ROOTFS, 'bin/probe'));
  fs.chmodSync(path.join(ROOTFS, 'bin/probe'), 0o755);
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  root: string;
  bundle: string;
}

function runWith(who: Who, seccomp: OciSeccomp | undefined, args: string[], edit: (c: Config) => void = () => {}, id = 'sc1'): Ran {
  const { bundle, root } = makeBundle(who, (c) => {
    c.root = { path: ROOTFS, readonly: true };
    c.process!.args = args;
    if (seccomp) c.linux!.seccomp = seccomp as never;
    edit(c);
  });
  const r = hako(who, root, ['run', '-b', bundle, id]);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, root, bundle };
}

const probe = (nr: number, ...args: string[]) => ['probe', String(nr), ...args];
const allowBut = (syscalls: OciSeccomp['syscalls']): OciSeccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls });

const agents: ChildProcess[] = [];
afterEach(() => {
  for (const a of agents.splice(0)) a.kill('SIGKILL');
});

/** Starts the agent; resolves once its socket listens. */
async function startAgent(who: Who, mode: 'errno' | 'value', value: number): Promise<{ socket: string; log: string }> {
  const dir = scratch(who, 'agent-');
  const socket = path.join(dir, 'agent.sock');
  const log = path.join(dir, 'agent.log');
  const a = spawn(AGENT, [socket, log, mode, String(value)], { stdio: ['ignore', 'pipe', 'inherit'] });
  agents.push(a);
  await new Promise<void>((resolve, reject) => {
    a.stdout!.once('data', () => resolve());
    a.once('exit', (code) => reject(new Error(`agent exited with ${code}`)));
  });
  return { socket, log };
}

function agentLog(log: string): { states: Array<Record<string, unknown> & { rest: string }>; notifs: string[] } {
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const states = lines
    .filter((l) => l.startsWith('state '))
    .map((l) => {
      const m = /^state (\{.*\}) (fds=\d+ closed=\w+)$/.exec(l)!;
      return { ...(JSON.parse(m[1]!) as Record<string, unknown>), rest: m[2]! };
    });
  return { states, notifs: lines.filter((l) => l.startsWith('notif ')) };
}

beforeAll(() => buildTools());

describe.each(WHO)('seccomp in containers (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('a denied syscall fails with the configured errno', () => {
    const sc = allowBut([{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    let r = runWith(who, sc, probe(NR.mkdirat, AT_FDCWD, 's:/dev/x', '0755'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ret=-1 errno=38\n');
    expect(r.status).toBe(0);
    r = runWith(who, sc, probe(NR.mkdir, 's:/dev/x', '0755'));
    expect(r.stdout).toBe('ret=-1 errno=38\n');
    // busybox mkdir says it in words (/dev is a writable tmpfs).
    r = runWith(who, sc, ['mkdir', '/dev/x']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/can't create directory '\/dev\/x': Function not implemented/);
    // Without the filter the same call works.
    expect(runWith(who, undefined, probe(NR.mkdirat, AT_FDCWD, 's:/dev/x', '0755')).stdout).toBe('ret=0 errno=0\n');
  });

  run('SCMP_ACT_ERRNO without errnoRet is EPERM', () => {
    const r = runWith(who, allowBut([{ names: ['mkdirat'], action: 'SCMP_ACT_ERRNO' }]), probe(NR.mkdirat, AT_FDCWD, 's:/dev/x', '0755'));
    expect(r.stdout).toBe('ret=-1 errno=1\n');
  });

  run('arguments decide: the rule matches only the compared value', () => {
    // unshare(CLONE_NEWNS) denied with EACCES; unshare(0) is a no-op that succeeds.
    const sc = allowBut([
      {
        names: ['unshare'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 13,
        args: [{ index: 0, value: 0x20000, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0x20000 }],
      },
    ]);
    expect(runWith(who, sc, probe(NR.unshare, CLONE_NEWNS)).stdout).toBe('ret=-1 errno=13\n');
    expect(runWith(who, sc, probe(NR.unshare, '0')).stdout).toBe('ret=0 errno=0\n');
  });

  run('KILL_PROCESS, KILL and TRAP end the process by SIGSYS (exit 159)', () => {
    for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP']) {
      const r = runWith(who, allowBut([{ names: ['getppid'], action }]), probe(NR.getppid));
      expect({ action, status: r.status, stdout: r.stdout }).toEqual({ action, status: SIGSYS_EXIT, stdout: '' });
    }
  });

  run('SCMP_ACT_LOG allows the call', () => {
    const r = runWith(who, allowBut([{ names: ['getppid', 'mkdirat'], action: 'SCMP_ACT_LOG' }]), [
      'sh',
      '-c',
      'probe 110 && probe 258 -100 s:/dev/y 0755 && ls -d /dev/y',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ret=\d+ errno=0\nret=0 errno=0\n\/dev\/y\n$/);
    expect(r.status).toBe(0);
  });

  run('a name no architecture knows is skipped; the container runs', () => {
    const r = runWith(
      who,
      allowBut([{ names: ['frobnicate2099', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 22 }]),
      probe(NR.mkdirat, AT_FDCWD, 's:/dev/x', '0755'),
    );
    expect(r.stdout).toBe('ret=-1 errno=22\n');
    expect(r.status).toBe(0);
  });

  run('SCMP_ACT_NOTIFY: the agent gets the fd and the state, and its answer is what the container sees', async () => {
    const sc = (listenerPath: string): OciSeccomp =>
      ({
        ...allowBut([{ names: ['mkdirat'], action: 'SCMP_ACT_NOTIFY' }]),
        listenerPath,
        listenerMetadata: 'probe-of-issue-3',
      }) as OciSeccomp;
    // An errno answer.
    let agent = await startAgent(who, 'errno', 42);
    let r = runWith(who, sc(agent.socket), probe(NR.mkdirat, AT_FDCWD, 's:/dev/n', '0755'), () => {}, 'notify1');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ret=-1 errno=42\n');
    expect(r.status).toBe(0);
    let log = agentLog(agent.log);
    expect(log.states).toHaveLength(1);
    const s = log.states[0]!;
    const state = s.state as Record<string, unknown>;
    expect(s.rest).toBe('fds=1 closed=yes');
    expect(s.ociVersion).toBe('1.2.0');
    expect(s.fds).toEqual(['seccompFd']);
    expect(s.metadata).toBe('probe-of-issue-3');
    expect(s.pid).toBeGreaterThan(1);
    expect(state).toMatchObject({ id: 'notify1', status: 'creating', pid: s.pid, bundle: r.bundle });
    expect(log.notifs).toHaveLength(1);
    expect(log.notifs[0]).toBe(`notif pid=${s.pid} nr=258 arch=c000003e arg0=ffffffffffffff9c`);

    // A faked success: the call "returns" 7 and nothing was made.
    agent = await startAgent(who, 'value', 7);
    r = runWith(who, sc(agent.socket), ['sh', '-c', 'probe 258 -100 s:/dev/n 0755; ls /dev/n || echo absent'], () => {}, 'notify2');
    expect(r.stdout).toBe('ret=7 errno=0\nabsent\n');
    log = agentLog(agent.log);
    expect(log.states).toHaveLength(1);
    expect(log.notifs).toHaveLength(1);
  });

  run('SCMP_ACT_NOTIFY in hako exec: the exec process gets its own fd, sent to the agent', async () => {
    const agent = await startAgent(who, 'errno', 43);
    const sc = { ...allowBut([{ names: ['mkdirat'], action: 'SCMP_ACT_NOTIFY' }]), listenerPath: agent.socket } as OciSeccomp;
    const { bundle, root } = makeBundle(who, (c) => {
      c.root = { path: ROOTFS, readonly: true };
      c.process!.args = ['sleep', '30'];
      c.linux!.seccomp = sc as never;
    });
    try {
      expect(hako(who, root, ['create', '-b', bundle, 'nx'], { detached: true }).status).toBe(0);
      expect(hako(who, root, ['start', 'nx']).status).toBe(0);
      const r = hako(who, root, ['exec', 'nx', 'probe', '258', '-100', 's:/dev/q', '0755']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('ret=-1 errno=43\n');
      const log = agentLog(agent.log);
      expect(log.states).toHaveLength(2);
      const [init, ex] = log.states as Array<Record<string, unknown>>;
      expect((init!.state as { status: string }).status).toBe('creating');
      expect(ex!.state).toMatchObject({ id: 'nx', status: 'running', pid: init!.pid });
      expect(ex!.pid).not.toBe(init!.pid);
      expect(log.notifs).toHaveLength(1);
      expect(log.notifs[0]).toContain(`pid=${ex!.pid} nr=258`);
    } finally {
      hako(who, root, ['delete', '--force', 'nx']);
    }
  });

  run('the containers default profile runs busybox sh and blocks what it lists', () => {
    const caps = (c: Config) => c.process!.capabilities!.bounding!;
    let profile: OciSeccomp | undefined;
    const { bundle, root } = makeBundle(who, (c) => {
      c.root = { path: ROOTFS, readonly: true };
      profile = ociFromProfile(CONTAINERS_PROFILE, 'amd64', caps(c), 'SCMP_ARCH_X86_64');
      c.linux!.seccomp = profile as never;
      c.process!.args = [
        'sh',
        '-c',
        [
          'grep -E "^Seccomp:" /proc/self/status',
          'ls / >/dev/null && echo "$(echo sub)shell ok"',
          `probe ${NR.move_pages} 0 0 0 0 0 0`, // listed: EPERM
          `probe ${NR.lsm_list_modules} 0 0 0`, // not listed: the default, ENOSYS
          `probe ${NR.unshare} ${CLONE_NEWNS}`, // allowed by the profile, refused without CAP_SYS_ADMIN
          `probe ${NR.mount} s:none s:/tmp s:tmpfs 0 0`,
        ].join(' && '),
      ];
    });
    expect(profile!.syscalls!.reduce((n, s) => n + s.names.length, 0)).toBeGreaterThan(400);
    const r = hako(who, root, ['run', '-b', bundle, 'prof']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      ['Seccomp:\t2', 'subshell ok', 'ret=-1 errno=1', 'ret=-1 errno=38', 'ret=-1 errno=1', 'ret=-1 errno=1', ''].join('\n'),
    );
    expect(r.status).toBe(0);
    // The same calls without the profile: move_pages and lsm_list_modules reach the kernel.
    const bare = runWith(who, undefined, ['sh', '-c', `probe ${NR.move_pages} 0 0 0 0 0 0; probe ${NR.lsm_list_modules} 0 0 0`]);
    expect(bare.stdout).not.toContain('errno=38');
    expect(bare.stdout.split('\n')[0]).toBe('ret=0 errno=0');
  });
});

describe.each(WHO)('bad seccomp profiles (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  function refused(seccomp: unknown, message: string | RegExp): void {
    const { bundle, root } = makeBundle(who, (c) => {
      c.root = { path: ROOTFS, readonly: true };
      c.linux!.seccomp = seccomp as never;
    });
    const r = hako(who, root, ['run', '-b', bundle, 'bad']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    if (typeof message === 'string') expect(lines[0]).toBe(`hako: config.json: ${message}`);
    else expect(lines[0]).toMatch(message);
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  }
  const one = (rule: object) => ({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ERRNO', ...rule }],
  });

  run('unknown action', () =>
    refused(one({ action: 'SCMP_ACT_MAYBE' }), 'linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_MAYBE"'),
  );
  run('unknown default action', () =>
    refused({ defaultAction: 'SCMP_ACT_NOPE' }, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
  );
  run('unknown operator', () =>
    refused(
      one({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_LIKE' }] }),
      'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"',
    ),
  );
  run('a rule with too many arguments', () =>
    refused(
      one({ args: Array.from({ length: 7 }, (_, i) => ({ index: i % 6, value: 0, op: 'SCMP_CMP_EQ' })) }),
      'linux.seccomp.syscalls[0].args: a rule compares at most 6 arguments, this one has 7',
    ),
  );
  run('an argument index out of range', () =>
    refused(
      one({ args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }),
      'linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0..5)',
    ),
  );
  run('an errno out of range', () =>
    refused(one({ errnoRet: 4096 }), 'linux.seccomp.syscalls[0].errnoRet: 4096 is out of range (0..4095)'),
  );
  run('a profile over the BPF limit', () => {
    const syscalls = Array.from({ length: 600 }, (_, i) => ({
      names: ['ioctl'],
      action: 'SCMP_ACT_ALLOW',
      args: [
        { index: 1, value: 2 ** 40 + i, op: 'SCMP_CMP_EQ' },
        { index: 2, value: 2 ** 40 + i, op: 'SCMP_CMP_EQ' },
      ],
    }));
    refused(
      { defaultAction: 'SCMP_ACT_ERRNO', syscalls },
      /^hako: config\.json: linux\.seccomp: the compiled filter has \d+ instructions, over the kernel's limit of 4096$/,
    );
  });
  run('NOTIFY without listenerPath', () =>
    refused(one({ action: 'SCMP_ACT_NOTIFY' }), 'linux.seccomp.listenerPath: needed for SCMP_ACT_NOTIFY rules'),
  );
  run('listenerMetadata without listenerPath', () =>
    refused({ ...one({}), listenerMetadata: 'x' }, 'linux.seccomp.listenerMetadata: set without listenerPath'),
  );
});
