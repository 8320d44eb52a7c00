// Socket activation (systemd's protocol, which the FHIR server speaks): the listening
// socket at fd 3, LISTEN_FDS=1, and LISTEN_PID naming the server. The server is the
// container's init, so in a new pid namespace its pid is 1.
import type { Config } from '../spec/config.js';
import { HakoError } from '../errors.js';

export const ACTIVATION_FD = 3;

/** The config `up` runs: the bundle's own, with the activation environment. */
export function withSocketActivation(cfg: Config): Config {
  const namespaces = cfg.linux?.namespaces ?? [];
  const fresh = (type: string) => namespaces.some((n) => n.type === type && !n.path);
  if (!fresh('pid'))
    throw new HakoError('config.json: linux.namespaces: hako up needs a new pid namespace (the server must be pid 1 for LISTEN_PID)');
  // Root or not, up runs the container in a user namespace: its root is never the host's.
  if (!fresh('user')) throw new HakoError('config.json: linux.namespaces: hako up needs a new user namespace; add {"type": "user"}');
  const env = (cfg.process!.env ?? []).filter((e) => !/^LISTEN_(FDS|PID|FDNAMES)=/.test(e));
  return { ...cfg, process: { ...cfg.process!, env: [...env, 'LISTEN_FDS=1', 'LISTEN_PID=1'] } };
}

/** Where the runtime places the socket: our fd at the container's fd 3. */
export function activationFds(listenerFd: number): Array<{ from: number; to: number }> {
  return [{ from: listenerFd, to: ACTIVATION_FD }];
}
