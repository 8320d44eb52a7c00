// The hako command's entry (dist/cli/hako.cjs, run by bin/hako.cjs): one call per process.
import { runCli } from './run-cli.js';

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
