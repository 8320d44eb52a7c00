// hako as a library: `import { Hako } from 'hako'`. This file is the package's public
// face and only re-exports: what it lists is the API. The code is in src/harness/;
// the vitest fixture is `hako/vitest` (src/harness/vitest.ts).
export { Hako, HakoContainer, ExecProcess, HakoError } from './harness/index.js';
export type {
  HakoOptions,
  ContainerOptions,
  DeepPartial,
  PortOption,
  Exit,
  Result,
  ExecOptions,
  HakoErrorDetail,
  Config,
  Process,
  OciState,
} from './harness/index.js';
