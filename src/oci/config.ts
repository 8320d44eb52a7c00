// OCI runtime-spec v1.2 config.json (the parts a Linux runtime reads), as
// TypeBox schemas: one definition gives both the static type and the check.
// Objects are open (additional properties allowed) because the spec says
// unknown fields must be tolerated.
import { Type, type Static } from '@sinclair/typebox';

const U32 = Type.Integer({ minimum: 0, maximum: 0xffffffff });
const I64 = Type.Integer();
const Str = Type.String();
const StrList = Type.Array(Str);

export const IdMapping = Type.Object({ containerID: U32, hostID: U32, size: U32 });

export const Mount = Type.Object({
  destination: Str,
  source: Type.Optional(Str),
  type: Type.Optional(Str),
  options: Type.Optional(StrList),
  uidMappings: Type.Optional(Type.Array(IdMapping)),
  gidMappings: Type.Optional(Type.Array(IdMapping)),
});

export const Rlimit = Type.Object({ type: Str, soft: Type.Integer({ minimum: 0 }), hard: Type.Integer({ minimum: 0 }) });

export const Capabilities = Type.Object({
  bounding: Type.Optional(StrList),
  effective: Type.Optional(StrList),
  permitted: Type.Optional(StrList),
  inheritable: Type.Optional(StrList),
  ambient: Type.Optional(StrList),
});

export const User = Type.Object({
  uid: U32,
  gid: U32,
  umask: Type.Optional(U32),
  additionalGids: Type.Optional(Type.Array(U32)),
  username: Type.Optional(Str),
});

export const ConsoleSize = Type.Object({ height: U32, width: U32 });

export const Process = Type.Object({
  terminal: Type.Optional(Type.Boolean()),
  consoleSize: Type.Optional(ConsoleSize),
  user: User,
  args: Type.Optional(StrList),
  commandLine: Type.Optional(Str),
  env: Type.Optional(StrList),
  cwd: Str,
  capabilities: Type.Optional(Capabilities),
  rlimits: Type.Optional(Type.Array(Rlimit)),
  noNewPrivileges: Type.Optional(Type.Boolean()),
  apparmorProfile: Type.Optional(Str),
  oomScoreAdj: Type.Optional(Type.Integer({ minimum: -1000, maximum: 1000 })),
  selinuxLabel: Type.Optional(Str),
});

export const Root = Type.Object({ path: Str, readonly: Type.Optional(Type.Boolean()) });

export const Hook = Type.Object({
  path: Str,
  args: Type.Optional(StrList),
  env: Type.Optional(StrList),
  timeout: Type.Optional(Type.Integer({ exclusiveMinimum: 0 })),
});
const HookList = Type.Optional(Type.Array(Hook));
export const Hooks = Type.Object({
  prestart: HookList,
  createRuntime: HookList,
  createContainer: HookList,
  startContainer: HookList,
  poststart: HookList,
  poststop: HookList,
});

export const NamespaceType = Type.Union(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'].map((t) => Type.Literal(t)));
export const Namespace = Type.Object({ type: NamespaceType, path: Type.Optional(Str) });

export const Device = Type.Object({
  type: Type.Union([Type.Literal('c'), Type.Literal('b'), Type.Literal('u'), Type.Literal('p')]),
  path: Str,
  major: Type.Optional(I64),
  minor: Type.Optional(I64),
  fileMode: Type.Optional(U32),
  uid: Type.Optional(U32),
  gid: Type.Optional(U32),
});

export const TimeOffset = Type.Object({ secs: Type.Optional(I64), nanosecs: Type.Optional(U32) });

// Resources and seccomp are validated in depth by their own modules
// (src/cgroups, src/seccomp); here they only need to be objects.
export const Linux = Type.Object({
  namespaces: Type.Optional(Type.Array(Namespace)),
  uidMappings: Type.Optional(Type.Array(IdMapping)),
  gidMappings: Type.Optional(Type.Array(IdMapping)),
  timeOffsets: Type.Optional(Type.Record(Str, TimeOffset)),
  devices: Type.Optional(Type.Array(Device)),
  cgroupsPath: Type.Optional(Str),
  resources: Type.Optional(Type.Record(Str, Type.Unknown())),
  rootfsPropagation: Type.Optional(
    Type.Union(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'].map((t) => Type.Literal(t))),
  ),
  seccomp: Type.Optional(Type.Record(Str, Type.Unknown())),
  sysctl: Type.Optional(Type.Record(Str, Str)),
  maskedPaths: Type.Optional(StrList),
  readonlyPaths: Type.Optional(StrList),
  mountLabel: Type.Optional(Str),
  personality: Type.Optional(Type.Record(Str, Type.Unknown())),
});

export const Config = Type.Object({
  ociVersion: Str,
  root: Type.Optional(Root),
  mounts: Type.Optional(Type.Array(Mount)),
  process: Type.Optional(Process),
  hostname: Type.Optional(Str),
  domainname: Type.Optional(Str),
  hooks: Type.Optional(Hooks),
  annotations: Type.Optional(Type.Record(Str, Str)),
  linux: Type.Optional(Linux),
});

export type Config = Static<typeof Config>;
export type Process = Static<typeof Process>;
export type Mount = Static<typeof Mount>;
export type Hook = Static<typeof Hook>;
export type Hooks = Static<typeof Hooks>;
export type IdMapping = Static<typeof IdMapping>;
export type Namespace = Static<typeof Namespace>;
export type NamespaceType = Static<typeof NamespaceType>;
export type Device = Static<typeof Device>;
export type Linux = Static<typeof Linux>;
