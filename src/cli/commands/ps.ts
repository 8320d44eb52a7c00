// ps: the container's processes. `--format json` prints a JSON array of host
// pids (containerd's shim and `docker top` read it); the table runs the host's
// ps (default `-ef`, or the arguments after the id) and keeps the container's rows.
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { context } from '../app.js';
import { HakoError } from '../../errors.js';
import { ps } from '../../runtime/index.js';

export const psCommand = (): Command =>
  new Command('ps')
    .description("list the container's processes")
    .argument('<id>', 'container id')
    .argument('[ps-args...]', 'arguments for ps(1) in table format (default -ef)')
    .option('-f, --format <fmt>', 'table or json', 'table')
    .action(function (this: Command, id: string, psArgs: string[]) {
      const o = this.opts();
      if (o.format !== 'table' && o.format !== 'json') throw new HakoError(`ps: --format must be table or json, not "${o.format}"`);
      const pids = ps(context(this), id);
      if (o.format === 'json') {
        process.stdout.write(JSON.stringify(pids) + '\n');
        return;
      }
      const r = spawnSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
      if (r.error || r.status !== 0)
        throw new HakoError(`ps: running ps ${psArgs.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
      const lines = r.stdout.split('\n');
      const col = lines[0].trim().split(/\s+/).indexOf('PID');
      if (col < 0) throw new HakoError(`ps: the output of ps ${psArgs.join(' ')} has no PID column`);
      const want = new Set(pids);
      process.stdout.write(lines[0] + '\n');
      for (const l of lines.slice(1)) if (l.trim() && want.has(Number(l.trim().split(/\s+/)[col]))) process.stdout.write(l + '\n');
    });
