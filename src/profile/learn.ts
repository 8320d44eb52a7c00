// `hako profile learn` and `hako profile trial`: the bundle runs (run.ts) under a recording
// filter — every call but sendmsg handed to hako's agent, which lets it run — rootless as well
// as root (seccomp user notification needs no privilege, unlike eBPF tracers). Learning turns
// what was recorded into a two-phase profile; trial reports what a profile would have refused.
import fs from 'node:fs';
import type { OciSeccomp, SeccompArch } from '../seccomp/types.js';
import { compileSeccomp } from '../seccomp/index.js';
import { HakoError } from '../errors.js';
import type { RuntimeContext } from '../runtime/index.js';
import { prepareBundle, type PrepareOptions } from '../up/prepare.js';
import { SeccompAgent, withAgent } from './agent.js';
import type { Refusal } from './agent-worker.js';
import { buildProfile, type BuiltProfile } from './build.js';
import { hostArch } from './names.js';
import { mergeRecordings, type Recording } from './recording.js';
import { learningRuns } from './run.js';

/** Every call goes to the agent, except sendmsg: hako-init hands the listener over with it,
 *  under the filter, before anyone can answer a notification. */
export function recordingFilter(architecture: SeccompArch): OciSeccomp {
  return { defaultAction: 'SCMP_ACT_NOTIFY', architectures: [architecture], syscalls: [{ names: ['sendmsg'], action: 'SCMP_ACT_ALLOW' }] };
}

export interface LearnOptions extends PrepareOptions {
  bundle: string;
  driver?: string;
  say: (sentence: string) => void;
}

async function underAgent<T>(
  ctx: RuntimeContext,
  o: LearnOptions,
  agentOf: (arch: SeccompArch) => Promise<SeccompAgent>,
  after: (agent: SeccompAgent) => T,
): Promise<T> {
  if (o.driver && !fs.existsSync(o.driver)) throw new HakoError(`--driver: ${o.driver}: no such file`);
  const architecture = hostArch();
  const prepared = await prepareBundle(ctx, o.bundle, o, o.say);
  let agent: SeccompAgent | undefined;
  try {
    agent = await agentOf(architecture);
    const config = withAgent(prepared.config, agent, recordingFilter(architecture));
    await learningRuns({ ctx, prepared, config, agent, driver: o.driver, say: o.say });
    return after(agent);
  } finally {
    await agent?.close();
    fs.closeSync(prepared.listenerFd);
  }
}

export interface Learned extends BuiltProfile {
  recording: Recording;
}

export async function learnProfile(ctx: RuntimeContext, o: LearnOptions): Promise<Learned> {
  return underAgent(
    ctx,
    o,
    (architecture) => SeccompAgent.start({ mode: 'record', architecture, onError: o.say }),
    (agent) => {
      const runs = agent.takeRecordings();
      if (!runs.length) throw new HakoError('hako profile learn: the agent recorded nothing');
      const recording = runs.reduce(mergeRecordings);
      return { ...buildProfile(recording), recording };
    },
  );
}

export async function trialProfile(ctx: RuntimeContext, o: LearnOptions & { profile: OciSeccomp }): Promise<Refusal[]> {
  const refusals: Refusal[] = [];
  return underAgent(
    ctx,
    o,
    (architecture) =>
      SeccompAgent.start({
        mode: 'trial',
        architecture,
        profile: o.profile,
        program: compileSeccomp(o.profile).program,
        onRefused: (r) => refusals.push(r),
        onError: o.say,
      }),
    () => refusals,
  );
}
