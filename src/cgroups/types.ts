// The OCI runtime-spec `linux.resources` object, as far as the cgroup driver reads it.
// Structural on purpose, so the validated spec type from src/oci is assignable to it.

export interface LinuxDeviceRate {
  major: number;
  minor: number;
  rate: number;
}
export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxResources {
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    kernel?: number;
    kernelTCP?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
    useHierarchy?: boolean;
    checkBeforeUpdate?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    burst?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
    idle?: number;
  };
  pids?: { limit?: number };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: LinuxWeightDevice[];
    throttleReadBpsDevice?: LinuxDeviceRate[];
    throttleWriteBpsDevice?: LinuxDeviceRate[];
    throttleReadIOPSDevice?: LinuxDeviceRate[];
    throttleWriteIOPSDevice?: LinuxDeviceRate[];
  };
  hugepageLimits?: { pageSize: string; limit: number }[];
  network?: { classID?: number; priorities?: { name: string; priority: number }[] };
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  unified?: Record<string, string>;
  // Device rules are enforced by the runtime's device plan, not by a v2 controller file.
  devices?: unknown[];
}

/** One write into the container's cgroup directory. */
export interface CgroupWrite {
  /** File name inside the cgroup directory, e.g. "memory.max". */
  file: string;
  value: string;
  /** The controller that must be enabled for the file to exist ("cgroup" for core files). */
  controller: string;
  /** JSON path of the setting it comes from, for error messages. */
  field: string;
}
