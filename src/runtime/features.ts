// `hako features`: the runtime-spec features document.
import { CAPABILITIES } from '../plan/capabilities.js';
import { OCI_VERSION } from '../oci/state.js';
import { native } from '../sys/native.js';
import { cgroupFeatures } from '../cgroups/index.js';
import { features as seccompFeatures } from '../seccomp/index.js';

const MOUNT_OPTIONS = [
  'async',
  'atime',
  'bind',
  'defaults',
  'dev',
  'diratime',
  'dirsync',
  'exec',
  'lazytime',
  'mand',
  'noatime',
  'nodev',
  'nodiratime',
  'noexec',
  'nolazytime',
  'nomand',
  'norelatime',
  'nostrictatime',
  'nosuid',
  'nosymfollow',
  'private',
  'rbind',
  'relatime',
  'remount',
  'ro',
  'rprivate',
  'rshared',
  'rslave',
  'runbindable',
  'rw',
  'shared',
  'slave',
  'strictatime',
  'suid',
  'symfollow',
  'sync',
  'unbindable',
];

export function features() {
  const sc = seccompFeatures();
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts'],
      capabilities: [...CAPABILITIES],
      cgroup: cgroupFeatures(),
      seccomp: {
        enabled: true,
        actions: sc.actions,
        operators: sc.operators,
        archs: sc.architectures,
        knownFlags: sc.flags,
        supportedFlags: sc.flags,
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: {
      'run.hako.landlock.abi': String(native.landlockAbi()),
    },
  };
}
