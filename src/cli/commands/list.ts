import { Command } from 'commander';
import { context } from '../app.js';
import { list } from '../../runtime/index.js';
import { HakoError } from '../../errors.js';

export const listCommand = (): Command =>
  new Command('list')
    .alias('ls')
    .description('list containers')
    .option('-f, --format <fmt>', 'table or json', 'table')
    .option('-q, --quiet', 'only ids')
    .action(function (this: Command) {
      const o = this.opts();
      if (o.format !== 'table' && o.format !== 'json') throw new HakoError(`list: --format must be table or json, not "${o.format}"`);
      const rows = list(context(this));
      if (o.quiet) {
        for (const r of rows) process.stdout.write(`${r.id}\n`);
      } else if (o.format === 'json') {
        process.stdout.write(JSON.stringify(rows) + '\n');
      } else {
        const lines = [
          ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
          ...rows.map((r) => [r.id, String(r.pid ?? 0), r.status, r.bundle, r.created, r.owner]),
        ];
        const w = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
        for (const l of lines)
          process.stdout.write(
            l
              .map((c, i) => c.padEnd(w[i]))
              .join('   ')
              .trimEnd() + '\n',
          );
      }
    });
