// What the kubelet sends, as plain objects: a PodSandboxConfig and a ContainerConfig with the
// fields it always fills (metadata, log directory and path, cgroup parent, namespace modes),
// and readers for what comes back (the CRI log format, container states).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Msg, Service } from './client.js';

export interface PodOptions {
  /** Parent cgroup (cgroupfs syntax) the pod's containers go under. */
  cgroupParent: string;
  logRoot: string;
  hostNetwork?: boolean;
  /** CONTAINER (the kubelet's default) or POD (a pod with shareProcessNamespace). */
  pid?: 'POD' | 'CONTAINER';
  securityContext?: Msg;
}

export function sandboxConfig(name: string, o: PodOptions): Msg {
  const uid = crypto.randomUUID();
  const logDir = path.join(o.logRoot, `default_${name}_${uid}`);
  fs.mkdirSync(logDir, { recursive: true });
  return {
    metadata: { name, uid, namespace: 'default', attempt: 0 },
    hostname: o.hostNetwork ? '' : name,
    log_directory: logDir,
    labels: { 'io.kubernetes.pod.name': name },
    linux: {
      cgroup_parent: `${o.cgroupParent}/pod${uid}`,
      security_context: {
        namespace_options: { network: o.hostNetwork ? 'NODE' : 'POD', pid: o.pid ?? 'CONTAINER', ipc: 'POD' },
        ...o.securityContext,
      },
    },
  };
}

export interface ContainerOptions {
  envs?: Record<string, string>;
  mounts?: Msg[];
  resources?: Msg;
  securityContext?: Msg;
  workingDir?: string;
}

export function containerConfig(sandbox: Msg, name: string, image: string, command: string[], o: ContainerOptions = {}): Msg {
  const ns = sandbox.linux.security_context.namespace_options;
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command,
    working_dir: o.workingDir ?? '',
    envs: Object.entries(o.envs ?? {}).map(([key, value]) => ({ key, value })),
    mounts: o.mounts ?? [],
    labels: { 'io.kubernetes.container.name': name },
    log_path: `${name}/0.log`,
    linux: {
      resources: o.resources ?? {},
      security_context: { namespace_options: { network: ns.network, pid: ns.pid, ipc: ns.ipc }, ...o.securityContext },
    },
  };
}

export interface LogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  /** F: a full line; P: a partial one (the rest follows). */
  tag: 'F' | 'P';
  msg: string;
}

const LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$/;

/** Parses a container log in the CRI format strictly: every line must match. */
export function parseCriLog(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.length)
    .map((l, i) => {
      const m = LOG_LINE.exec(l);
      if (!m) throw new Error(`log line ${i + 1} is not in the CRI format: ${JSON.stringify(l)}`);
      return { time: m[1], stream: m[2] as LogLine['stream'], tag: m[3] as LogLine['tag'], msg: m[4] };
    });
}

export function readCriLog(sandbox: Msg, container: Msg): LogLine[] {
  const file = path.join(sandbox.log_directory, container.log_path);
  return parseCriLog(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
}

/** Polls ContainerStatus until the container is in `state`; returns the status. */
export async function waitContainer(runtime: Service, id: string, state: string, timeoutMs = 30_000): Promise<Msg> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await runtime.ContainerStatus({ container_id: id });
    if (status.state === state) return status;
    if (Date.now() > end) throw new Error(`container ${id} is ${status.state}, not ${state}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
