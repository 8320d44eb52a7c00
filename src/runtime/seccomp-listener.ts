// seccomp user notification (runtime-spec 1.1): the listener fd goes to the
// agent at linux.seccomp.listenerPath in SCM_RIGHTS with a container process
// state, {ociVersion, fds: ["seccompFd"], pid, metadata, state}: pid is the
// process the filter was loaded for (the init, or the exec'd process), state
// the container's state. One message per connection, then the connection closes.
import type { Config } from '../oci/config.js';
import { OCI_VERSION, type OciState } from '../oci/state.js';
import { HakoError } from '../errors.js';
import { native } from '../sys/native.js';
import fs from 'node:fs';

export function sendSeccompListener(cfg: Config, fd: number, pid: number, state: OciState): void {
  const sc = cfg.linux?.seccomp as { listenerPath?: string; listenerMetadata?: string } | undefined;
  try {
    if (!sc?.listenerPath) throw new HakoError('config.json: linux.seccomp.listenerPath: needed for SCMP_ACT_NOTIFY rules');
    const msg = {
      ociVersion: OCI_VERSION,
      fds: ['seccompFd'],
      pid,
      ...(sc.listenerMetadata ? { metadata: sc.listenerMetadata } : {}),
      state,
    };
    try {
      native.sendFdTo(sc.listenerPath, fd, JSON.stringify(msg));
    } catch (e) {
      throw new HakoError(`sending the seccomp listener fd to ${sc.listenerPath} failed: ${(e as Error).message}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
