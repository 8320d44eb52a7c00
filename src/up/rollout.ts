// A rollout: replace the container `hako up` runs by one of a new (or rebuilt) bundle on the
// same listening socket, so that no client is refused. The order (docs/rollout.md):
//   1. prepare the new bundle (signature, build): a failure stops nothing;
//   2. start the new container with HAKO_HANDOVER_WAIT_MS: the server waits for the data's
//      lock and asks its holder to hand over once it is loaded (bundles/fhir/server/lock.ts);
//      a server that never asks gets up's SIGTERM to the old one after half the timeout;
//   3. the old one stops accepting, finishes in-flight requests, releases the lock, exits;
//      meanwhile connections wait in the socket's backlog;
//   4. the new one takes the lock, loads, accepts; up waits for its first answer.
// Rollback: a new container that exits before the handover leaves the old one serving,
// untouched; one that exits or stays silent after it is stopped, and the old bundle is started
// again (the clients wait in the backlog meanwhile). Either way rollout reports an error.
import type { Config } from '../oci/config.js';
import type { ExitStatus } from '../sys/native.js';
import { waitServing } from './ready.js';
import type { ListenAddress } from './listen.js';
import type { Run, RunSpec } from './supervisor.js';

export interface RolloutRequest {
  /** The bundle to roll out (absolute); the running one, rebuilt, when absent. */
  bundle?: string;
  timeoutMs?: number;
}

export type RolloutResult =
  | {
      ok: true;
      sentence: string;
      old: string;
      new: string;
      bundle: string;
      /** From the old container's exit to the new one's first answer. */
      handoverMs: number;
      /** From the new container's start to the old one's exit (the old one drained meanwhile). */
      drainMs: number;
      address: ListenAddress;
    }
  | { ok: false; error: string };

export interface NextBundle {
  bundle: string;
  config: Config;
}

/** What the supervisor offers a rollout. */
export interface RolloutHost {
  readonly isStopping: boolean;
  readonly address: ListenAddress;
  readonly upId: string;
  readonly serving: Run | undefined;
  readonly activeSpec: RunSpec;
  say(sentence: string): void;
  nextId(): string;
  prepare(bundle: string): Promise<NextBundle>;
  launch(spec: RunSpec, env?: string[]): Run;
  terminate(run: Run): void;
  kill(run: Run): void;
  reap(run: Run): Promise<ExitStatus>;
  adopt(run: Run): void;
  markServing(run: Run): void;
}

export const DEFAULT_ROLLOUT_TIMEOUT_MS = 60_000;

function ended(st: ExitStatus): string {
  return st.signal !== undefined ? `was killed by signal ${st.signal}` : `exited with status ${st.code ?? 0}`;
}

const sleep = (ms: number) => new Promise<'late'>((r) => setTimeout(() => r('late'), ms).unref());

export async function rollOut(h: RolloutHost, req: RolloutRequest): Promise<RolloutResult> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_ROLLOUT_TIMEOUT_MS;
  const fail = (error: string): RolloutResult => {
    h.say(`rollout failed: ${error}`);
    return { ok: false, error };
  };
  const old = h.serving;
  if (h.isStopping) return fail(`hako up of ${h.upId} is stopping`);
  if (!old) return fail(`the container of ${h.upId} is not serving (it is starting or restarting): try again once it serves`);
  const bundleArg = req.bundle ?? h.activeSpec.bundle;

  // 1. Prepare: nothing stops if this fails.
  h.say(`rollout: preparing bundle ${bundleArg}`);
  let next: NextBundle;
  try {
    next = await h.prepare(bundleArg);
  } catch (e) {
    return fail(`${(e as Error).message}; nothing was stopped, container ${old.spec.id} still serves`);
  }
  if (h.isStopping || h.serving !== old)
    return fail(`container ${old.spec.id} stopped while the new bundle was prepared; nothing was started`);

  // 2. Start the new container on the same socket; it waits for the lock.
  const spec: RunSpec = { id: h.nextId(), bundle: next.bundle, config: next.config };
  const t0 = Date.now();
  let fresh: Run;
  try {
    fresh = h.launch(spec, [`HAKO_HANDOVER_WAIT_MS=${timeoutMs}`]);
  } catch (e) {
    return fail(`starting container ${spec.id} failed: ${(e as Error).message}; container ${old.spec.id} still serves`);
  }
  h.say(`rollout: started container ${spec.id} from ${spec.bundle}; it takes over from ${old.spec.id} once loaded`);

  // 3. The old one stops when the new one asks (or up asks it after half the timeout).
  const first = await Promise.race([
    old.exited.then(() => 'old' as const),
    fresh.exited.then(() => 'fresh' as const),
    sleep(timeoutMs / 2),
  ]);
  // The new one may have taken the lock the old one gave up and crashed at once: both ended
  // nearly together, and the old one's end may not be seen yet. Only an old one still running
  // after a moment means the new one never took over.
  const oldAlsoEnded = first === 'fresh' && !old.ended && (await Promise.race([old.exited.then(() => true), sleep(500).then(() => false)]));
  if (first === 'fresh' && !old.ended && !oldAlsoEnded) {
    const st = await h.reap(fresh);
    return fail(
      `the new container ${spec.id} ${ended(st)} before taking over: rolled back, container ${old.spec.id} still serves (it was never stopped)`,
    );
  }
  if (first === 'late' && !old.ended) {
    h.say(`rollout: container ${spec.id} did not ask for the handover within ${timeoutMs / 2000} s: stopping ${old.spec.id}`);
    h.terminate(old);
  }
  const killOld = setTimeout(() => h.kill(old), timeoutMs / 2);
  await h.reap(old);
  clearTimeout(killOld);
  const oldGone = Date.now();
  h.say(`rollout: container ${old.spec.id} stopped (${oldGone - t0} ms after ${spec.id} started); ${spec.id} takes the data over`);

  // 4. The new one serves, or the old bundle is started again.
  const deadline = t0 + timeoutMs;
  const ok = await waitServing(h.address, () => !fresh.ended && !h.isStopping && Date.now() < deadline, 10);
  if (ok) {
    h.markServing(fresh);
    h.adopt(fresh);
    const handoverMs = Date.now() - oldGone;
    const sentence = `container ${spec.id} serves in place of ${old.spec.id} (handover ${handoverMs} ms after the old one stopped)`;
    h.say(`rollout: ${sentence}`);
    return {
      ok: true,
      sentence,
      old: old.spec.id,
      new: spec.id,
      bundle: spec.bundle,
      handoverMs,
      drainMs: oldGone - t0,
      address: h.address,
    };
  }
  const why = fresh.ended ? ended(await fresh.exited) : `did not answer within ${timeoutMs / 1000} s`;
  h.terminate(fresh);
  const killFresh = setTimeout(() => h.kill(fresh), 3_000);
  await h.reap(fresh);
  clearTimeout(killFresh);
  if (h.isStopping) return fail(`hako up of ${h.upId} is stopping (container ${spec.id} ${why})`);
  h.say(`rollout: container ${spec.id} ${why} after ${old.spec.id} stopped: starting ${old.spec.id} again`);
  let back: Run;
  try {
    back = h.launch(old.spec);
  } catch (e) {
    return fail(`the new container ${spec.id} ${why}, and restarting ${old.spec.id} failed: ${(e as Error).message}`);
  }
  h.adopt(back);
  if (await waitServing(h.address, () => !back.ended && !h.isStopping)) h.markServing(back);
  return fail(
    `the new container ${spec.id} ${why}: rolled back, container ${old.spec.id} (${old.spec.bundle}) was started again and serves`,
  );
}
