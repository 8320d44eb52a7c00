// The share of a process's serving-phase CPU samples spent inside some functions, from the
// .cpuprofile node --cpu-prof wrote at exit. Serving phase: every sample not under `main`
// (start-up: definitions, journal replay) and not idle, GC or the profiler itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function profileShare(dir, functions) {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const wanted = new Set(functions);
  const time = new Map();
  profile.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let serving = 0;
  let inside = 0;
  for (const [id, t] of time) {
    const names = [];
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) names.push(nodes.get(cur).callFrame.functionName);
    if (names.some((n) => n === 'main' || n === '(idle)' || n === '(program)' || n === '(garbage collector)')) continue;
    serving += t;
    if (names.some((n) => wanted.has(n))) inside += t;
  }
  if (!serving) throw new Error(`${file}: no serving samples`);
  return inside / serving;
}
