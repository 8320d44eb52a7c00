// The schema of state.json (hako's ContainerRecord): what `state`, `kill`, `delete`…
// read back before they act on it. A record that does not fit is refused in one
// sentence, never half-trusted.
import { Type } from '@sinclair/typebox';
import { Check } from '@sinclair/typebox/value';
import { Errors } from '@sinclair/typebox/errors';
import { jsonPath } from './validate.js';
import type { ContainerRecord } from './state.js';

/** A normalized absolute path: no "." or ".." component, no empty one. */
const AbsPath = Type.String({
  pattern: '^/$|^(/(?!\\.\\.?(/|$))[^/\\x00]+)+$',
  maxLength: 4096,
  description: 'a normalized absolute path, without "." or ".." components',
});

export const CgroupStateSchema = Type.Object({
  mount: AbsPath,
  base: AbsPath,
  path: AbsPath,
  available: Type.Array(Type.String({ pattern: '^[a-z_]+$' }), { maxItems: 64 }),
  strict: Type.Boolean(),
  created: Type.Array(AbsPath, { maxItems: 64 }),
  // Root on a hybrid or legacy host: the container's cgroup in each v1 hierarchy.
  v1: Type.Optional(
    Type.Array(
      Type.Object({
        mount: AbsPath,
        controllers: Type.Array(Type.String({ pattern: '^[a-z_=]+$' }), { maxItems: 64 }),
        path: AbsPath,
        created: Type.Array(AbsPath, { maxItems: 64 }),
      }),
      { maxItems: 32 },
    ),
  ),
  legacy: Type.Optional(Type.Boolean()),
});

export const ContainerRecordSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200 }),
  bundle: Type.String({ minLength: 1, maxLength: 4096 }),
  rootfs: Type.String({ minLength: 1, maxLength: 4096 }),
  // A host pid: 0 and negative numbers would name process groups or everything.
  pid: Type.Integer({ minimum: 1, maximum: 4194304 }),
  startTime: Type.String({ pattern: '^[0-9]{1,20}$', description: 'the decimal start time from /proc/PID/stat' }),
  created: Type.String({ maxLength: 64 }),
  rootless: Type.Boolean(),
  setgroupsDenied: Type.Boolean(),
  configPath: Type.String({ maxLength: 4096 }),
  cgroup: Type.Optional(CgroupStateSchema),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  owner: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  rootfsMountId: Type.Optional(Type.Integer({ minimum: 0 })),
  bootId: Type.Optional(Type.String({ pattern: '^[0-9a-f-]{36}$' })),
  noNewKeyring: Type.Optional(Type.Boolean()),
});

/** The record, or the first problem as "field: message". */
export function checkRecord(value: unknown): { record: ContainerRecord } | { problem: string } {
  if (Check(ContainerRecordSchema, value)) return { record: value as ContainerRecord };
  const first = Errors(ContainerRecordSchema, value).First()!;
  // A pattern's own text says little: schemas with a description name what is expected.
  const why =
    first.schema.description && first.message.startsWith('Expected string to match')
      ? `must be ${first.schema.description}`
      : first.message.toLowerCase();
  return { problem: `${jsonPath(first.path)}: ${why}` };
}
