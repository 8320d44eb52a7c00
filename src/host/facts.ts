// Facts about the host the plan depends on, gathered once and passed in, so
// the plan itself stays a pure function (tests hand in made-up facts).
import fs from 'node:fs';
import os from 'node:os';

export interface HostFacts {
  uid: number;
  gid: number;
  /** Name of the calling user, for /etc/subuid lookups. */
  user: string;
  /** /proc/sys/kernel/cap_last_cap */
  lastCap: number;
  /** Landlock ABI version, 0 when unavailable. */
  landlockAbi: number;
  /** /sys/fs/cgroup is a cgroup2 mount (unified mode), so a container can mount its own. */
  cgroup2Unified: boolean;
  /** We already run inside a user namespace (rootless Podman runs its runtime as uid 0 of one): mknod is refused there. */
  inUserNs?: boolean;
  /** The major LSMs enabled here: a label or profile asked for where its LSM is absent is refused. */
  lsm?: { apparmor: boolean; selinux: boolean };
}

function readLsm(): { apparmor: boolean; selinux: boolean } {
  const read = (p: string) => {
    try {
      return fs.readFileSync(p, 'utf8').trim();
    } catch {
      return '';
    }
  };
  return { apparmor: read('/sys/module/apparmor/parameters/enabled') === 'Y', selinux: fs.existsSync('/sys/fs/selinux/enforce') };
}

/** Whether this process runs inside a user namespace (its uid map is not the host's identity map). */
export function inUserNamespace(): boolean {
  try {
    const [inside, outside, count] = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(inside === '0' && outside === '0' && count === '4294967295');
  } catch {
    return false;
  }
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

function isCgroup2Unified(): boolean {
  try {
    return fs.statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

export function readHostFacts(landlockAbi = 0): HostFacts {
  const lastCap = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  let user = String(process.getuid!());
  try {
    user = os.userInfo().username;
  } catch {
    // a uid with no passwd entry: subuid lookups go by number
  }
  return {
    uid: process.geteuid!(),
    gid: process.getegid!(),
    user,
    lastCap,
    landlockAbi,
    cgroup2Unified: isCgroup2Unified(),
    inUserNs: inUserNamespace(),
    lsm: readLsm(),
  };
}
