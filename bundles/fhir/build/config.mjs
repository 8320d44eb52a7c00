#!/usr/bin/env node
// Writes the FHIR bundle's config.json: the FHIR bundle's OCI runtime-spec 1.2 config, with the
// containers' default seccomp profile (Podman's and CRI-O's, Docker's lineage) resolved for
// this container and inlined. Run again after the profile or this file changes:
//   node bundles/fhir/build/config.mjs [/usr/share/containers/seccomp.json]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The learned two-phase profile (seccomp.json beside config.json, made by
// `hako profile learn` with profile/driver.mjs) when there is one; else, or with a path, the
// containers' generic default profile resolved for this container.
const LEARNED = new URL('../seccomp.json', import.meta.url);
const PROFILE = process.argv[2] ?? (existsSync(LEARNED) ? null : '/usr/share/containers/seccomp.json');
const OUT = new URL('../config.json', import.meta.url);

// The profile's rules are conditional on the architecture and on capabilities held. This
// container runs on amd64 and holds no capability, so a rule applies when it requires no
// capability and no other architecture; "excludes caps" rules apply because none is held.
const ARCH = 'amd64';
function applies({ includes = {}, excludes = {} }) {
  if (includes.caps?.length) return false;
  if (includes.arches?.length && !includes.arches.includes(ARCH)) return false;
  if (excludes.arches?.includes(ARCH)) return false;
  return true;
}

/** The containers' generic default profile (Podman's), resolved for this container. */
export function seccomp(profile) {
  const amd64 = profile.archMap.find((a) => a.architecture === 'SCMP_ARCH_X86_64');
  const rules = profile.syscalls.filter(applies);
  // The profile also lists some of the capability-guarded calls (setns) in its big allow
  // rule; the rule for "no such capability held" is the one meant, so the plain allow loses them.
  const guarded = new Set(rules.filter((r) => r.excludes?.caps?.length && !r.args?.length).flatMap((r) => r.names));
  const names = (rule) => (rule.excludes?.caps?.length || rule.args?.length ? rule.names : rule.names.filter((n) => !guarded.has(n)));
  return {
    defaultAction: profile.defaultAction,
    defaultErrnoRet: profile.defaultErrnoRet, // ENOSYS, so programs' fallbacks for newer calls work
    architectures: [amd64.architecture, ...amd64.subArchitectures],
    syscalls: rules.map((rule) => ({
      names: names(rule),
      action: rule.action,
      ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
      ...(rule.args?.length ? { args: rule.args } : {}),
    })),
  };
}

const noCaps = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };

const config = {
  ociVersion: '1.2.0',
  process: {
    terminal: false,
    user: { uid: 0, gid: 0 },
    args: ['/node', '/server.js'],
    env: [
      // io_uring would go around the preload shim (and the seccomp policy refuses it anyway).
      'UV_USE_IO_URING=0',
      // V8's heap stays well inside the shim's memory ceiling (run.hako.shim.memory below):
      // past its own limit V8 collects garbage; past the shim's, the allocation fails.
      'NODE_OPTIONS=--max-old-space-size=384',
      'HAKO_FHIR_DATA=/data',
      // Used only when no socket is passed in (LISTEN_FDS); the container has its own network.
      'HAKO_FHIR_LISTEN=0.0.0.0:8080',
      // The store's data key: only its path; the file is a read-only secret (build/secrets.ts).
      'HAKO_FHIR_KEY_FILE=/run/secrets/fhir-store.key',
    ],
    cwd: '/',
    capabilities: noCaps,
    // RLIMIT_NPROC is not here: rootless, it would count every process and thread of the
    // calling user on the host. `hako up` as root, where the container has a host id of its
    // own, adds it. No core dumps (health data in memory); one file at most 8 GiB.
    rlimits: [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
      { type: 'RLIMIT_FSIZE', soft: 8589934592, hard: 8589934592 },
    ],
    noNewPrivileges: true,
  },
  root: { path: 'rootfs', readonly: true },
  hostname: 'fhir',
  // Landlock (docs/landlock.md): read-only beneath /, read-write only /data and /tmp, no TCP
  // bind or connect at all (the listening socket is inherited, already bound).
  annotations: {
    'run.hako.landlock.fs.ro': '/',
    'run.hako.landlock.fs.rw': '/data:/tmp',
    'run.hako.landlock.net.bind': '',
    'run.hako.landlock.net.connect': '',
    // The preload shim (docs/limits.md): where no cgroup holds linux.resources' memory and
    // pids limits (rootless on a host without a delegated cgroup v2, as this machine's),
    // `hako up` keeps its memory and process ceilings; where one does, they are left to the
    // cgroup. Its allowlists hold everywhere: node runs nothing but itself, and connects only
    // to the data directory's lock sockets (server/lock.ts); every other connect (unix or UDP
    // too, which Landlock's TCP rule above does not see) is refused and reported.
    'run.hako.shim.memory': '512M',
    'run.hako.shim.processes': '64',
    'run.hako.shim.exec': '/node',
    'run.hako.shim.connect': '/data/lock.*',
  },
  // The mounts, masked and read-only paths are runc's `spec --rootless` defaults, except
  // /sys (sysfs is allowed: the container has its own network namespace), /tmp and /data.
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'size=65536k'] },
    { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] },
    { destination: '/run/secrets', type: 'bind', source: 'secrets', options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
  ],
  linux: {
    namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup', 'user'].map((type) => ({ type })),
    maskedPaths: [
      '/proc/acpi',
      '/proc/asound',
      '/proc/kcore',
      '/proc/keys',
      '/proc/latency_stats',
      '/proc/timer_list',
      '/proc/timer_stats',
      '/proc/sched_debug',
      '/sys/firmware',
      '/proc/scsi',
      '/sys/devices/virtual/powercap',
    ],
    readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    // Where cgroup controllers are there (as root on this host): a fork bomb stops at 512
    // tasks, memory at 512 MiB for the whole container. Elsewhere the shim's ceilings above.
    resources: { memory: { limit: 536870912 }, pids: { limit: 512 } },
    seccomp: PROFILE ? seccomp(JSON.parse(readFileSync(PROFILE, 'utf8'))) : JSON.parse(readFileSync(LEARNED, 'utf8')),
  },
};

if (process.argv[1] === fileURLToPath(import.meta.url)) writeFileSync(OUT, `${JSON.stringify(config, null, 2)}\n`);
