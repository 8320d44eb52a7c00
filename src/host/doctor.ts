// doctor: a self-check of what this host offers hako, one line per fact with a verdict:
//   ok       works;
//   warn     containers run, without this (limits, a wider id map, a sandbox layer…);
//   missing  hako cannot run containers rootless here.
// Exit 0 when nothing is missing, 1 otherwise. The facts are gathered in one place
// (gatherFacts) and judged by pure functions (checks, formatChecks), which the unit test drives.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { rangesOf } from './subids.js';
import { describeHost, detect } from '../cgroups/index.js';
import { defaultRoot, rootProblem } from '../runtime/store.js';
import { native } from '../sys/native.js';
import { hostLimitFacts, limitChecks, type HostLimitFacts } from '../plan/limit-layers.js';

export type Verdict = 'ok' | 'warn' | 'missing';

export interface Check {
  verdict: Verdict;
  text: string;
}

export interface IdTool {
  path: string;
  /** setuid root, or file capabilities that include CAP_SETUID/CAP_SETGID. */
  privileged: boolean;
  /** How it is privileged, or why that is unknown. */
  how: string;
}

export interface IdRange {
  start: number;
  count: number;
}

export interface DoctorFacts {
  uid: number;
  user: string | null;
  /** describeHost() lines (cgroups: …). */
  cgroupLines: string[];
  /** /proc/sys/user/max_user_namespaces, null when absent. */
  maxUserNamespaces: number | null;
  /** /proc/sys/kernel/unprivileged_userns_clone (Debian/Ubuntu kernels), null when absent. */
  unprivilegedUsernsClone: number | null;
  /** /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10+), null when absent. */
  apparmorRestrictsUserns: number | null;
  newuidmap: IdTool | null;
  newgidmap: IdTool | null;
  subuid: IdRange[];
  subgid: IdRange[];
  /** /proc/sys/kernel/seccomp/actions_avail words; null when absent. */
  seccompActions: string[] | null;
  /** "Seccomp:" of /proc/self/status is there (the kernel has seccomp). */
  seccompKernel: boolean;
  landlockAbi: number;
  overlay: boolean;
  stateRoot: string;
  /** null when writable (or creatable); else why not. */
  stateRootProblem: string | null;
  /** The cgroup controllers this user may use, for the limits' layers; absent when unknown. */
  limitHost?: HostLimitFacts;
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

/** Verdicts for describeHost()'s lines: an unusable cgroup v2 means running without limits. */
export function cgroupChecks(lines: string[]): Check[] {
  return lines.map((line) => {
    const body = line.replace(/^cgroups: /, '');
    if (body.startsWith('warning: ')) return { verdict: 'warn', text: `cgroups: ${body.slice(9)}` };
    if (body.startsWith('ok: ')) return { verdict: 'ok', text: `cgroups: ${body.slice(4)}` };
    if (/^(hybrid mode|legacy mode|no cgroup filesystem)/.test(body)) return { verdict: 'warn', text: line };
    return { verdict: 'ok', text: line };
  });
}

function userns(f: DoctorFacts): Check {
  if (f.maxUserNamespaces === 0)
    return {
      verdict: 'missing',
      text: 'user namespaces: /proc/sys/user/max_user_namespaces is 0, so none can be created (sysctl user.max_user_namespaces=15000)',
    };
  if (f.unprivilegedUsernsClone === 0)
    return {
      verdict: 'missing',
      text: 'user namespaces: unprivileged users may not create them (sysctl kernel.unprivileged_userns_clone=1)',
    };
  if (f.apparmorRestrictsUserns === 1)
    return {
      verdict: 'missing',
      text: 'user namespaces: AppArmor restricts them for unprivileged users (sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for node)',
    };
  const max = f.maxUserNamespaces === null ? '' : ` (max_user_namespaces ${f.maxUserNamespaces})`;
  return { verdict: 'ok', text: `user namespaces: unprivileged users may create them${max}` };
}

function idTool(name: string, tool: IdTool | null): Check {
  if (!tool)
    return {
      verdict: 'warn',
      text: `${name}: not found in PATH; rootless containers can map only the caller's own id (Debian/Ubuntu package uidmap)`,
    };
  if (!tool.privileged)
    return { verdict: 'warn', text: `${name}: ${tool.path} is ${tool.how}; rootless containers can map only the caller's own id` };
  return { verdict: 'ok', text: `${name}: ${tool.path} (${tool.how})` };
}

function ranges(file: string, f: DoctorFacts, rs: IdRange[]): Check {
  const who = f.user ? `${f.user} (uid ${f.uid})` : `uid ${f.uid}`;
  if (f.uid === 0) return { verdict: 'ok', text: `${file}: not needed as root (any id can be mapped)` };
  if (rs.length === 0)
    return {
      verdict: 'warn',
      text: `${file}: no range for ${who}; rootless containers can map only its own id (usermod --add-subuids/--add-subgids)`,
    };
  const total = rs.reduce((n, r) => n + r.count, 0);
  const list = rs.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ');
  return { verdict: 'ok', text: `${file}: ${who} has ${list} (${plural(total, 'id')})` };
}

function seccomp(f: DoctorFacts): Check[] {
  if (f.seccompActions === null) {
    return f.seccompKernel
      ? [
          {
            verdict: 'warn',
            text: 'seccomp: available, but /proc/sys/kernel/seccomp/actions_avail is absent: cannot tell which actions work',
          },
        ]
      : [{ verdict: 'warn', text: 'seccomp: the kernel has no seccomp; containers asking for a seccomp profile will fail' }];
  }
  const out: Check[] = [{ verdict: 'ok', text: `seccomp: actions ${f.seccompActions.join(' ')}` }];
  out.push(
    f.seccompActions.includes('user_notif')
      ? { verdict: 'ok', text: 'seccomp: user notification (SCMP_ACT_NOTIFY, listenerPath) available' }
      : { verdict: 'warn', text: 'seccomp: no user notification (user_notif); profiles using SCMP_ACT_NOTIFY will fail' },
  );
  return out;
}

/** Judges the facts: one Check per line, in a fixed order. */
export function checks(f: DoctorFacts): Check[] {
  const out: Check[] = [];
  out.push(...cgroupChecks(f.cgroupLines));
  if (f.limitHost) out.push(...limitChecks(f.limitHost));
  out.push(userns(f));
  out.push(idTool('newuidmap', f.newuidmap), idTool('newgidmap', f.newgidmap));
  out.push(ranges('/etc/subuid', f, f.subuid), ranges('/etc/subgid', f, f.subgid));
  out.push(...seccomp(f));
  out.push(
    f.landlockAbi > 0
      ? { verdict: 'ok', text: `landlock: ABI ${f.landlockAbi}` }
      : {
          verdict: 'warn',
          text: 'landlock: not available (kernel without CONFIG_SECURITY_LANDLOCK, or not in the lsm= list); run.hako.landlock.* annotations are skipped, or refused in strict mode',
        },
  );
  out.push(
    f.overlay
      ? { verdict: 'ok', text: 'overlayfs: in /proc/filesystems' }
      : { verdict: 'warn', text: 'overlayfs: not in /proc/filesystems (modprobe overlay); overlay mounts in a bundle will fail' },
  );
  out.push(
    f.stateRootProblem === null
      ? { verdict: 'ok', text: `state root: ${f.stateRoot} is writable` }
      : {
          verdict: 'missing',
          text: `state root: ${f.stateRootProblem}${f.stateRootProblem.includes('--root') ? '' : ' (choose another with --root)'}`,
        },
  );
  return out;
}

export function formatChecks(cs: Check[]): string {
  return cs.map((c) => `${c.verdict.padEnd(8)}${c.text}\n`).join('');
}

/** The closing line and the exit status: 1 when anything is missing. */
export function verdict(cs: Check[]): { line: string; exitCode: 0 | 1 } {
  const missing = cs.filter((c) => c.verdict === 'missing').length;
  const warn = cs.filter((c) => c.verdict === 'warn').length;
  if (missing > 0)
    return {
      line: `hako cannot run rootless containers here: ${plural(missing, 'fact')} missing, ${plural(warn, 'warning')}`,
      exitCode: 1,
    };
  return { line: `hako can run rootless containers here${warn ? ` (${plural(warn, 'warning')})` : ''}`, exitCode: 0 };
}

// ---- gathering ----

function readNumber(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

export { rangesOf as parseSubIds } from './subids.js';

function subIds(file: string, user: string | null, uid: number): IdRange[] {
  try {
    return rangesOf(fs.readFileSync(file, 'utf8'), user, uid);
  } catch {
    return [];
  }
}

function which(name: string): string | null {
  for (const dir of (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

function idToolFact(name: string): IdTool | null {
  const p = which(name) ?? (fs.existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : null);
  if (!p) return null;
  const st = fs.statSync(p);
  if (st.mode & 0o4000 && st.uid === 0) return { path: p, privileged: true, how: 'setuid root' };
  // File capabilities live in an xattr node cannot read; getcap (libcap2-bin) can.
  const getcap = which('getcap') ?? (fs.existsSync('/usr/sbin/getcap') ? '/usr/sbin/getcap' : null);
  if (!getcap) return { path: p, privileged: false, how: 'not setuid root, and getcap is not installed to check file capabilities' };
  const r = spawnSync(getcap, [p], { encoding: 'utf8' });
  const caps = (r.stdout ?? '').toLowerCase();
  const want = name === 'newuidmap' ? 'cap_setuid' : 'cap_setgid';
  if (caps.includes(want)) return { path: p, privileged: true, how: `file capabilities: ${caps.replace(p.toLowerCase(), '').trim()}` };
  return { path: p, privileged: false, how: `neither setuid root nor given ${want.toUpperCase()}` };
}

/** Whether the state root is writable, or can be created: a real write (a temporary directory
 *  made and removed in it, or in its nearest existing ancestor), since access() says yes to root
 *  on filesystems that refuse (/proc, a read-only mount). */
function stateRootProblem(root: string): string | null {
  const target = path.resolve(root);
  let dir = target;
  while (!fs.existsSync(dir)) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  try {
    fs.rmdirSync(fs.mkdtempSync(path.join(dir, '.hako-doctor-')));
    return null;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return dir === target
      ? `${root} is not writable by uid ${process.geteuid!()} (${why})`
      : `${root} does not exist and cannot be created in ${dir} (${why})`;
  }
}

export function gatherFacts(root?: string): DoctorFacts {
  const uid = process.geteuid!();
  let user: string | null = null;
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry
  }
  let seccompActions: string[] | null = null;
  try {
    seccompActions = fs.readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8').trim().split(/\s+/);
  } catch {
    // older kernel or no seccomp
  }
  let seccompKernel = false;
  try {
    seccompKernel = /^Seccomp:/m.test(fs.readFileSync('/proc/self/status', 'utf8'));
  } catch {
    // no /proc
  }
  let overlay = false;
  try {
    overlay = /\boverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    // no /proc
  }
  let cgroupLines: string[];
  let limitHost: HostLimitFacts | undefined;
  try {
    const host = detect();
    cgroupLines = describeHost(host);
    limitHost = hostLimitFacts(host);
  } catch (e) {
    cgroupLines = [`cgroups: warning: cannot inspect cgroups (${(e as Error).message})`];
  }
  // The root's owner and mode first (what every verb refuses), then a real write.
  let stateRoot: string;
  let stateRootIssue: string | null;
  try {
    stateRoot = root ?? defaultRoot();
    stateRootIssue = rootProblem(stateRoot) ?? stateRootProblem(stateRoot);
  } catch (e) {
    stateRoot = '(none)';
    stateRootIssue = (e as Error).message;
  }
  return {
    uid,
    user,
    cgroupLines,
    maxUserNamespaces: readNumber('/proc/sys/user/max_user_namespaces'),
    unprivilegedUsernsClone: readNumber('/proc/sys/kernel/unprivileged_userns_clone'),
    apparmorRestrictsUserns: readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
    newuidmap: idToolFact('newuidmap'),
    newgidmap: idToolFact('newgidmap'),
    subuid: subIds('/etc/subuid', user, uid),
    subgid: subIds('/etc/subgid', user, uid),
    seccompActions,
    seccompKernel,
    landlockAbi: native.landlockAbi(),
    overlay,
    stateRoot,
    stateRootProblem: stateRootIssue,
    limitHost,
  };
}
