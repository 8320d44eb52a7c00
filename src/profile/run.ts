// The runs learning and trial make of a bundle, each under hako's seccomp agent: start, wait
// until the server answers (the phase turns to serving), drive it, stop it with SIGTERM (its
// shutdown is serving-phase work); then once more, so start-up with a journal to replay and a
// second shutdown are seen too.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { create, deleteContainer, listenerFds, startCreated, type RuntimeContext } from '../runtime/index.js';
import { native } from '../sys/native.js';
import { waitServing } from '../up/ready.js';
import { formatAddress } from '../up/listen.js';
import type { Prepared } from '../up/prepare.js';
import type { SeccompAgent } from './agent.js';

export interface RunsOptions {
  ctx: RuntimeContext;
  prepared: Prepared;
  /** The config to run: the bundle's, its filter pointed at the agent. */
  config: Config;
  agent: SeccompAgent;
  /** Run between ready and stop in the first run (argument and HAKO_URL: the URL; HAKO_BUNDLE:
   *  the bundle, whose data it may damage to drive recovery paths); none: stop once it answers. */
  driver?: string;
  say: (sentence: string) => void;
  /** How long the server has to answer, and to stop after SIGTERM. */
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
}

/** node for a .js/.mjs/.cjs script, the file itself otherwise. */
function driverCommand(driver: string, url: string): [string, string[]] {
  return /\.[cm]?js$/.test(driver) ? [process.execPath, [driver, url]] : [driver, [url]];
}

function runDriver(driver: string, url: string, bundle: string, say: (s: string) => void): Promise<void> {
  const [cmd, args] = driverCommand(path.resolve(driver), url);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HAKO_URL: url, HAKO_BUNDLE: bundle } });
    let last = '';
    let pending = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const l of lines.filter(Boolean)) say(`driver: ${(last = l)}`);
    });
    child.on('error', (e) => reject(new HakoError(`the driver ${driver} could not run: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (pending) say(`driver: ${(last = pending)}`);
      if (code === 0) resolve();
      else
        reject(
          new HakoError(
            `the driver ${driver} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${last ? `: ${last}` : ''}`,
          ),
        );
    });
  });
}

/** One run: start, ready, drive, SIGTERM, exit; the container is deleted whatever happens. */
async function oneRun(o: RunsOptions, run: number): Promise<void> {
  const { ctx, prepared: p } = o;
  o.agent.setServing(false);
  const launched = startCreated(
    ctx,
    create(ctx, { id: p.id, bundle: p.bundle, config: o.config, extraFds: listenerFds(p.listenerFd), dieWithRuntime: true }),
  );
  let ended = false;
  const exited = native.waitPid(launched.pid).finally(() => (ended = true));
  const kill = (sig: NodeJS.Signals) => native.pidfdSignal(launched.pidfd, os.constants.signals[sig]);
  let killTimer: NodeJS.Timeout | undefined;
  try {
    const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
    const ready = await waitServing(p.address, () => !ended && Date.now() < deadline);
    if (!ready) {
      if (ended) {
        const st = await exited;
        throw new HakoError(
          `the workload ${st.signal !== undefined ? `was killed by signal ${st.signal}` : `exited with status ${st.code}`} before it answered on ${formatAddress(p.address)} (run ${run}): nothing to learn`,
        );
      }
      throw new HakoError(
        `the workload did not answer on ${formatAddress(p.address)} within ${(o.readyTimeoutMs ?? 60_000) / 1000} s (run ${run})`,
      );
    }
    o.agent.setServing(true);
    o.say(`run ${run}: serving at http://${formatAddress(p.address)}/`);
    if (o.driver && run === 1) await runDriver(o.driver, `http://${formatAddress(p.address)}/`, p.bundle, o.say);
    kill('SIGTERM');
    killTimer = setTimeout(() => kill('SIGKILL'), o.stopTimeoutMs ?? 10_000);
    await exited;
  } finally {
    if (!ended) {
      kill('SIGKILL');
      await exited;
    }
    clearTimeout(killTimer);
    fs.closeSync(launched.pidfd);
    deleteContainer(ctx, p.id, true);
  }
}

/** Two runs (see the top); resolves once the agent has let go of both. */
export async function learningRuns(o: RunsOptions): Promise<void> {
  for (const run of [1, 2]) {
    const detached = o.agent.detachedAfter();
    await oneRun(o, run);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HakoError(`hako's seccomp agent still held run ${run}'s filter 10 s after the container ended`)),
        10_000,
      );
    });
    await Promise.race([detached, late]).finally(() => clearTimeout(timer));
  }
}
