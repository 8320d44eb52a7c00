// A container in the store: its record, its live status, its OCI state.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { OCI_VERSION, type ContainerRecord, type OciState, type Status } from '../spec/state.js';
import type { Config } from '../spec/config.js';
import { Store, writeAtomic } from './store.js';
import { isAlive } from './proc.js';
import { cgroupOf } from './cgroup.js';

export class Container {
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
    const file = path.join(store.dir(id), 'state.json');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      throw new HakoError(`container "${id}" does not exist`);
    }
    return new Container(store, JSON.parse(text) as ContainerRecord);
  }

  save(): void {
    writeAtomic(path.join(this.dir, 'state.json'), JSON.stringify(this.record, null, 2));
  }

  config(): Config {
    return JSON.parse(fs.readFileSync(this.record.configPath, 'utf8')) as Config;
  }

  alive(): boolean {
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
