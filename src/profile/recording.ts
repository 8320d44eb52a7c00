// What learning recorded: per phase, each system call the workload made with the argument
// keys that matter (arguments.ts). Start-up runs until the server first answers; serving after.
import type { SeccompArch } from '../seccomp/types.js';

export type Phase = 'startup' | 'serving';
export const PHASES: readonly Phase[] = ['startup', 'serving'];

export interface Recording {
  architecture: SeccompArch;
  /** name → argument keys seen ('' for a call whose arguments do not matter). */
  calls: Record<Phase, Record<string, string[]>>;
  /** Numbers the workload called that hako's table does not name. */
  unnamed: number[];
  /** Notifications seen, hako's own included. */
  notifications: number;
}

/** Collects notifications into a Recording (used inside the agent's worker). */
export class Recorder {
  private readonly calls: Record<Phase, Map<string, Set<string>>> = { startup: new Map(), serving: new Map() };
  private readonly unnamed = new Set<number>();
  notifications = 0;

  constructor(readonly architecture: SeccompArch) {}

  add(phase: Phase, name: string | undefined, nr: number, key: string): void {
    this.notifications++;
    if (name === undefined) {
      this.unnamed.add(nr);
      return;
    }
    let keys = this.calls[phase].get(name);
    if (!keys) this.calls[phase].set(name, (keys = new Set()));
    keys.add(key);
  }

  result(): Recording {
    const phase = (p: Phase) =>
      Object.fromEntries([...this.calls[p].entries()].sort(([a], [b]) => a.localeCompare(b)).map(([n, k]) => [n, [...k].sort()]));
    return {
      architecture: this.architecture,
      calls: { startup: phase('startup'), serving: phase('serving') },
      unnamed: [...this.unnamed].sort((a, b) => a - b),
      notifications: this.notifications,
    };
  }
}

/** Two recordings (two runs) as one. */
export function mergeRecordings(a: Recording, b: Recording): Recording {
  const calls = { startup: {}, serving: {} } as Recording['calls'];
  for (const p of ['startup', 'serving'] as const) {
    for (const r of [a, b])
      for (const [name, keys] of Object.entries(r.calls[p])) calls[p][name] = [...new Set([...(calls[p][name] ?? []), ...keys])].sort();
  }
  return {
    architecture: a.architecture,
    calls,
    unnamed: [...new Set([...a.unnamed, ...b.unnamed])].sort((x, y) => x - y),
    notifications: a.notifications + b.notifications,
  };
}
