// Parses and checks config.json, turning the first problem into one sentence
// that names its JSON path.
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import type { TSchema, Static } from '@sinclair/typebox';
import { Config } from './config.js';
import { Process } from './config.js';
import { HakoError } from '../errors.js';

/** "/process/args/0" -> "process.args[0]" */
export function jsonPath(pointer: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(top level)';
}

// Check interprets the schema: for one config per process that is
// cheaper than compiling a checker first.
function checker<T extends TSchema>(schema: T, what: string) {
  return (value: unknown, prefix = ''): Static<T> => {
    if (Check(schema, value)) return value as Static<T>;
    const first = Errors(schema, value).First()!;
    const path = jsonPath(first.path);
    const where = prefix ? (path === '(top level)' ? prefix : `${prefix}.${path}`) : path;
    throw new HakoError(`${what}: ${where}: ${describe(first.schema, first.value, first.message)}`);
  };
}

/** A union of literals (a namespace type, a seccomp action…) names the value and the accepted ones. */
function describe(schema: TSchema, value: unknown, message: string): string {
  const options = (schema.anyOf as TSchema[] | undefined)?.map((s) => s.const);
  if (options?.length && options.every((o) => typeof o === 'string'))
    return `${JSON.stringify(value)} is not one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
  return message.toLowerCase();
}

const checkConfig = checker(Config, 'config.json');
const checkProcess = checker(Process, 'process.json');

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HakoError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Structural checks, then the semantic ones the schema cannot express. */
export function validateConfig(value: unknown): Config {
  const cfg = checkConfig(value);
  if (!cfg.root?.path) throw new HakoError('config.json: root.path: is required');
  if (!cfg.process) throw new HakoError('config.json: process: is required to run a container');
  if (!cfg.process.args?.length) throw new HakoError('config.json: process.args: must name the program to run');
  if (!cfg.process.cwd.startsWith('/')) throw new HakoError(`config.json: process.cwd: "${cfg.process.cwd}" must be an absolute path`);
  const seen = new Set<string>();
  cfg.linux?.namespaces?.forEach((ns, i) => {
    if (seen.has(ns.type)) throw new HakoError(`config.json: linux.namespaces[${i}]: namespace "${ns.type}" is listed twice`);
    seen.add(ns.type);
  });
  cfg.mounts?.forEach((m, i) => {
    if (!m.destination.startsWith('/'))
      throw new HakoError(`config.json: mounts[${i}].destination: "${m.destination}" must be an absolute path`);
  });
  cfg.process.env?.forEach((e, i) => {
    if (!e.includes('=')) throw new HakoError(`config.json: process.env[${i}]: "${e}" is not NAME=value`);
  });
  return cfg;
}

export function validateProcess(value: unknown): Process {
  const p = checkProcess(value);
  if (!p.args?.length) throw new HakoError('process.json: args: must name the program to run');
  return p;
}

export type { Config };
