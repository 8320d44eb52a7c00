// The server's own auth state, DATA/auth/state.json (0600), written only by the server
// (temp + fsync + rename) when it changes: refresh tokens (by their SHA-256, never the token),
// TOTP lock-outs, the last TOTP step each user spent, and the client assertions (jti) spent, until
// they expire, so a restart does not reopen a replay window. The admin command never writes it:
// `users remove` and `users unlock` act through the registry (a removed user's refresh tokens no
// longer match a user; an unlock bumps the user's generation, which voids older lock-outs).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { authDir, writeSecretFile } from './registry.js';

export type RefreshRecord = { client: string; user: string; scope: string; patient?: string; exp: number; generation: number };
type Lockout = { failures: number; generation: number };
type StateData = {
  refresh: Record<string, RefreshRecord>;
  lockouts: Record<string, Lockout>;
  steps: Record<string, number>;
  /** digest(client + jti) -> until when it could still be accepted (seconds). */
  assertions: Record<string, number>;
};

export const MAX_CODE_FAILURES = 5;

export function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export class ServerState {
  private data: StateData;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly dataDir: string) {
    let data: StateData | undefined;
    try {
      data = JSON.parse(readFileSync(this.file, 'utf8')) as StateData;
    } catch {
      data = undefined;
    }
    this.data = {
      refresh: data?.refresh ?? {},
      lockouts: data?.lockouts ?? {},
      steps: data?.steps ?? {},
      assertions: data?.assertions ?? {},
    };
  }

  private get file(): string {
    return join(authDir(this.dataDir), 'state.json');
  }

  /** Writes the state; the writes are serialized and the caller waits for its own. */
  private save(): Promise<void> {
    const now = Date.now() / 1000;
    for (const [k, r] of Object.entries(this.data.refresh)) if (r.exp < now) delete this.data.refresh[k];
    for (const [k, until] of Object.entries(this.data.assertions)) if (until < now) delete this.data.assertions[k];
    const text = JSON.stringify(this.data);
    this.writing = this.writing.then(() => writeSecretFile(this.dataDir, this.file, text));
    return this.writing;
  }

  refresh(token: string): RefreshRecord | undefined {
    const r = this.data.refresh[digest(token)];
    return r && r.exp > Date.now() / 1000 ? r : undefined;
  }

  async addRefresh(token: string, record: RefreshRecord): Promise<void> {
    this.data.refresh[digest(token)] = record;
    await this.save();
  }

  /** Revokes one refresh token; true when it existed. */
  async revokeRefresh(token: string): Promise<boolean> {
    const k = digest(token);
    if (!this.data.refresh[k]) return false;
    delete this.data.refresh[k];
    await this.save();
    return true;
  }

  /** Spends a client assertion's id: false when it was spent before (a replay), also before a restart. */
  async spend(key: string, until: number): Promise<boolean> {
    const k = digest(key);
    const seen = this.data.assertions[k];
    if (seen !== undefined && seen >= Date.now() / 1000) return false;
    this.data.assertions[k] = until;
    await this.save();
    return true;
  }

  locked(user: string, generation: number): boolean {
    const l = this.data.lockouts[user];
    return !!l && l.generation === generation && l.failures >= MAX_CODE_FAILURES;
  }

  /** Counts a failed code; returns the failures so far in this generation. */
  async codeFailed(user: string, generation: number): Promise<number> {
    const l = this.data.lockouts[user];
    const failures = l && l.generation === generation ? l.failures + 1 : 1;
    this.data.lockouts[user] = { failures, generation };
    await this.save();
    return failures;
  }

  lastStep(user: string): number | undefined {
    return this.data.steps[user];
  }

  async codeAccepted(user: string, step: number): Promise<void> {
    this.data.steps[user] = step;
    delete this.data.lockouts[user];
    await this.save();
  }
}
