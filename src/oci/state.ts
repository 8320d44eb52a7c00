// The runtime-spec state (what `hako state` prints) and hako's own record of
// a container, kept in state.json under --root.
export type Status = 'creating' | 'created' | 'running' | 'stopped' | 'paused';

export interface OciState {
  ociVersion: string;
  id: string;
  status: Status;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** /proc/PID/stat start time of the init: guards against pid reuse. */
  startTime: string;
  created: string;
  rootless: boolean;
  /** The user namespace denies setgroups (exec needs to know). */
  setgroupsDenied: boolean;
  /** The config as it was at create (hooks, process, namespaces). */
  configPath: string;
  /** The container's cgroup (src/cgroups CgroupState), when the host has one. */
  cgroup?: import('../cgroups/index.js').CgroupState;
  annotations?: Record<string, string>;
  owner: number;
  /** The mount the rootfs was on before create: what delete detaches down to when the
   *  container has no mount namespace of its own. */
  rootfsMountId?: number;
  /** /proc/sys/kernel/random/boot_id at create: after a reboot the pid names another process. */
  bootId?: string;
  /** Created with --no-new-keyring: exec'd processes keep the caller's session keyring too. */
  noNewKeyring?: boolean;
}

export const OCI_VERSION = '1.2.0';
