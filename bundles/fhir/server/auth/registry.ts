// The auth store in the data volume, DATA/auth/ (mode 0700), one writer per file:
//
//   registry.json         clients and users: written only by the `hako-fhir` admin command,
//                         under registry.lock, by write-to-temp + fsync + rename; the server only
//                         reads it and reloads it when it changes (checked at most once a second)
//   state.json            the server's own: refresh tokens (hashed), lock-outs, last TOTP steps
//   signing-key.jwk       the server's private ES384 key (keys.ts)
//   supervisor.secret     hako up's credential for its AuditEvent POSTs (keys.ts)
//
// Every file is created mode 0600. When the admin command runs as root on a volume owned by
// someone else (hako up as root maps the server to a subordinate uid), what it writes is
// handed to the volume's owner, so the server can read it.
import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  fchownSync,
  fstatSync,
} from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

export type ClientRecord = {
  /** client_id; also the record's key. */
  id: string;
  /** The most this client may be granted. */
  scopes: string;
  /** Backend services (private_key_jwt): the public keys, a JWKS. */
  jwks?: { keys: Record<string, unknown>[] };
  /** Apps used by people (authorization code + PKCE): where codes may be sent. */
  redirectUris?: string[];
  /** FHIR API requests per minute (a token bucket of that size, refilled evenly). */
  budget: number;
  created: string;
};

export type UserRecord = {
  name: string;
  scopes: string;
  /** For patient/ scopes: the patient in context, "Patient/ID". */
  patient?: string;
  /** scrypt$N$r$p$salt$hash (base64url), see users.ts. */
  password: string;
  /** The TOTP secret, base32. */
  totp: string;
  /** Changes on every (re-)enrolment or unlock: lock-outs of an earlier generation no longer count. */
  generation: number;
  created: string;
};

export type RegistryData = { version: 1; clients: Record<string, ClientRecord>; users: Record<string, UserRecord> };

export const DEFAULT_BUDGET = 60_000;
const LOCK_STALE_MS = 30_000;

export function authDir(dataDir: string): string {
  return join(dataDir, 'auth');
}

/** Creates DATA/auth (0700) if missing, handed to the data directory's owner. */
export function ensureAuthDir(dataDir: string): string {
  const dir = authDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  adopt(dataDir, dir);
  return dir;
}

/** As root, hands a path to the owner of the data directory (the server's user); a server that
 *  owns its data directory (container root) has nothing to hand over, and makes no chown. */
export function adopt(dataDir: string, path: string): void {
  if (process.getuid?.() !== 0) return;
  const owner = statSync(dataDir);
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const st = fstatSync(fd);
    if (st.uid !== owner.uid || st.gid !== owner.gid) fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file atomically (temp, fsync, rename), mode 0600. */
export function writeSecretFile(dataDir: string, path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  adopt(dataDir, tmp);
  renameSync(tmp, path);
}

export function emptyRegistry(): RegistryData {
  return { version: 1, clients: {}, users: {} };
}

export function readRegistry(dataDir: string): RegistryData {
  let text: string;
  try {
    text = readFileSync(join(authDir(dataDir), 'registry.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyRegistry();
    throw err;
  }
  const data = JSON.parse(text) as RegistryData;
  if (data.version !== 1 || typeof data.clients !== 'object' || typeof data.users !== 'object')
    throw new Error(`${join(authDir(dataDir), 'registry.json')} is not a hako-fhir registry`);
  return data;
}

/** The admin command's read-modify-write, under DATA/auth/registry.lock. */
export function updateRegistry<T>(dataDir: string, change: (data: RegistryData) => T): T {
  const dir = ensureAuthDir(dataDir);
  const lock = join(dir, 'registry.lock');
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) rmSync(lock, { force: true });
      else if (attempt > 100) throw new Error(`${lock} is held by another hako-fhir command (remove it if none is running)`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    writeSync(fd, String(process.pid));
    const data = readRegistry(dataDir);
    const result = change(data);
    writeSecretFile(dataDir, join(dir, 'registry.json'), `${JSON.stringify(data, null, 2)}\n`);
    return result;
  } finally {
    closeSync(fd);
    rmSync(lock, { force: true });
  }
}

/** The server's view: the registry as last read, re-read when the file changed (at most once a second). */
export class RegistryView {
  private data: RegistryData;
  private stamp = '';
  private checked = 0;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly log: (sentence: string) => void,
  ) {
    this.data = emptyRegistry();
  }

  private get file(): string {
    return join(authDir(this.dataDir), 'registry.json');
  }

  /** Reads it now (at start, and before every token or login request). */
  async refresh(): Promise<void> {
    this.checked = Date.now();
    const info = await stat(this.file).catch(() => undefined);
    const stamp = info ? `${info.ino}:${info.size}:${info.mtimeMs}` : 'none';
    if (stamp === this.stamp) return;
    try {
      this.data = readRegistry(this.dataDir);
      this.stamp = stamp;
    } catch (err) {
      this.log(`cannot read ${this.file} (${(err as Error).message}): keeping the clients and users read before`);
    }
  }

  /** For the API path: a stat at most once a second, never waited for. */
  tick(): void {
    if (this.checking || Date.now() - this.checked < 1_000) return;
    this.checking = this.refresh().finally(() => (this.checking = undefined));
  }

  get current(): RegistryData {
    return this.data;
  }

  client(id: string): ClientRecord | undefined {
    return Object.hasOwn(this.data.clients, id) ? this.data.clients[id] : undefined;
  }

  user(name: string): UserRecord | undefined {
    return Object.hasOwn(this.data.users, name) ? this.data.users[name] : undefined;
  }
}
