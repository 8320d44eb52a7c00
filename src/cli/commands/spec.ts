import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { defaultSpec, fileError } from '../../runtime/index.js';
import { HakoError } from '../../errors.js';

export const specCommand = new Command('spec')
  .description('write a default config.json into the bundle')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--rootless', 'a config for a rootless container')
  .action(function (this: Command) {
    const o = this.opts();
    const file = path.join(o.bundle, 'config.json');
    // 'wx' (O_EXCL): never through a symlink planted as config.json, never over a file.
    try {
      fs.writeFileSync(file, JSON.stringify(defaultSpec(!!o.rootless), null, 2) + '\n', { flag: 'wx', mode: 0o644 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new HakoError(`${file} already exists; remove it first`);
      if (code === 'ENOENT') throw new HakoError(`--bundle: ${o.bundle} does not exist`);
      throw new HakoError(`cannot write ${file}: ${fileError(e)}`);
    }
  });
