// seccomp user notification (runtime-spec 1.1): the listener fd goes to the
// agent at linux.seccomp.listenerPath with the container state, as
// {ociVersion, fds: ["seccompFd"], pid, metadata, state}.
import type { Config } from '../spec/config.js';
import type { OciState } from '../spec/state.js';
import { HakoError } from '../errors.js';
import { native } from './native.js';
import fs from 'node:fs';

export function sendSeccompListener(cfg: Config, fd: number, state: OciState): void {
  const sc = cfg.linux?.seccomp as { listenerPath?: string; listenerMetadata?: string } | undefined;
  try {
    if (!sc?.listenerPath) throw new HakoError('config.json: linux.seccomp.listenerPath: needed for SCMP_ACT_NOTIFY rules');
    const msg = { ociVersion: cfg.ociVersion, fds: ['seccompFd'], pid: state.pid, metadata: sc.listenerMetadata ?? '', state };
    try {
      native.sendFdTo(sc.listenerPath, fd, JSON.stringify(msg));
    } catch (e) {
      throw new HakoError(`sending the seccomp listener fd to ${sc.listenerPath} failed: ${(e as Error).message}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
