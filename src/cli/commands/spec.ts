import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { defaultSpec } from '../../runtime/index.js';
import { HakoError } from '../../errors.js';

export const specCommand = new Command('spec')
  .description('write a default config.json into the bundle')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--rootless', 'a config for a rootless container')
  .action(function (this: Command) {
    const o = this.opts();
    const file = path.join(o.bundle, 'config.json');
    if (fs.existsSync(file)) throw new HakoError(`${file} already exists; remove it first`);
    fs.writeFileSync(file, JSON.stringify(defaultSpec(!!o.rootless), null, 2) + '\n');
  });
