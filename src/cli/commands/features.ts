import { Command } from 'commander';
import { features } from '../../runtime/index.js';

export const featuresCommand = (): Command =>
  new Command('features').description('print what this runtime supports (runtime-spec features.md)').action(() => {
    process.stdout.write(JSON.stringify(features(), null, 2) + '\n');
  });
