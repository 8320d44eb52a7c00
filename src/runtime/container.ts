// A container in the store: its record, its live status, its OCI state.
//
// state.json and config.json are read back from the container's own directory only,
// never through a symlink, and state.json is checked against its schema, so a damaged or
// planted record gives one sentence instead of a pid to signal or a hook to run.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { OCI_VERSION, type ContainerRecord, type OciState, type Status } from '../oci/state.js';
import { checkRecord } from '../oci/state-schema.js';
import { validateConfig } from '../oci/validate.js';
import type { Config } from '../oci/config.js';
import { Store, writeAtomic, readOwnFile, checkId } from './store.js';
import { isAlive } from '../sys/proc.js';
import { cgroupOf } from './cgroup.js';
import { cgroupProblem } from './cgroup-trust.js';

/** A state.json (or the config.json beside it) hako will not act on. */
export class InvalidStateError extends HakoError {}

let bootIdCache: string | null | undefined;

/** This boot's id: a record from another boot names no live process, whatever its pid. */
export function bootId(): string | null {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

export class Container {
  private cfg: Config | undefined;

  constructor(
    readonly store: Store,
    readonly record: ContainerRecord,
  ) {}

  get id(): string {
    return this.record.id;
  }
  get dir(): string {
    return this.store.dir(this.record.id);
  }
  get fifo(): string {
    return path.join(this.dir, 'exec.fifo');
  }

  static load(store: Store, id: string): Container {
    checkId(id);
    const missing = () => new HakoError(`container "${id}" does not exist`);
    if (!store.checkRoot()) throw missing();
    const dir = store.dir(id);
    const dst = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!dst) throw missing();
    const bad = (why: string) =>
      new InvalidStateError(
        `container "${id}" has an invalid state file (${why}); hako did not write it and will not act on it: remove ${dir} (hako delete --force ${id})`,
      );
    if (!dst.isDirectory()) throw bad(`${dir} is not a directory`);
    const file = path.join(dir, 'state.json');
    let text: string;
    try {
      text = readOwnFile(file, 1 << 20);
    } catch (e) {
      if (errCode(e) === 'ENOENT') throw missing();
      if (errCode(e) === 'ELOOP') throw bad(`${file} is a symlink`);
      throw bad(`${file}: ${errCode(e) === 'EINVAL' || errCode(e) === 'EFBIG' ? (e as Error).message : errCode(e)}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw bad('not valid JSON');
    }
    const checked = checkRecord(value);
    if ('problem' in checked) throw bad(checked.problem);
    const record = checked.record;
    if (record.id !== id) throw bad(`id: "${record.id}" is not "${id}"`);
    // The config is always the state dir's own copy; a record naming another file is not ours.
    const ownConfig = path.join(dir, 'config.json');
    if (record.configPath !== ownConfig) throw bad(`configPath: ${record.configPath} is not ${ownConfig}`);
    const c = new Container(store, record);
    if (record.cgroup) {
      const why = cgroupProblem(record.cgroup, id, c.config().linux?.cgroupsPath);
      if (why) throw bad(why);
    }
    return c;
  }

  save(): void {
    this.record.bootId ??= bootId() ?? undefined;
    writeAtomic(path.join(this.dir, 'state.json'), JSON.stringify(this.record, null, 2));
  }

  /** The config as it was at create, from the state dir (never from where a record points). */
  config(): Config {
    if (this.cfg) return this.cfg;
    const file = path.join(this.dir, 'config.json');
    let text: string;
    try {
      text = readOwnFile(file);
    } catch (e) {
      throw new InvalidStateError(
        `container "${this.id}": cannot read its config ${file}: ${errCode(e) === 'ELOOP' ? 'it is a symlink' : errCode(e)}`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new InvalidStateError(`container "${this.id}": its config ${file} is not valid JSON`);
    }
    try {
      this.cfg = validateConfig(value);
    } catch (e) {
      throw new InvalidStateError(`container "${this.id}": its ${(e as Error).message.replace(/^config\.json/, `config ${file}`)}`);
    }
    return this.cfg;
  }

  alive(): boolean {
    if (this.record.bootId && bootId() && this.record.bootId !== bootId()) return false;
    return isAlive(this.record.pid, this.record.startTime);
  }

  status(): Status {
    if (!this.alive()) return 'stopped';
    if (fs.existsSync(this.fifo)) return 'created';
    return cgroupOf(this.record.cgroup)?.frozen() ? 'paused' : 'running';
  }

  ociState(status = this.status()): OciState {
    const s: OciState = { ociVersion: OCI_VERSION, id: this.id, status, bundle: this.record.bundle };
    if (status !== 'stopped') s.pid = this.record.pid;
    else s.pid = 0;
    if (this.record.annotations && Object.keys(this.record.annotations).length) s.annotations = this.record.annotations;
    return s;
  }
}
