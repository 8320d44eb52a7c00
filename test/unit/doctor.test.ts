// `hako doctor`: the verdict logic on made-up hosts, and the real command on this one.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cgroupChecks, checks, formatChecks, parseSubIds, verdict, type DoctorFacts } from '../../src/host/doctor.js';
import { describeHost, type HostCgroups } from '../../src/cgroups/index.js';
import { CLI } from '../helpers/env.js';

const unifiedDelegated: HostCgroups = {
  mode: 'unified',
  mount: '/sys/fs/cgroup',
  controllers: ['cpu', 'memory', 'pids', 'io'],
  v1Controllers: [],
  uid: 1000,
  rootless: true,
  ownCgroup: '/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope',
  base: '/user.slice/user-1000.slice/user@1000.service',
  baseControllers: ['cpu', 'memory', 'pids'],
  problem: null,
};
const hybrid: HostCgroups = {
  mode: 'hybrid',
  mount: '/sys/fs/cgroup/unified',
  controllers: ['hugetlb'],
  v1Controllers: ['cpu', 'memory', 'pids'],
  uid: 1000,
  rootless: true,
  ownCgroup: '/',
  base: null,
  baseControllers: [],
  problem:
    'no cgroup v2 subtree is delegated to uid 1000 (its cgroup / is not writable); run hako under systemd-run --user --scope -p Delegate=yes, or as root',
};

function facts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    uid: 1000,
    user: 'alice',
    cgroupLines: describeHost(unifiedDelegated),
    maxUserNamespaces: 63000,
    unprivilegedUsernsClone: null,
    apparmorRestrictsUserns: null,
    newuidmap: { path: '/usr/bin/newuidmap', privileged: true, how: 'setuid root' },
    newgidmap: { path: '/usr/bin/newgidmap', privileged: true, how: 'setuid root' },
    subuid: [{ start: 100000, count: 65536 }],
    subgid: [{ start: 100000, count: 65536 }],
    seccompActions: ['kill_process', 'errno', 'user_notif', 'allow'],
    seccompKernel: true,
    landlockAbi: 4,
    overlay: true,
    stateRoot: '/run/user/1000/hako',
    stateRootProblem: null,
    ...over,
  };
}

