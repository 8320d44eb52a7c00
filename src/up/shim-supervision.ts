// `hako up` and the preload shim (run.hako.shim.*, docs/limits.md). Before the first run: the
// shim's memory and process ceilings a cgroup holds here already are left to the cgroup (the
// shim is the layer for hosts where none can; where cgroups hold them all, no shim runs). While a run lasts: each denial the shim writes
// is a warning in hako's log, a line on stderr and — for a bundle that asks for it (package.json
// "hako.auditEvents": true) — a FHIR AuditEvent in the server's own store, flood-limited as the
// seccomp refusals are. When a run ends before it served and the shim refused it memory,
// processes or descriptors, restarting cannot help: up stops with one sentence naming the
// ceiling to raise.
import type { Config } from '../oci/config.js';
import { describeDenial, logNewDenials, type RuntimeContext, type ShimDenial } from '../runtime/index.js';
import { detect } from '../cgroups/index.js';
import { hostLimitFacts, shimCeilingsHeldByCgroups } from '../plan/limit-layers.js';
import { parseShimAnnotations, SHIM_PREFIX } from '../plan/shim.js';
import { postAuditEvent, securityAlert, supervisorAuthorization } from './audit-event.js';
import { AuditBudget } from './audit-budget.js';
import { wantsAuditEvents } from './seccomp-supervision.js';
import type { ListenAddress } from './listen.js';

export const SHIM_SUBTYPES = 'https://hako.run/fhir/CodeSystem/shim';

/** The denials that say a ceiling is too low for the program, not that it misbehaved. */
const CEILINGS = ['memory', 'processes', 'files'] as const;
type Ceiling = (typeof CEILINGS)[number];

/** The config up runs. The shim's ceilings stand in for linux.resources' limits where no
 *  cgroup can hold them: where cgroups hold every one of them, up runs no shim at all (its
 *  allowlists too: Landlock and the seccomp policy are the layers there, and a container on a
 *  subordinate range could not reach the shim's files in the root-only state dir anyway);
 *  where they hold some, those ceilings are left to the cgroup. Said in the log. */
export function withShimWhereNeeded(ctx: RuntimeContext, cfg: Config): Config {
  const shim = parseShimAnnotations(cfg.annotations);
  const held = shimCeilingsHeldByCgroups(cfg, hostLimitFacts(detect()), shim);
  if (!shim || !held.length) return cfg;
  const all = held.length === (['memory', 'processes'] as const).filter((l) => shim[l] !== undefined).length;
  const annotations = Object.fromEntries(
    Object.entries(cfg.annotations ?? {}).filter(([k]) => !(all ? k.startsWith(SHIM_PREFIX) : held.some((l) => k === SHIM_PREFIX + l))),
  );
  ctx.log.info(
    all
      ? `cgroups hold linux.resources' ${held.join(' and ')} limits here: the container runs without the preload shim`
      : `the preload shim's ${held.join(' and ')} ceiling is left to the cgroup here (linux.resources holds the same limit for the whole container)`,
  );
  return { ...cfg, annotations };
}

export function shimAuditEventFor(d: ShimDenial, container: string, sentence: string): Record<string, unknown> {
  const who = `${d.exe ?? 'a process'}${d.pid !== undefined ? ` (pid ${d.pid})` : ''} in container ${container}`;
  const detail = [
    { type: 'limit', valueString: d.kind },
    { type: 'call', valueString: d.call },
    ...(d.pid !== undefined ? [{ type: 'pid', valueString: String(d.pid) }] : []),
    ...(d.target ? [{ type: 'target', valueString: d.target }] : []),
    ...(d.path ? [{ type: 'path', valueString: d.path }] : []),
    ...(d.limit !== undefined ? [{ type: 'ceiling', valueString: String(d.limit) }] : []),
  ];
  return securityAlert(
    {
      system: SHIM_SUBTYPES,
      code: d.kind,
      display: `${d.kind} refused by the preload shim`,
      recorded: new Date().toISOString(),
      outcomeDesc: sentence,
      who,
      detail,
    },
    container,
  );
}

