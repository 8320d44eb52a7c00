// `hako.run(options)` for the suites that check a container from inside, rootless and as
// root: as root in this process (the library as a test suite uses it), as the test user in
// a node process of its own (scenarios.mjs `run`), where the library runs rootless.
import { Hako, type ContainerOptions, type Result } from '../../src/index.js';
import type { Who } from '../helpers/hako.js';
import { runScenario } from './scenario.js';

export async function apiRun(who: Who, root: string, options: ContainerOptions): Promise<Result> {
  if (who === 'root' && process.geteuid!() === 0) {
    await using hako = new Hako({ root });
    return hako.run(options);
  }
  const r = runScenario(who, 'run', { root, options });
  if (r.status !== 0) throw new Error(`hako.run as ${who} failed: ${r.stderr || r.stdout}`);
  const { code, signal, stdout, stderr } = r.result as unknown as Result;
  return { code, signal, stdout, stderr };
}
