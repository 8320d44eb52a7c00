// `hako up` as the supervisor of a two-phase profile (src/profile): when the bundle's filter
// hands calls to user space (SCMP_ACT_NOTIFY) and names no agent of its own, up runs hako's
// agent in enforce mode. It turns to the serving phase each time a run first answers, and
// every refusal is a warning in hako's log, a line on stderr, and — for a bundle that asks for
// it (package.json "hako.auditEvents": true) — a FHIR AuditEvent in the server's own store.
// --on-violation says what else happens: report (nothing), stop, or freeze (kept paused).
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { OciSeccomp } from '../seccomp/types.js';
import { pause, type RuntimeContext } from '../runtime/index.js';
import { SeccompAgent, withAgent } from '../profile/agent.js';
import type { Refusal } from '../profile/agent-worker.js';
import { hostArch } from '../profile/names.js';
import { notifies } from '../profile/policy.js';
import { errnoName } from '../sys/errno.js';
import { auditEventFor, overflowEventFor, postAuditEvent, supervisorAuthorization } from './audit-event.js';
import { AuditBudget } from './audit-budget.js';
import type { Prepared } from './prepare.js';

export type OnViolation = 'report' | 'stop' | 'freeze';

export function parseOnViolation(v: string): OnViolation {
  if (v === 'report' || v === 'stop' || v === 'freeze') return v;
  throw new InvalidArgumentError(`"${v}" is not report, stop or freeze.`);
}

/** Whether the bundle asks for AuditEvents (package.json "hako.auditEvents": true). */
export function wantsAuditEvents(bundle: string): boolean {
  try {
    return (
      (JSON.parse(fs.readFileSync(path.join(bundle, 'package.json'), 'utf8')) as { hako?: { auditEvents?: unknown } }).hako?.auditEvents ===
      true
    );
  } catch {
    return false;
  }
}

export interface Supervision {
  agent: SeccompAgent;
  onRunStart: () => void;
  onReady: () => void;
  close: () => Promise<void>;
}

export interface SupervisionOptions {
  onViolation: OnViolation;
  say: (sentence: string) => void;
  /** Stops the whole `up` (--on-violation stop). */
  stop: () => void;
}

/** Starts the agent when the prepared bundle's profile needs one; the config then points at it. */
export async function superviseSeccomp(ctx: RuntimeContext, p: Prepared, o: SupervisionOptions): Promise<Supervision | undefined> {
  const seccomp = p.config.linux?.seccomp as OciSeccomp | undefined;
  if (!notifies(seccomp) || seccomp!.listenerPath) return undefined;
  const audit = wantsAuditEvents(p.bundle);
  let frozen = false;
  const post = (event: Record<string, unknown>, what: string) =>
    void postAuditEvent(p.address, event, supervisorAuthorization(p.config, p.bundle)).then((status) => {
      if (status !== 201 && status !== 200) o.say(`seccomp: the AuditEvent for ${what} was not stored (HTTP ${status || 'unreachable'})`);
    });
  const budget = new AuditBudget(({ counts, from, to }) => {
    o.say(`seccomp: ${[...counts.values()].reduce((a, b) => a + b, 0)} more refusals in one second, written as ${counts.size} summaries`);
    for (const [call, n] of counts) post(overflowEventFor(call, n, from, to, p.id), call);
  });
  const onRefused = (r: Refusal) => {
    const sentence = `seccomp: refused ${r.syscall}(${r.args.join(', ')}) from pid ${r.pid} (${r.command || 'unknown'}${r.exec ? ', started by hako exec' : ''}) in container ${p.id} during ${r.phase}: ${errnoName(r.errno)}`;
    ctx.log.warn(sentence);
    o.say(sentence);
    if (audit && budget.take(r.syscall)) post(auditEventFor(r, p.id), r.syscall);
    if (o.onViolation === 'stop') {
      o.say(`--on-violation stop: stopping container ${p.id}`);
      o.stop();
    } else if (o.onViolation === 'freeze' && !frozen) {
      frozen = true;
      void pause(ctx, p.id).then(
        () => o.say(`--on-violation freeze: container ${p.id} is paused for inspection (hako resume ${p.id} to continue)`),
        // Asked to keep it from going on: where it cannot be paused, it is stopped.
        (e: Error) => {
          o.say(`--on-violation freeze: could not pause container ${p.id} (${e.message}): stopping it instead`);
          o.stop();
        },
      );
    }
  };
  const agent = await SeccompAgent.start({ mode: 'enforce', architecture: hostArch(), profile: seccomp, onRefused, onError: o.say });
  p.config = withAgent(p.config, agent);
  return {
    agent,
    onRunStart: () => agent.setServing(false),
    onReady: () => agent.setServing(true),
    close: () => {
      budget.flush();
      return agent.close();
    },
  };
}
