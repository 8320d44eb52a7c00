// events: runc's JSON events. `--stats` prints one {"type":"stats","id",...,"data":{...}}
// and exits; without it a stats event every --interval and an "oom" event
// when the memory controller reports one, until the container stops.
import { Command } from 'commander';
import { context } from '../app.js';
import { HakoError } from '../../errors.js';
import { events } from '../../runtime/index.js';

/** runc's interval syntax (a Go duration): 5s, 500ms, 1m, 1m30s. */
export function parseDuration(v: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const mult: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let used = 0;
  for (const m of v.matchAll(re)) {
    total += Number(m[1]) * mult[m[2]];
    used += m[0].length;
  }
  if (!v || used !== v.length || total <= 0) throw new HakoError(`--interval: "${v}" is not a duration (e.g. 5s, 500ms)`);
  return total;
}

export const eventsCommand = new Command('events')
  .description('print container events (stats, oom) as JSON lines')
  .argument('<id>', 'container id')
  .option('--stats', 'print the statistics once and exit')
  .option('--interval <duration>', 'stats interval', '5s')
  .action(async function (this: Command, id: string) {
    const o = this.opts();
    await events(context(this), id, {
      once: !!o.stats,
      intervalMs: parseDuration(o.interval),
      emit: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
    });
  });