function overflowEventFor(kind: string, count: number, from: Date, to: Date, container: string): Record<string, unknown> {
  const [start, end] = [from.toISOString(), to.toISOString()];
  return securityAlert(
    {
      system: SHIM_SUBTYPES,
      code: kind === '*' ? 'other' : kind,
      display: `${kind === '*' ? 'other limits' : kind} refused by the preload shim`,
      recorded: end,
      period: { start, end },
      outcomeDesc: `the preload shim refused ${kind === '*' ? 'other calls' : `${kind} calls`} ${count} more times in container ${container} between ${start} and ${end} (too many in one second to write one by one)`,
      who: `processes in container ${container}`,
      detail: [
        { type: 'limit', valueString: kind },
        { type: 'count', valueString: String(count) },
      ],
    },
    container,
  );
}

export interface ShimSupervisionOptions {
  address: ListenAddress;
  say: (sentence: string) => void;
}

/** A container up runs: the first one, a rollout's, a restart's. */
export interface ShimRun {
  id: string;
  bundle: string;
  config: Config;
}

export interface ShimSupervision {
  /** Starts reading a container's denials (nothing to read when its config has no shim). */
  watch(run: ShimRun): void;
  /** Reads what the run left (before its state dir goes) and stops reading it; a sentence when up must not restart it. */
  runEnded(id: string, served: boolean): string | undefined;
  close(): void;
}

interface Watched extends ShimRun {
  audit: boolean;
  stateDir: string;
  /** This run's ceiling denials, the last of each kind. */
  hit: Map<Ceiling, ShimDenial>;
}

/** Watches the shim's denials of every container up runs: during a rollout the old and the new
 *  one both, each reported under its own id and by its own bundle's settings. */
export function superviseShim(ctx: RuntimeContext, o: ShimSupervisionOptions, everyMs = 250): ShimSupervision {
  const watched = new Map<string, Watched>();
  const post = (w: Watched, event: Record<string, unknown>, what: string) =>
    void postAuditEvent(o.address, event, supervisorAuthorization(w.config, w.bundle)).then((status) => {
      if (status !== 201 && status !== 200)
        o.say(`shim: the AuditEvent for a ${what} denial was not stored (HTTP ${status || 'unreachable'})`);
    });
  // The summaries name the container that serves at the time: the one the server is told about.
  let latest: Watched | undefined;
  const budget = new AuditBudget(({ counts, from, to }) => {
    o.say(`shim: ${[...counts.values()].reduce((a, b) => a + b, 0)} more denials in one second, written as ${counts.size} summaries`);
    if (latest?.audit) for (const [kind, n] of counts) post(latest, overflowEventFor(kind, n, from, to, latest.id), kind);
  });
  const onDenial = (w: Watched) => (d: ShimDenial) => {
    if ((CEILINGS as readonly string[]).includes(d.kind)) w.hit.set(d.kind as Ceiling, d);
    latest = w;
    if (!budget.take(d.kind)) return;
    const sentence = describeDenial(w.id, d);
    o.say(sentence);
    if (w.audit) post(w, shimAuditEventFor(d, w.id, sentence), d.kind);
  };
  // hako's log gets every denial (the shim writes at most 100 per process); stderr and the
  // server what the budget lets through.
  const poll = (w: Watched) => {
    try {
      logNewDenials(ctx.log, w.id, w.stateDir, onDenial(w));
    } catch (e) {
      ctx.log.debug(`reading the shim's denials of ${w.id}: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(() => watched.forEach(poll), everyMs);
  timer.unref();
  return {
    watch(run) {
      if (!parseShimAnnotations(run.config.annotations)) return;
      watched.set(run.id, { ...run, audit: wantsAuditEvents(run.bundle), stateDir: ctx.store.dir(run.id), hit: new Map() });
    },
    runEnded(id, served) {
      const w = watched.get(id);
      if (!w) return undefined;
      poll(w);
      watched.delete(id);
      if (served || !w.hit.size) return undefined;
      const [kind, d] = [...w.hit][0]!;
      const set = w.config.annotations?.[SHIM_PREFIX + kind];
      return `the preload shim refused it ${kind === 'memory' ? `memory past its ceiling` : kind === 'processes' ? 'processes or threads past its ceiling' : 'descriptors past its ceiling'} ${SHIM_PREFIX}${kind}="${set}"${d.limit !== undefined && kind === 'memory' ? ` (${d.limit} bytes)` : ''} before it could serve (${d.call} in ${d.exe ?? 'a process'}): raise ${SHIM_PREFIX}${kind} in config.json`;
    },
    close() {
      clearInterval(timer);
      watched.forEach(poll);
      budget.flush();
    },
  };
}
