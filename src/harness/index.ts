/// <reference lib="esnext.disposable" />
// The library (`import { Hako } from 'hako'`): real containers from a test's own process.
//
//   await using hako = new Hako();
//   const r = await hako.run({ rootfs, args: ['sh', '-c', 'echo hi'] });  // { code, signal, stdout, stderr }
//   await using c = await hako.start({ rootfs, args: ['sleep', '60'], ports: [{ container: 8080 }] });
//   await c.exec(['cat', '/etc/hostname']);  c.address(8080);  c.kill('TERM');  await c.wait();
//
// One concern per file: hako.ts (start, run, close), container.ts (a running container),
// options.ts (options -> OCI config), pipes.ts (output streams), reaper.ts (waiting without
// blocking), ports.ts (published ports), guard.ts (cleanup at exit), vitest.ts (the fixture).
export { Hako, type HakoOptions } from './hako.js';
export { HakoContainer, ExecProcess, type Exit, type Result, type ExecOptions } from './container.js';
export type { ContainerOptions, DeepPartial } from './options.js';
export type { PortOption } from './ports.js';
export { HakoError, type HakoErrorDetail } from '../errors.js';
export type { Config, Process, OciState } from '../runtime/index.js';
