// update: change a running container's limits. `--resources FILE|-` takes an
// OCI LinuxResources object (containerd's shim and Docker send it on stdin,
// Podman as a file); runc's single-value flags override fields of it.
import fs from 'node:fs';
import { Command } from 'commander';
import { context } from '../app.js';
import { HakoError } from '../../errors.js';
import { update, parseJson, readInputFile, fileError, type LinuxResources } from '../../runtime/index.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A byte size as runc's flags take it: 1048576, 512k, 100m, 1g; -1 means unlimited. */
export function parseBytes(v: string, flag: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw new HakoError(`${flag}: "${v}" is not a size (bytes, or a number with k, m, g or t)`);
  return Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()]);
}

function int(v: string, flag: string): number {
  if (!/^-?\d+$/.test(v)) throw new HakoError(`${flag}: "${v}" is not an integer`);
  return Number(v);
}

/** The resources to apply: the --resources object with the single-value flags on top. */
export function resourcesFrom(o: Record<string, string | undefined>): LinuxResources {
  let r: LinuxResources = {};
  if (o.resources !== undefined) {
    const name = o.resources === '-' ? 'stdin' : o.resources;
    let text: string;
    if (o.resources !== '-') text = readInputFile(o.resources, `--resources ${o.resources}`);
    else {
      try {
        text = fs.readFileSync(0, 'utf8');
      } catch (e) {
        throw new HakoError(`--resources: cannot read stdin: ${fileError(e)}`);
      }
    }
    const parsed = parseJson(text, name) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new HakoError(`--resources: ${name} must hold a JSON object (OCI linux.resources)`);
    r = parsed as LinuxResources;
  }
  const set = <K extends keyof LinuxResources>(k: K, f: Partial<NonNullable<LinuxResources[K]>>) => {
    (r as any)[k] = { ...((r as any)[k] ?? {}), ...f };
  };
  if (o.memory !== undefined) set('memory', { limit: parseBytes(o.memory, '--memory') });
  if (o.memoryReservation !== undefined) set('memory', { reservation: parseBytes(o.memoryReservation, '--memory-reservation') });
  if (o.memorySwap !== undefined) set('memory', { swap: parseBytes(o.memorySwap, '--memory-swap') });
  if (o.kernelMemory !== undefined) set('memory', { kernel: parseBytes(o.kernelMemory, '--kernel-memory') });
  if (o.kernelMemoryTcp !== undefined) set('memory', { kernelTCP: parseBytes(o.kernelMemoryTcp, '--kernel-memory-tcp') });
  if (o.cpuShare !== undefined) set('cpu', { shares: int(o.cpuShare, '--cpu-share') });
  if (o.cpuPeriod !== undefined) set('cpu', { period: int(o.cpuPeriod, '--cpu-period') });
  if (o.cpuQuota !== undefined) set('cpu', { quota: int(o.cpuQuota, '--cpu-quota') });
  if (o.cpuRtPeriod !== undefined) set('cpu', { realtimePeriod: int(o.cpuRtPeriod, '--cpu-rt-period') });
  if (o.cpuRtRuntime !== undefined) set('cpu', { realtimeRuntime: int(o.cpuRtRuntime, '--cpu-rt-runtime') });
  if (o.cpusetCpus !== undefined) set('cpu', { cpus: o.cpusetCpus });
  if (o.cpusetMems !== undefined) set('cpu', { mems: o.cpusetMems });
  if (o.cpuIdle !== undefined) set('cpu', { idle: int(o.cpuIdle, '--cpu-idle') });
  if (o.pidsLimit !== undefined) set('pids', { limit: int(o.pidsLimit, '--pids-limit') });
  if (o.blkioWeight !== undefined) set('blockIO', { weight: int(o.blkioWeight, '--blkio-weight') });
  if (o.l3CacheSchema !== undefined || o.memBwSchema !== undefined)
    throw new HakoError('--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by hako');
  return r;
}

export const updateCommand = new Command('update')
  .description("change a running container's resource limits (cgroup)")
  .argument('<id>', 'container id')
  .option('-r, --resources <file>', 'OCI linux.resources JSON, or - for stdin')
  .option('--blkio-weight <n>', 'block IO weight (10-1000)')
  .option('--cpu-period <us>', 'CPU CFS period')
  .option('--cpu-quota <us>', 'CPU CFS quota')
  .option('--cpu-rt-period <us>', 'CPU realtime period')
  .option('--cpu-rt-runtime <us>', 'CPU realtime runtime')
  .option('--cpu-share <n>', 'CPU shares (converted to cpu.weight)')
  .option('--cpu-idle <n>', 'cpu.idle')
  .option('--cpuset-cpus <list>', 'CPUs to use')
  .option('--cpuset-mems <list>', 'memory nodes to use')
  .option('--kernel-memory <size>', 'ignored by cgroup v2 (accepted like runc)')
  .option('--kernel-memory-tcp <size>', 'ignored by cgroup v2 (accepted like runc)')
  .option('--memory <size>', 'memory limit')
  .option('--memory-reservation <size>', 'memory soft limit')
  .option('--memory-swap <size>', 'memory + swap limit')
  .option('--pids-limit <n>', 'maximum number of processes')
  .option('--l3-cache-schema <s>', 'Intel RDT (not supported)')
  .option('--mem-bw-schema <s>', 'Intel RDT (not supported)')
  .action(async function (this: Command, id: string) {
    await update(context(this), id, resourcesFrom(this.opts()));
  });