describe('hako doctor verdicts', () => {
  it('a well-equipped rootless host: every line ok, exit 0', () => {
    const cs = checks(facts());
    expect(cs.every((c) => c.verdict === 'ok')).toBe(true);
    expect(verdict(cs)).toEqual({ line: 'hako can run rootless containers here', exitCode: 0 });
    const text = formatChecks(cs);
    expect(text).toContain('ok      cgroups: cgroup v2 at /sys/fs/cgroup (unified mode)\n');
    expect(text).toContain(
      'ok      cgroups: writable subtree /user.slice/user-1000.slice/user@1000.service (delegated), controllers: cpu memory pids\n',
    );
    expect(text).toContain('ok      cgroups: memory, pids and cpu limits are enforced\n');
    expect(text).toContain('ok      /etc/subuid: alice (uid 1000) has 100000-165535 (65536 ids)\n');
    expect(text).toContain('ok      seccomp: user notification (SCMP_ACT_NOTIFY, listenerPath) available\n');
    expect(text).toContain('ok      landlock: ABI 4\n');
    // One line per fact, each starting with its verdict.
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^(ok|warn|missing) +\S/);
  });

  it('a hybrid host without delegation, no id tools, no Landlock: warnings, still exit 0', () => {
    const cs = checks(
      facts({
        cgroupLines: describeHost(hybrid),
        newuidmap: null,
        newgidmap: { path: '/usr/bin/newgidmap', privileged: false, how: 'neither setuid root nor given CAP_SETGID' },
        subuid: [],
        landlockAbi: 0,
        overlay: false,
        seccompActions: ['kill_process', 'errno', 'allow'],
      }),
    );
    const byVerdict = (v: string) => cs.filter((c) => c.verdict === v).map((c) => c.text);
    expect(byVerdict('missing')).toEqual([]);
    expect(byVerdict('warn')).toEqual([
      'cgroups: hybrid mode: cgroup v2 at /sys/fs/cgroup/unified, cgroup v1 holds cpu memory pids',
      `cgroups: ${hybrid.problem}; containers run without those limits (HAKO_CGROUP_STRICT=1 refuses instead)`,
      "newuidmap: not found in PATH; rootless containers can map only the caller's own id (Debian/Ubuntu package uidmap)",
      "newgidmap: /usr/bin/newgidmap is neither setuid root nor given CAP_SETGID; rootless containers can map only the caller's own id",
      '/etc/subuid: no range for alice (uid 1000); rootless containers can map only its own id (usermod --add-subuids/--add-subgids)',
      'seccomp: no user notification (user_notif); profiles using SCMP_ACT_NOTIFY will fail',
      expect.stringMatching(/^landlock: not available/),
      expect.stringMatching(/^overlayfs: not in \/proc\/filesystems/),
    ]);
    expect(verdict(cs)).toEqual({ line: 'hako can run rootless containers here (8 warnings)', exitCode: 0 });
  });

  it('no unprivileged user namespaces, or no writable state root: missing, exit 1', () => {
    for (const over of [{ maxUserNamespaces: 0 }, { unprivilegedUsernsClone: 0 }, { apparmorRestrictsUserns: 1 }]) {
      const cs = checks(facts(over));
      expect(cs.filter((c) => c.verdict === 'missing').map((c) => c.text)).toEqual([expect.stringMatching(/^user namespaces: .*sysctl /)]);
      expect(verdict(cs).exitCode).toBe(1);
    }
    const cs = checks(facts({ stateRootProblem: '/run/hako is not writable by uid 1000' }));
    expect(formatChecks(cs)).toContain('missing state root: /run/hako is not writable by uid 1000 (choose another with --root)\n');
    expect(verdict(cs)).toEqual({ line: 'hako cannot run rootless containers here: 1 fact missing, 0 warnings', exitCode: 1 });
  });

  it('as root, id ranges are not needed; a kernel without actions_avail still has seccomp', () => {
    const cs = checks(facts({ uid: 0, user: 'root', subuid: [], subgid: [], seccompActions: null }));
    expect(cs.find((c) => c.text.startsWith('/etc/subgid'))).toEqual({
      verdict: 'ok',
      text: '/etc/subgid: not needed as root (any id can be mapped)',
    });
    expect(cs.find((c) => c.text.startsWith('seccomp'))!.verdict).toBe('warn');
  });

  it('maps describeHost lines to verdicts', () => {
    expect(cgroupChecks(['cgroups: no cgroup filesystem mounted', 'cgroups: running as root in /', 'cgroups: warning: x'])).toEqual([
      { verdict: 'warn', text: 'cgroups: no cgroup filesystem mounted' },
      { verdict: 'ok', text: 'cgroups: running as root in /' },
      { verdict: 'warn', text: 'cgroups: x' },
    ]);
  });

  it('reads /etc/subuid by name or uid, skipping comments and junk', () => {
    const text = '# c\nalice:100000:65536\nbob:200000:65536\n1000:300000:10\nalice:x:y\n\n';
    expect(parseSubIds(text, 'alice', 1000)).toEqual([
      { start: 100000, count: 65536 },
      { start: 300000, count: 10 },
    ]);
    expect(parseSubIds(text, null, 2000)).toEqual([]);
  });
});

describe('hako doctor on this host', () => {
  it('prints one verdict per line and a closing verdict matching its exit status', () => {
    const r = spawnSync(CLI, ['doctor'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    const last = lines.pop()!;
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) expect(line).toMatch(/^(ok|warn|missing) +\S/);
    expect(lines).toContainEqual(expect.stringMatching(/^(ok|warn) +cgroups: /));
    expect(lines).toContainEqual(expect.stringMatching(/^(ok|warn) +landlock: /));
    expect(lines).toContainEqual(expect.stringMatching(/^(ok|missing) +state root: /));
    const missing = lines.some((l) => l.startsWith('missing'));
    expect(r.status).toBe(missing ? 1 : 0);
    expect(last).toMatch(missing ? /^hako cannot run rootless containers here/ : /^hako can run rootless containers here/);
  });
});
