// hako as a Kubernetes RuntimeClass handler: containerd 1.6's CRI plugin driven over its gRPC
// socket the way the kubelet drives it (CRI v1, test/e2e/cri/api.proto), every pod through
// `runtime_handler: "hako"` (a runtime entry with the runc shim and BinaryName = bin/hako).
// The sandbox image is a pause binary built here, the network Debian's CNI bridge plugin, the
// FHIR server the bundle's own image. No kubelet is packaged here: the calls are the
// kubelet's, made by this file (docs/kubernetes.md says what that leaves untested).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { BUSYBOX_ROOTFS, CLI, IS_ROOT, REPO } from '../helpers/env.js';
import { clientDir, pidsMentioning, removeTree, skipReason } from './clients/daemons.js';
import type { Msg, Service } from './cri/client.js';
import { CNI_BIN_DIR, startCriContainerd, type CriContainerd } from './cri/daemon.js';
import { BUSYBOX_IMAGE, FHIR_IMAGE, busyboxArchive, fhirArchive, pauseArchive } from './cri/images.js';
import { execStream } from './cri/stream.js';
import { containerConfig, readCriLog, sandboxConfig, waitContainer, type ContainerOptions, type PodOptions } from './cri/pod.js';
import { rootEntries } from '../helpers/leftovers.js';

const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'];

function criSkip(): string | null {
  const s = skipReason(['containerd', 'ctr', 'cc']);
  if (s) return s;
  const missing = CNI_PLUGINS.filter((p) => !fs.existsSync(path.join(CNI_BIN_DIR, p)));
  if (missing.length && process.env.CI)
    throw new Error(`CI: missing CNI plugins ${missing.join(', ')} (containernetworking-plugins in test/debian-packages.txt)`);
  if (missing.length) return `CNI plugins missing in ${CNI_BIN_DIR}: ${missing.join(', ')} (containernetworking-plugins)`;
  return null;
}
const skip = IS_ROOT ? criSkip() : 'needs root (containerd and its CRI run as root; see docs/kubernetes.md for rootless)';

const NETWORK = { bridge: 'cri-hako0', subnet: '10.219.19.0/24' };
const CGROUP_PARENT = `/cri-hako-${process.pid}`;
const V1_ROOT = '/sys/fs/cgroup';

