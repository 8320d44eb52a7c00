// A private containerd with its CRI plugin on, configured the way a Kubernetes node would be
// for hako: a runtime entry `hako` (the runc shim with BinaryName = bin/hako) beside `runc`,
// the locally made pause image as the sandbox image, and a CNI bridge network of its own.
// Everything lives under one scratch dir (root, state, sockets, network namespaces, CNI
// config and IPAM state); stop() leaves nothing behind: sandboxes removed through the CRI,
// daemon and shims killed by pid, the bridge deleted, ip_forward as it was.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { hostDirsGuard, pidsMentioning, waitFor } from '../clients/daemons.js';
import { criClient, type CriClient } from './client.js';
import { PAUSE_IMAGE } from './images.js';

export const CNI_BIN_DIR = '/usr/lib/cni';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

export interface CriNetwork {
  /** The host bridge the CNI bridge plugin creates (deleted by stop()). */
  bridge: string;
  /** The pods' subnet, e.g. 10.219.19.0/24. */
  subnet: string;
}

export interface CriContainerd {
  dir: string;
  sock: string;
  cri: CriClient;
  proc: ChildProcess;
  /** ctr in the CRI's namespace (k8s.io). */
  ctr(args: string[], opts?: { timeout?: number }): SpawnSyncReturns<string>;
  stop(): Promise<void>;
}

export interface CriOptions {
  dir: string;
  /** The runtime entries: name → runc-compatible binary (e.g. { hako: bin/hako, runc: /usr/sbin/runc }). */
  runtimes: Record<string, string>;
  network: CriNetwork;
}

function toml(opts: CriOptions, sock: string): string {
  const { dir, runtimes } = opts;
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    // The CRI stays on (the ctr and Docker suites' daemons disable it); snapshotters that cannot work here go.
    'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]',
    `  address = "${sock}"`,
    '[ttrpc]',
    `  address = "${sock}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    `[${cri}]`,
    `  sandbox_image = "${PAUSE_IMAGE}"`,
    // Network namespaces under our state dir, not the host's /var/run/netns.
    '  netns_mounts_under_state_dir = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    '  disable_apparmor = true',
    // The sandbox asks for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which this
    // host's bounding set lacks (runc fails the same way). As rootless Kubernetes does: never
    // below containerd's own.
    '  restrict_oom_score_adj = true',
    `[${cri}.cni]`,
    `  bin_dir = "${CNI_BIN_DIR}"`,
    `  conf_dir = "${dir}/cni"`,
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    // A pod without a handler gets the first entry (the CRI refuses to start without a default).
    `  default_runtime_name = "${Object.keys(runtimes)[0]}"`,
  ];
  for (const [name, binary] of Object.entries(runtimes)) {
    lines.push(
      `[${cri}.containerd.runtimes.${name}]`,
      '  runtime_type = "io.containerd.runc.v2"',
      `[${cri}.containerd.runtimes.${name}.options]`,
      `  BinaryName = "${binary}"`,
      `  Root = "${dir}/${name}-root"`,
      '  SystemdCgroup = false',
    );
  }
  return lines.join('\n') + '\n';
}

/** The CNI network list: a bridge with a gateway on the host side (so the host reaches pod IPs), no masquerade, no default route. */
function cniConf(dir: string, network: CriNetwork): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: `${network.bridge}-net`,
      plugins: [
        {
          type: 'bridge',
          bridge: network.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: network.subnet }]], dataDir: path.join(dir, 'ipam') },
        },
      ],
    },
    null,
    2,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number | undefined, graceMs: number): Promise<void> {
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export async function startCriContainerd(opts: CriOptions): Promise<CriContainerd> {
  const { dir, network } = opts;
  const sock = path.join(dir, 'ctd.sock');
  fs.mkdirSync(path.join(dir, 'cni'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cni', '10-hako-cri.conflist'), cniConf(dir, network));
  const cfg = path.join(dir, 'containerd.toml');
  fs.writeFileSync(cfg, toml(opts, sock));
  const forwardBefore = fs.readFileSync(IP_FORWARD, 'utf8');
  // A bridge of this name left by a run that was killed would carry its old addresses: start clean.
  spawnSync('ip', ['link', 'del', network.bridge], { stdio: 'ignore' });
  const cleanHost = hostDirsGuard(['/run/containerd', '/var/lib/cni']);
  const out = fs.openSync(path.join(dir, 'containerd.log'), 'a');
  const proc = spawn('containerd', ['--config', cfg], { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  proc.unref();
  const ctr = (args: string[], o: { timeout?: number } = {}) =>
    spawnSync('ctr', ['--address', sock, '--namespace', 'k8s.io', ...args], { encoding: 'utf8', timeout: o.timeout ?? 120_000 });
  const cri = criClient(sock);
  const d: CriContainerd = {
    dir,
    sock,
    cri,
    proc,
    ctr,
    async stop() {
      // The kubelet's way out first: every sandbox stopped and removed (containers with it).
      try {
        const { items } = await cri.runtime.ListPodSandbox({}, 10_000);
        for (const s of items) {
          await cri.runtime.StopPodSandbox({ pod_sandbox_id: s.id }, 60_000).catch(() => undefined);
          await cri.runtime.RemovePodSandbox({ pod_sandbox_id: s.id }, 60_000).catch(() => undefined);
        }
      } catch {
        // the daemon is gone already
      }
      cri.close();
      await stopPid(proc.pid, 10_000);
      for (const p of pidsMentioning(sock)) await stopPid(p, 2_000);
      spawnSync('ip', ['link', 'del', network.bridge], { stdio: 'ignore' });
      fs.writeFileSync(IP_FORWARD, forwardBefore);
      cleanHost();
    },
  };
  try {
    await waitFor('containerd to answer', () => fs.existsSync(sock), 30_000, 100);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await cri.runtime.Version({ version: 'v1' }, 5_000);
        break;
      } catch (e) {
        if (Date.now() > deadline) {
          const log = fs
            .readFileSync(path.join(dir, 'containerd.log'), 'utf8')
            .split('\n')
            .filter((l) => /level=(error|fatal)/.test(l));
          throw new Error(`containerd's CRI does not answer: ${(e as Error).message}\n${log.slice(-5).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}
