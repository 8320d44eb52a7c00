// hako as a library: `import { Hako } from 'hako'`. This file is the package's public
// face and only re-exports: what it lists is the API. The code is in src/harness/.
export { Hako, HarnessContainer, HakoError } from './harness/index.js';
export type { HakoOptions, StartOptions, Output, Config, Process, OciState } from './harness/index.js';