/** One HTTP request with a deadline; resolves the status, the Location header and the body. */
function request(
  method: string,
  url: string,
  body?: object,
  timeoutMs = 5_000,
): Promise<{ status: number; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const headers: Record<string, string> = payload ? { 'content-type': 'application/fhir+json' } : {};
    const req = http.request(url, { method, timeout: timeoutMs, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, location: res.headers.location }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
const get = (url: string) => request('GET', url);

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The v1 hierarchies (and the v2 mount) this host has, for the cgroups hako makes. */
function cgroupRoots(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length > 9 && (f[f.length - 3] === 'cgroup' || f[f.length - 3] === 'cgroup2'))
    .map((f) => f[4]);
}

/** Every cgroup directory at or below `rel` in every hierarchy, deepest first. */
function cgroupDirs(rel: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  for (const root of cgroupRoots()) walk(path.join(root, rel));
  return out;
}

describe.skipIf(skip)(`containerd's CRI drives hako as the RuntimeClass handler "hako"${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir = '';
  let ctd: CriContainerd;
  let rt: Service;
  const pods: string[] = [];
  const hakoState = (id: string) => path.join(dir, 'hako-root/k8s.io', id, 'state.json');

  beforeAll(async () => {
    dir = clientDir('cri');
    ctd = await startCriContainerd({ dir, runtimes: { hako: CLI }, network: NETWORK });
    rt = ctd.cri.runtime;
    for (const tar of [pauseArchive(dir), busyboxArchive(dir, BUSYBOX_ROOTFS)]) {
      const r = ctd.ctr(['images', 'import', tar]);
      expect(r.status, r.stderr).toBe(0);
    }
  });

  afterEach(async () => {
    // Whatever a test left: removed the kubelet's way.
    for (const id of pods.splice(0)) {
      await rt.StopPodSandbox({ pod_sandbox_id: id }).catch(() => undefined);
      await rt.RemovePodSandbox({ pod_sandbox_id: id }).catch(() => undefined);
    }
  });

  afterAll(async () => {
    if (ctd) await ctd.stop();
    // The pods' parent cgroups (hako removes each container's own): empty directories, deepest first.
    for (const d of cgroupDirs(CGROUP_PARENT)) spawnSync('rmdir', [d]);
    if (dir) removeTree(dir);
  });

  const podOptions = (o: Partial<PodOptions> = {}): PodOptions => ({ cgroupParent: CGROUP_PARENT, logRoot: path.join(dir, 'pods'), ...o });

  async function runPod(name: string, o: Partial<PodOptions> = {}): Promise<{ id: string; config: Msg }> {
    const config = sandboxConfig(name, podOptions(o));
    const { pod_sandbox_id: id } = await rt.RunPodSandbox({ config, runtime_handler: 'hako' });
    pods.push(id);
    return { id, config };
  }

  async function runContainer(
    pod: { id: string; config: Msg },
    name: string,
    command: string[],
    o: ContainerOptions & { image?: string } = {},
  ): Promise<{ id: string; config: Msg }> {
    const config = containerConfig(pod.config, name, o.image ?? BUSYBOX_IMAGE, command, o);
    const { container_id: id } = await rt.CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config });
    await rt.StartContainer({ container_id: id });
    return { id, config };
  }

  async function exec(id: string, cmd: string[], timeout = 20): Promise<{ out: string; err: string; code: number }> {
    const r = await rt.ExecSync({ container_id: id, cmd, timeout });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code };
  }

  async function initPid(id: string): Promise<number> {
    const { info } = await rt.ContainerStatus({ container_id: id, verbose: true });
    return JSON.parse(info.info).pid;
  }

  test("docs/kubernetes.md's containerd config is one containerd accepts, with the hako entry", () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/kubernetes.md'), 'utf8');
    const toml = /```toml\n([\s\S]*?)```/.exec(doc)![1];
    const file = path.join(dir, 'docs-config.toml');
    fs.writeFileSync(file, toml);
    const r = spawnSync('containerd', ['--config', file, 'config', 'dump'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('restrict_oom_score_adj = true');
    const entry = r.stdout.slice(r.stdout.indexOf('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hako]'));
    expect(entry).toMatch(/^\s+runtime_type = "io.containerd.runc.v2"$/m);
    expect(entry).toMatch(/^\s+BinaryName = "\/usr\/local\/bin\/hako"$/m);
  });

  test('Version and Status: the CRI v1 API answers, the runtime and the network are ready', async () => {
    const v = await rt.Version({ version: 'v1' });
    expect(v.runtime_api_version).toBe('v1');
    expect(v.runtime_name).toBe('containerd');
    const { status } = await rt.Status({});
    const cond = Object.fromEntries(status.conditions.map((c: Msg) => [c.type, c.status]));
    expect(cond).toEqual({ RuntimeReady: true, NetworkReady: true });
  });

  test('RunPodSandbox on the CNI bridge: the pause container runs under hako, with an IP the host reaches', async () => {
    const pod = await runPod('cri-web');
    const { status } = await rt.PodSandboxStatus({ pod_sandbox_id: pod.id });
    expect(status.state).toBe('SANDBOX_READY');
    expect(status.runtime_handler).toBe('hako');
    expect(status.network.ip).toMatch(/^10\.219\.19\.\d+$/);
    // The sandbox is hako's: its state is in the hako entry's Root, its init is the pause binary.
    const state = JSON.parse(fs.readFileSync(hakoState(pod.id), 'utf8'));
    expect(fs.readFileSync(`/proc/${state.pid}/cmdline`, 'utf8')).toBe('/pause\0');

    const web = await runContainer(pod, 'web', [
      'sh',
      '-c',
      'mkdir -p /tmp/www && echo "served by $(hostname)" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www',
    ]);
    expect(fs.existsSync(hakoState(web.id))).toBe(true);
    await waitContainer(rt, web.id, 'CONTAINER_RUNNING');
    const res = await until('the pod to serve on its IP', () => get(`http://${status.network.ip}:8080/`));
    expect(res).toEqual({ status: 200, body: 'served by cri-web\n' });
    // eth0 in the container carries the sandbox's address: the container joined the pod's netns.
    const ip = await exec(web.id, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(ip.out).toContain(`inet ${status.network.ip}/24`);
  });

  test('ExecSync: stdout and stderr apart, the exit code, the container user and cwd; a timeout is reported', async () => {
    const pod = await runPod('cri-exec');
    const c = await runContainer(pod, 'app', ['sleep', '600'], { workingDir: '/tmp' });
    const r = await exec(c.id, ['sh', '-c', 'echo out; echo err >&2; echo "$(id -u) $(pwd)"; exit 3']);
    expect(r).toEqual({ out: 'out\n0 /tmp\n', err: 'err\n', code: 3 });
    const t0 = Date.now();
    await expect(exec(c.id, ['sleep', '31'], 1)).rejects.toThrow(/timeout/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // ... and the hung command is gone, not left running in the container.
    await until('the timed-out exec to be killed', async () => !(await exec(c.id, ['ps', '-o', 'args'])).out.includes('sleep 31'), 10_000);
  });

  test("Exec streaming (kubectl exec's path): the URL's WebSocket carries stdout, stderr and the exit code", async () => {
    const pod = await runPod('cri-stream');
    const c = await runContainer(pod, 'app', ['sleep', '600']);
    const { url } = await rt.Exec({
      container_id: c.id,
      cmd: ['sh', '-c', 'echo streamed; echo to-err >&2; exit 3'],
      stdout: true,
      stderr: true,
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const r = await execStream(url);
    expect([r.stdout, r.stderr]).toEqual(['streamed\n', 'to-err\n']);
    expect(r.status.status).toBe('Failure');
    expect(r.status.details?.causes).toContainEqual({ reason: 'ExitCode', message: '3' });
    // Control: a command that succeeds reports Success.
    const ok = await rt.Exec({ container_id: c.id, cmd: ['true'], stdout: true, stderr: true });
    expect((await execStream(ok.url)).status.status).toBe('Success');
  });

  test('container logs: the CRI log format (RFC 3339 time, stream, F/P tag), stdout and stderr kept apart', async () => {
    const pod = await runPod('cri-logs');
    const long = 'x'.repeat(20_000); // over containerd's 16 KiB line limit: split as P then F
    const c = await runContainer(pod, 'talker', ['sh', '-c', `echo first; echo oops >&2; printf '%s\\n' ${long}; echo last`]);
    const status = await waitContainer(rt, c.id, 'CONTAINER_EXITED');
    expect(status.exit_code).toBe(0);
    expect(status.reason).toBe('Completed');
    expect(status.log_path).toBe(path.join(pod.config.log_directory, 'talker/0.log'));
    const lines = await until('the log to be complete', async () => {
      const l = readCriLog(pod.config, c.config);
      return l.some((x) => x.msg === 'last') && l;
    });
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.msg)).toEqual(['oops']);
    const out = lines.filter((l) => l.stream === 'stdout');
    expect(out[0]).toMatchObject({ msg: 'first', tag: 'F' });
    const longParts = out.slice(1, -1);
    expect(longParts.map((l) => l.tag)).toEqual([...Array(longParts.length - 1).fill('P'), 'F']);
    expect(longParts.map((l) => l.msg).join('')).toBe(long);
    for (const l of lines) expect(Number.isNaN(Date.parse(l.time))).toBe(false);
  });

  test('ContainerStats and UpdateContainerResources: usage is read from the cgroup hako made, new limits land in it', async () => {
    const pod = await runPod('cri-res');
    const c = await runContainer(pod, 'busy', ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 600'], {
      resources: { memory_limit_in_bytes: 96 * 1024 * 1024, cpu_period: 100_000, cpu_quota: 50_000, cpu_shares: 256 },
    });
    const stats = await until('CPU use to show', async () => {
      const s = (await rt.ContainerStats({ container_id: c.id })).stats;
      return s.cpu.usage_core_nano_seconds.value > 0 && s;
    });
    expect(stats.attributes.id).toBe(c.id);
    expect(stats.memory.working_set_bytes.value).toBeGreaterThan(0);

    // The container's own memory cgroup (v1 on this host) holds the limits from CreateContainer.
    const pid = await initPid(c.id);
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /^\d+:[^:]*\bmemory\b[^:]*:/.test(l) || l.startsWith('0::'))!;
    const rel = line.split(':')[2];
    expect(rel).toBe(`${pod.config.linux.cgroup_parent}/${c.id}`);
    const memFile = fs.existsSync(path.join(V1_ROOT, 'memory', rel, 'memory.limit_in_bytes'))
      ? path.join(V1_ROOT, 'memory', rel, 'memory.limit_in_bytes')
      : path.join(V1_ROOT, rel, 'memory.max');
    expect(Number(fs.readFileSync(memFile, 'utf8'))).toBe(96 * 1024 * 1024);

    await rt.UpdateContainerResources({
      container_id: c.id,
      linux: { memory_limit_in_bytes: 128 * 1024 * 1024, cpu_period: 100_000, cpu_quota: 20_000, cpu_shares: 512 },
    });
    expect(Number(fs.readFileSync(memFile, 'utf8'))).toBe(128 * 1024 * 1024);
    const { status } = await rt.ContainerStatus({ container_id: c.id });
    expect(status.resources.linux).toMatchObject({ memory_limit_in_bytes: 128 * 1024 * 1024, cpu_quota: 20_000, cpu_shares: 512 });
  });

  test('StopContainer with a grace period: SIGTERM first (a handler exits 0), SIGKILL when the grace runs out (137)', async () => {
    const pod = await runPod('cri-stop');
    const polite = await runContainer(pod, 'polite', ['sh', '-c', 'trap "echo got TERM; exit 0" TERM; while :; do sleep 0.1; done']);
    const stubborn = await runContainer(pod, 'stubborn', ['sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done']);
    await waitContainer(rt, polite.id, 'CONTAINER_RUNNING');
    await waitContainer(rt, stubborn.id, 'CONTAINER_RUNNING');

    let t0 = Date.now();
    await rt.StopContainer({ container_id: polite.id, timeout: 30 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    let s = (await rt.ContainerStatus({ container_id: polite.id })).status;
    expect([s.state, s.exit_code, s.reason]).toEqual(['CONTAINER_EXITED', 0, 'Completed']);
    expect(readCriLog(pod.config, polite.config).map((l) => l.msg)).toContain('got TERM');

    t0 = Date.now();
    await rt.StopContainer({ container_id: stubborn.id, timeout: 2 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1_900);
    expect(took).toBeLessThan(15_000);
    s = (await rt.ContainerStatus({ container_id: stubborn.id })).status;
    expect([s.state, s.exit_code, s.reason]).toEqual(['CONTAINER_EXITED', 137, 'Error']);
    // RemoveContainer: hako's state for it is gone.
    await rt.RemoveContainer({ container_id: stubborn.id });
    expect(fs.existsSync(hakoState(stubborn.id))).toBe(false);
  });

  test('a container that exits non-zero: EXITED, its exit code, reason Error', async () => {
    const pod = await runPod('cri-fail');
    const c = await runContainer(pod, 'fails', ['sh', '-c', 'echo about to fail >&2; exit 7']);
    const s = await waitContainer(rt, c.id, 'CONTAINER_EXITED');
    expect([s.exit_code, s.reason]).toEqual([7, 'Error']);
    expect(s.finished_at).toBeGreaterThan(s.created_at);
  });

  test('a container over its memory limit is OOM-killed: reason OOMKilled, exit code 137', async () => {
    const pod = await runPod('cri-oom');
    // dd's one 256 MiB block is filled from /dev/zero: far over the 32 MiB limit (no swap to hide in).
    const c = await runContainer(pod, 'hog', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1'], {
      resources: { memory_limit_in_bytes: 32 * 1024 * 1024, memory_swap_limit_in_bytes: 32 * 1024 * 1024 },
    });
    const s = await waitContainer(rt, c.id, 'CONTAINER_EXITED');
    expect([s.exit_code, s.reason]).toEqual([137, 'OOMKilled']);
  });

  test('StartContainer of a program that does not exist: one sentence from hako, nothing left behind', async () => {
    const pod = await runPod('cri-bad');
    const config = containerConfig(pod.config, 'bad', BUSYBOX_IMAGE, ['/no/such/program']);
    const { container_id: id } = await rt.CreateContainer({ pod_sandbox_id: pod.id, config, sandbox_config: pod.config });
    const err = await rt.StartContainer({ container_id: id }).then(
      () => '',
      (e: Error) => e.message,
    );
    // hako's sentence (runc's wording, which the kubelet shows as the container's error), one line.
    expect(err).toMatch(/OCI runtime create failed: exec: "\/no\/such\/program": executable file not found in \$PATH: unknown$/);
    expect(err).not.toContain('\n');
    // Nothing of it in hako's state dir, no process, no cgroup.
    expect(fs.existsSync(path.dirname(hakoState(id)))).toBe(false);
    expect(pidsMentioning(id)).toEqual([]);
    expect(cgroupDirs(path.join(pod.config.linux.cgroup_parent, id))).toEqual([]);
    const s = (await rt.ContainerStatus({ container_id: id })).status;
    expect(s.state).not.toBe('CONTAINER_RUNNING');
  });

  test('RunPodSandbox with a sysctl the kernel does not have: one sentence from hako, and neither the pause container nor its IP is left', async () => {
    const hakoRoot = path.join(dir, 'hako-root/k8s.io');
    const before = fs.existsSync(hakoRoot) ? rootEntries(hakoRoot) : [];
    const ipam = path.join(dir, 'ipam', `${NETWORK.bridge}-net`);
    const ips = () => (fs.existsSync(ipam) ? fs.readdirSync(ipam).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : []);
    const ipsBefore = ips();
    const config = sandboxConfig('cri-badsysctl', podOptions());
    config.linux.sysctls = { 'net.ipv4.no_such_knob': '1' };
    const err = await rt.RunPodSandbox({ config, runtime_handler: 'hako' }).then(
      (r) => {
        pods.push(r.pod_sandbox_id);
        return '';
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/OCI runtime create failed: set sysctl net\.ipv4\.no_such_knob failed: ENOENT \(step \d+ of \d+\): unknown$/);
    expect(fs.existsSync(hakoRoot) ? rootEntries(hakoRoot) : []).toEqual(before);
    expect(ips()).toEqual(ipsBefore);
    expect((await rt.ListPodSandbox({})).items.filter((p: Msg) => p.metadata.name === 'cri-badsysctl')).toEqual([]);
    expect(cgroupDirs(config.linux.cgroup_parent).filter((d) => !d.endsWith(config.linux.cgroup_parent))).toEqual([]);
  });

  test('a pod of two containers: net, ipc, uts and pid namespaces shared through the sandbox (joined by path), mount namespaces apart', async () => {
    const pod = await runPod('cri-pair', { pid: 'POD' }); // shareProcessNamespace: true
    const a = await runContainer(pod, 'a', ['sh', '-c', 'exec sleep 601']);
    const b = await runContainer(pod, 'b', ['sh', '-c', 'exec sleep 602']);
    const sandboxPid = JSON.parse(fs.readFileSync(hakoState(pod.id), 'utf8')).pid;
    const ns = async (id: string) =>
      Object.fromEntries(
        (await exec(id, ['sh', '-c', 'for n in net ipc uts pid mnt; do echo "$n $(readlink /proc/self/ns/$n)"; done'])).out
          .trim()
          .split('\n')
          .map((l) => l.split(' ')),
      );
    const [na, nb] = [await ns(a.id), await ns(b.id)];
    for (const n of ['net', 'ipc', 'uts', 'pid']) {
      expect(na[n], n).toBe(nb[n]);
      expect(na[n], n).toBe(fs.readlinkSync(`/proc/${sandboxPid}/ns/${n}`));
    }
    expect(na.mnt).not.toBe(nb.mnt);
    // The spec containerd gave hako names the sandbox's namespaces by path.
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'state/io.containerd.runtime.v2.task/k8s.io', b.id, 'config.json'), 'utf8'));
    const byType = Object.fromEntries(spec.linux.namespaces.map((n: Msg) => [n.type, n.path]));
    expect(byType.ipc).toBe(`/proc/${sandboxPid}/ns/ipc`);
    expect(byType.pid).toBe(`/proc/${sandboxPid}/ns/pid`);
    expect(byType.network).toBe(`/proc/${sandboxPid}/ns/net`);
    // ... and the sandbox's own spec names the network namespace the CNI set up, a file under containerd's state.
    const sandboxSpec = JSON.parse(
      fs.readFileSync(path.join(dir, 'state/io.containerd.runtime.v2.task/k8s.io', pod.id, 'config.json'), 'utf8'),
    );
    const sandboxNet = sandboxSpec.linux.namespaces.find((n: Msg) => n.type === 'network').path;
    expect(sandboxNet.startsWith(`${dir}/state/`)).toBe(true);
    expect(fs.statSync(sandboxNet).ino).toBe(fs.statSync(`/proc/${sandboxPid}/ns/net`).ino);
    // One pid namespace: b sees a's process and the pause process as pid 1.
    const ps = await exec(b.id, ['ps', '-o', 'pid,args']);
    expect(ps.out).toContain('sleep 601');
    expect(ps.out).toMatch(/^\s*1\s+\/pause$/m);
    // Control: a third container asking for its own pid namespace (the kubelet's default) gets one, on the same network.
    const own = await runContainer(pod, 'own', ['sh', '-c', 'exec sleep 603'], {
      securityContext: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    });
    const no = await ns(own.id);
    expect(no.net).toBe(na.net);
    expect(no.pid).not.toBe(na.pid);
    expect((await exec(own.id, ['ps', '-o', 'pid,args'])).out).not.toContain('sleep 601');
  });

  test('host network: the pod sees the host interfaces (the host netns, no CNI address)', async () => {
    const pod = await runPod('cri-hostnet', { hostNetwork: true });
    const { status } = await rt.PodSandboxStatus({ pod_sandbox_id: pod.id });
    expect(status.network.ip).toBe('');
    const c = await runContainer(pod, 'h', ['sleep', '600']);
    const r = await exec(c.id, ['readlink', '/proc/self/ns/net']);
    expect(r.out.trim()).toBe(fs.readlinkSync('/proc/self/ns/net'));
    // Control: a pod on the bridge has another one.
    const other = await runPod('cri-bridged');
    const oc = await runContainer(other, 'o', ['sleep', '600']);
    expect((await exec(oc.id, ['readlink', '/proc/self/ns/net'])).out.trim()).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
  });

  test('securityContext runAsUser/runAsGroup and readOnlyRootFilesystem: the process runs as 1000:1000 on a read-only root (control: writable)', async () => {
    const pod = await runPod('cri-user');
    const ro = await runContainer(pod, 'ro', ['sleep', '600'], {
      securityContext: { run_as_user: { value: 1000 }, run_as_group: { value: 1000 }, readonly_rootfs: true },
    });
    const rw = await runContainer(pod, 'rw', ['sleep', '600']);
    const pid = await initPid(ro.id);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect((await exec(ro.id, ['id', '-u'])).out).toBe('1000\n');
    const w = await exec(ro.id, ['sh', '-c', 'echo x > /probe']);
    expect(w.code).not.toBe(0);
    expect(w.err).toMatch(/Read-only file system/);
    expect(await exec(rw.id, ['sh', '-c', 'echo x > /probe && cat /probe'])).toMatchObject({ code: 0, out: 'x\n' });
  });

  test('securityContext capabilities: drop ALL + add NET_BIND_SERVICE leaves exactly that one; a dropped CHOWN is refused (control: the default set has it)', async () => {
    const pod = await runPod('cri-caps');
    const slim = await runContainer(pod, 'slim', ['sleep', '600'], {
      securityContext: { capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['NET_BIND_SERVICE'] } },
    });
    const plain = await runContainer(pod, 'plain', ['sleep', '600']);
    const status = fs.readFileSync(`/proc/${await initPid(slim.id)}/status`, 'utf8');
    expect(status).toMatch(/^CapEff:\s+0000000000000400$/m);
    expect(status).toMatch(/^CapBnd:\s+0000000000000400$/m);
    const attack = 'touch /tmp/f && chown 1:1 /tmp/f && echo chowned';
    const denied = await exec(slim.id, ['sh', '-c', attack]);
    expect(denied.out).not.toContain('chowned');
    expect(denied.err).toMatch(/Operation not permitted/);
    expect((await exec(plain.id, ['sh', '-c', attack])).out).toBe('chowned\n');
  });

  test('seccomp RuntimeDefault and Localhost: each refuses its system call (control: Unconfined allows both)', async () => {
    const profile = path.join(dir, 'no-mkdir.json');
    fs.writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      }),
    );
    const pod = await runPod('cri-seccomp');
    const dflt = await runContainer(pod, 'dflt', ['sleep', '600'], { securityContext: { seccomp: { profile_type: 'RuntimeDefault' } } });
    const local = await runContainer(pod, 'local', ['sleep', '600'], {
      securityContext: { seccomp: { profile_type: 'Localhost', localhost_ref: profile } },
    });
    const open = await runContainer(pod, 'open', ['sleep', '600'], { securityContext: { seccomp: { profile_type: 'Unconfined' } } });
    for (const c of [dflt, local]) expect(fs.readFileSync(`/proc/${await initPid(c.id)}/status`, 'utf8')).toMatch(/^Seccomp:\s+2$/m);
    // RuntimeDefault refuses unshare without CAP_SYS_ADMIN (a new user namespace here).
    const unshare = ['unshare', '-U', 'true'];
    const u = await exec(dflt.id, unshare);
    expect(u.code).not.toBe(0);
    expect(u.err).toMatch(/Operation not permitted/);
    expect(await exec(open.id, unshare)).toMatchObject({ code: 0 });
    // The Localhost profile refuses mkdir, with the errno it names (EPERM).
    const mk = ['mkdir', '/tmp/d'];
    const m = await exec(local.id, mk);
    expect(m.code).not.toBe(0);
    expect(m.err).toMatch(/Operation not permitted/);
    expect(await exec(open.id, mk)).toMatchObject({ code: 0 });
    expect(await exec(dflt.id, mk)).toMatchObject({ code: 0 });
  });

  test('user namespaces: containerd 1.6 passes none to the runtime (its CRI has no userns support), so the pod runs in the host user namespace', async () => {
    const pod = await runPod('cri-userns');
    const c = await runContainer(pod, 'u', ['sleep', '600']);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'state/io.containerd.runtime.v2.task/k8s.io', c.id, 'config.json'), 'utf8'));
    expect(spec.linux.namespaces.map((n: Msg) => n.type)).not.toContain('user');
    expect((await exec(c.id, ['cat', '/proc/self/uid_map'])).out.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
  });

  test('StopPodSandbox and RemovePodSandbox: the pause process ends, the IP is released, hako keeps no state, the cgroups go', async () => {
    const pod = await runPod('cri-gone');
    const c = await runContainer(pod, 'c', ['sleep', '600']);
    const { status } = await rt.PodSandboxStatus({ pod_sandbox_id: pod.id });
    const pausePid = JSON.parse(fs.readFileSync(hakoState(pod.id), 'utf8')).pid;
    const appPid = await initPid(c.id);
    const ipamFile = path.join(dir, 'ipam', `${NETWORK.bridge}-net`, status.network.ip);
    expect(fs.existsSync(ipamFile)).toBe(true);

    await rt.StopPodSandbox({ pod_sandbox_id: pod.id });
    expect((await rt.PodSandboxStatus({ pod_sandbox_id: pod.id })).status.state).toBe('SANDBOX_NOTREADY');
    expect((await rt.ContainerStatus({ container_id: c.id })).status.state).toBe('CONTAINER_EXITED');
    for (const p of [pausePid, appPid]) expect(fs.existsSync(`/proc/${p}`)).toBe(false);
    expect(fs.existsSync(ipamFile)).toBe(false);
    // Stopping again is fine (the kubelet may).
    await rt.StopPodSandbox({ pod_sandbox_id: pod.id });

    await rt.RemovePodSandbox({ pod_sandbox_id: pod.id });
    pods.splice(pods.indexOf(pod.id), 1);
    await expect(rt.PodSandboxStatus({ pod_sandbox_id: pod.id })).rejects.toThrow(/not found|does not exist/);
    for (const id of [pod.id, c.id]) expect(fs.existsSync(path.dirname(hakoState(id)))).toBe(false);
    expect(cgroupDirs(pod.config.linux.cgroup_parent).filter((d) => d.includes(c.id) || d.includes(pod.id))).toEqual([]);
    await rt.RemovePodSandbox({ pod_sandbox_id: pod.id });
  });

  describe('the FHIR server as a pod', () => {
    beforeAll(() => {
      const r = ctd.ctr(['images', 'import', fhirArchive(dir)], { timeout: 300_000 });
      expect(r.status, r.stderr).toBe(0);
    }, 600_000);

    test("the bundle image runs under the restricted Pod Security Standard, with the kubelet's mounts, and answers on the pod IP", async () => {
      // What the kubelet hands a pod: a volume for the data, its own /etc/hosts, the termination log, a read-only token dir.
      const data = path.join(dir, 'fhir-data');
      fs.mkdirSync(data, { mode: 0o700 });
      fs.chownSync(data, 65534, 65534);
      const hosts = path.join(dir, 'fhir-etc-hosts');
      fs.writeFileSync(hosts, '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n');
      const termination = path.join(dir, 'fhir-termination-log');
      fs.writeFileSync(termination, '');
      const token = path.join(dir, 'fhir-token');
      fs.mkdirSync(token);
      fs.writeFileSync(path.join(token, 'namespace'), 'default');
      // The store's data key as a Secret volume would give it (defaultMode 0400, the pod's user).
      const secrets = path.join(dir, 'fhir-secrets');
      fs.mkdirSync(secrets, { mode: 0o700 });
      fs.writeFileSync(path.join(secrets, 'fhir-store.key'), `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o400 });
      fs.chownSync(path.join(secrets, 'fhir-store.key'), 65534, 65534);
      fs.chownSync(secrets, 65534, 65534);
      const pod = await runPod('cri-fhir');
      const { status } = await rt.PodSandboxStatus({ pod_sandbox_id: pod.id });
      const bundleEnv = JSON.parse(fs.readFileSync(path.join(REPO, 'bundles/fhir/config.json'), 'utf8')).process.env;
      const envs = Object.fromEntries((bundleEnv as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
      // restricted: non-root, no privilege escalation, every capability dropped, seccomp RuntimeDefault; and a read-only root.
      const c = await runContainer(pod, 'fhir', [], {
        image: FHIR_IMAGE,
        envs: { ...envs, HAKO_FHIR_LISTEN: '0.0.0.0:8080', HAKO_FHIR_AUTH: 'off' },
        mounts: [
          { container_path: '/data', host_path: data },
          { container_path: '/etc/hosts', host_path: hosts },
          { container_path: '/dev/termination-log', host_path: termination },
          { container_path: '/var/run/secrets/kubernetes.io/serviceaccount', host_path: token, readonly: true },
          { container_path: '/run/secrets', host_path: secrets, readonly: true },
        ],
        securityContext: {
          run_as_user: { value: 65534 },
          run_as_group: { value: 65534 },
          no_new_privs: true,
          readonly_rootfs: true,
          capabilities: { drop_capabilities: ['ALL'] },
          seccomp: { profile_type: 'RuntimeDefault' },
        },
      });
      const res = await until('the FHIR server to answer', () => get(`http://${status.network.ip}:8080/metadata`), 90_000);
      expect(res.status).toBe(200);
      const cs = JSON.parse(res.body);
      expect(cs.resourceType).toBe('CapabilityStatement');
      expect(cs.fhirVersion).toMatch(/^4\.0/);
      // A write is served back, and lands in the volume the kubelet would have mounted.
      const created = await request('POST', `http://${status.network.ip}:8080/Patient`, {
        resourceType: 'Patient',
        name: [{ family: 'Pod', given: ['Cri'] }],
      });
      expect(created.status).toBe(201);
      const read = await get(created.location!);
      expect(read.status).toBe(200);
      expect(JSON.parse(read.body).name[0].family).toBe('Pod');
      expect(readCriLog(pod.config, c.config).length).toBeGreaterThan(0);
      // Seen from the host: the process as the kubelet asked, the mounts where it put them.
      const pid = await initPid(c.id);
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(st).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      expect(st).toMatch(/^CapEff:\s+0{16}$/m);
      expect(st).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(st).toMatch(/^Seccomp:\s+2$/m);
      expect(fs.readFileSync(`/proc/${pid}/root/etc/hosts`, 'utf8')).toBe(fs.readFileSync(hosts, 'utf8'));
      expect(fs.readFileSync(`/proc/${pid}/root/var/run/secrets/kubernetes.io/serviceaccount/namespace`, 'utf8')).toBe('default');
      expect(fs.existsSync(`/proc/${pid}/root/dev/termination-log`)).toBe(true);
      await rt.StopContainer({ container_id: c.id, timeout: 20 });
      const s = (await rt.ContainerStatus({ container_id: c.id })).status;
      expect([s.state, s.exit_code]).toEqual(['CONTAINER_EXITED', 0]);
      expect(fs.readdirSync(data).length).toBeGreaterThan(0);
    });
  });
});
