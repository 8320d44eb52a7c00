// Medplum's in-memory repository made durable: every write is validated, journaled and
// fsync'd first, then applied to memory, so a write the client saw acknowledged survives
// a crash, and replaying the journal rebuilds exactly the same state (ids, versions, times).
//
// Memory holds the live data only: each current resource (and each deleted id) with the
// location of its newest version in the journal. Every journal record of a version names the
// location of the version before it, so a resource's history is a chain read from disk, and
// start-up needs no old version: it loads the newest snapshot (snapshot.ts) and replays the
// journal written after it (store.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import {
  OperationOutcomeError,
  badRequest,
  deepClone,
  generateId,
  gone,
  notFound,
  preconditionFailed,
  validateResource,
  type WithId,
} from '@medplum/core';
import { MemoryRepository, type CreateResourceOptions, type ReadHistoryOptions, type UpdateResourceOptions } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { StoreCipher } from './cipher.js';
import { JournalDamage } from './sealed-journal.js';
import { pruneSnapshots, readSnapshot, writeSnapshot, type GoneEntry, type LiveEntry, type SnapshotSource } from './snapshot.js';
import { Store, snapshotName, type Loc } from './store.js';

/** prev: the location of the resource's previous version; a number is an op of the same record. */
export type WriteOp =
  | { op: 'put'; resource: WithId<Resource>; create?: true; prev?: Loc | number }
  | { op: 'delete'; resourceType: string; id: string; versionId?: string; lastUpdated?: string; prev?: Loc | number };

/** A transaction is one record, so it is on disk entirely or not at all. */
export type JournalRecord = WriteOp | { op: 'tx'; ops: WriteOp[] };

/** On a stored resource: where this version is in the journal. */
const LOC = Symbol('loc');
type Stored = Resource & { [LOC]?: Loc };
type Tombstone = { versionId?: string; lastUpdated?: string; loc?: Loc };

type TxState = { ops: WriteOp[]; undo: (() => void)[]; index: Map<string, number> };

// MemoryRepository keeps its map private; search reads it, so the current versions live there.
type Internals = { resources: Map<string, Map<string, Stored>> };

export type RepositoryOptions = {
  log: (sentence: string) => void;
  /** A snapshot is written once the journal to replay exceeds this and the last snapshot's size. */
  snapshotBytes: number;
  /** An encrypted store's cipher (store-identity.ts); without it the store is plain. */
  cipher?: StoreCipher;
};

export type Opened = { repo: DurableRepository; replayed: number; snapshot?: { segment: number; live: number; gone: number } };

const MAX_HISTORY_PAGE = 1000;
const DEFAULT_HISTORY_PAGE = 100;
const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const key = (type: string, id: string): string => `${type}/${id}`;
/** A new version of resource: its own versionId and time. */
const stamped = <T extends Resource>(resource: WithId<T>): WithId<T> =>
  ({ ...resource, meta: { ...resource.meta, versionId: generateId(), lastUpdated: new Date().toISOString() } }) as WithId<T>;
const nextLoc = (prev: Loc | number | undefined, at: Loc): Loc | undefined => (typeof prev === 'number' ? [at[0], at[1], prev] : prev);

export class DurableRepository extends MemoryRepository {
  private readonly tx = new AsyncLocalStorage<TxState>();
  private readonly gone = new Map<string, Map<string, Tombstone>>();
  /** Newest journaled-but-not-yet-applied version per resource: the next write chains to it. */
  private readonly pending = new Map<string, Loc>();
  // The write gate: a snapshot waits for in-flight writes and holds new ones for a moment.
  private active = 0;
  private gate: Promise<void> | undefined;
  private idle: (() => void) | undefined;
  private snapshotting: Promise<void> | undefined;
  private stopping = false;

  private constructor(
    private readonly store: Store<JournalRecord>,
    private readonly options: RepositoryOptions,
  ) {
    super();
  }

  /** Opens the data directory: newest good snapshot, then the journal after it. */
  static async open(dir: string, options: RepositoryOptions): Promise<Opened> {
    const { cipher } = options;
    const { store, active } = await Store.open<JournalRecord>(dir, cipher);
    const { log } = options;
    const activePath = join(dir, 'journal');
    if (active.droppedBytes > 0)
      log(
        `journal ${activePath} ended in a torn or corrupt record: dropped ${active.droppedBytes} bytes after ${active.records.length} whole records`,
      );
    const repo = new DurableRepository(store, options);
    if (active.version === 1) await repo.upgrade(active);

    let snapshot: Opened['snapshot'];
    // Encrypted: the record number the next replayed segment must start with (one numbering).
    let expect = 1;
    const candidates = store.snapshots.filter((seg) => seg < store.activeSegment);
    for (const [n, seg] of candidates.entries()) {
      const path = join(dir, snapshotName(seg));
      try {
        const read = await readSnapshot(path, (batch) => repo.load(batch), cipher && { cipher, seg });
        snapshot = { segment: seg, live: read.live, gone: read.gone };
        expect = read.nextSeq ?? 1;
        store.snapshotSeg = seg;
        store.snapshotBytes = read.bytes;
        break;
      } catch (err) {
        repo.internals.resources.clear();
        repo.gone.clear();
        const next = candidates[n + 1];
        log(
          `snapshot ${path} is torn or corrupt (${(err as Error).message}): starting from ${next ? `snapshot ${snapshotName(next)}` : 'the whole journal'} instead`,
        );
      }
    }

    let replayed = 0;
    const replay = async (records: JournalRecord[], offsets: number[], seg: number): Promise<void> => {
      for (const [n, record] of records.entries()) {
        const ops = record.op === 'tx' ? record.ops : [record];
        for (const [i, op] of ops.entries()) repo.apply(op, [seg, offsets[n], i]);
        if (++replayed % 5000 === 0) await breathe(); // a stop signal is handled meanwhile
      }
    };
    const follows = (first: number | undefined, path: string): void => {
      if (cipher && first !== expect)
        throw new JournalDamage(
          `journal ${path} starts at record #${first}, but what comes before it ends at #${expect - 1} (records dropped or added at a segment's end)`,
        );
    };
    for (const seg of store.sealed.filter((s) => s > store.snapshotSeg)) {
      const scan = await store.scanSealed(seg);
      follows(scan.firstSeq, store.path(seg));
      expect = scan.nextSeq ?? 0;
      await replay(scan.records, scan.offsets, seg);
    }
    follows(active.firstSeq, activePath);
    await replay(active.records, active.offsets, store.activeSegment);
    await store.measureTail();
    return { repo, replayed, snapshot };
  }

  /** A first-format journal: rewritten once with the history chain (and ids for deletes). */
  private async upgrade(active: { records: JournalRecord[]; offsets: number[] }): Promise<void> {
    const seg = this.store.activeSegment;
    const chain = new Map<string, Loc>();
    const records = active.records;
    const offsets: number[] = [];
    await this.store.rewriteActive(records.length, (n, offset) => {
      offsets.push(offset);
      const link = (op: WriteOp, i: number): WriteOp => {
        const k = op.op === 'put' ? key(op.resource.resourceType, op.resource.id) : key(op.resourceType, op.id);
        const prev = chain.get(k);
        chain.set(k, [seg, offset, i]);
        return op.op === 'put' ? { ...op, prev } : { ...op, versionId: op.versionId ?? generateId(), prev };
      };
      const record = records[n];
      records[n] = record.op === 'tx' ? { op: 'tx', ops: record.ops.map(link) } : link(record, 0);
      return records[n];
    });
    active.offsets = offsets;
    this.options.log(
      `journal ${this.store.path(seg)} was in the first format: rewrote its ${records.length} records with each version's link to the one before`,
    );
  }

  // ---- reads ----

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<WithId<T>> {
    const stored = this.internals.resources.get(resourceType)?.get(id);
    if (stored) return deepClone(stored) as WithId<T>;
    if (this.gone.get(resourceType)?.has(id)) throw new OperationOutcomeError(gone);
    throw new OperationOutcomeError(notFound);
  }

  /** Every version, newest first, a delete included; 404 for an id never written. */
  override async readHistory<T extends Resource>(resourceType: string, id: string, options?: ReadHistoryOptions): Promise<Bundle<T>> {
    const versions = await this.versions(resourceType, id);
    const offset = options?.offset ?? 0;
    const page = versions.slice(offset, options?.limit === undefined ? undefined : offset + options.limit);
    return {
      resourceType: 'Bundle',
      type: 'history',
      total: versions.length,
      ...(page.length ? { entry: page.map((op) => historyEntry(op) as BundleEntry<T>) } : undefined),
    };
  }

  override async readVersion<T extends Resource>(resourceType: string, id: string, versionId: string): Promise<WithId<T>> {
    for (const op of await this.versions(resourceType, id)) {
      if (op.op === 'put' && op.resource.meta?.versionId === versionId) return deepClone(op.resource) as WithId<T>;
      if (op.op === 'delete' && op.versionId === versionId) throw new OperationOutcomeError(gone);
    }
    throw new OperationOutcomeError(notFound);
  }

  /** The history chain of one resource, newest first, read from the journal. */
  private async versions(type: string, id: string): Promise<WriteOp[]> {
    const stored = this.internals.resources.get(type)?.get(id);
    const tomb = this.gone.get(type)?.get(id);
    let loc = stored ? stored[LOC] : tomb?.loc;
    const out: WriteOp[] = [];
    // A version a transaction has applied but not journaled yet (no location of its own).
    if (stored && stored[LOC] === undefined) out.push({ op: 'put', resource: stored as WithId<Resource> });
    if (!stored && !tomb) throw new OperationOutcomeError(notFound);
    while (loc) {
      const record = await this.store.read(loc[0], loc[1]);
      const op = record.op === 'tx' ? record.ops[loc[2]] : record;
      out.push(op);
      loc = nextLoc(op.prev, loc);
    }
    return out;
  }

  /**
   * Type-level (types = [T]) and system-level (undefined) history: newest first, read from
   * the journal segments backwards; `since` stops at the first older version (the journal
   * is in commit order). Its cost grows with the history, as it must; start-up's does not.
   */
  async typeHistory(types: string[] | undefined, o: { count?: number; offset?: number; since?: string; url: string }): Promise<Bundle> {
    const count = Math.min(o.count ?? DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE);
    const offset = o.offset ?? 0;
    const entries: BundleEntry[] = [];
    let skipped = 0;
    let more = false;
    scan: for (let seg = this.store.activeSegment; seg >= 1; seg--) {
      const { records } = await this.store.scanAny(seg);
      for (let n = records.length - 1; n >= 0; n--) {
        const record = records[n];
        const ops = record.op === 'tx' ? record.ops : [record];
        for (let i = ops.length - 1; i >= 0; i--) {
          const op = ops[i];
          const type = op.op === 'put' ? op.resource.resourceType : op.resourceType;
          if (types && !types.includes(type)) continue;
          const when = op.op === 'put' ? op.resource.meta?.lastUpdated : op.lastUpdated;
          if (o.since && when && when < o.since) break scan;
          if (skipped < offset) {
            skipped++;
            continue;
          }
          if (entries.length === count) {
            more = true;
            break scan;
          }
          entries.push(historyEntry(op));
        }
      }
      await breathe();
    }
    const link: BundleLink[] = [{ relation: 'self', url: pageUrl(o.url, count, offset) }];
    if (more) link.push({ relation: 'next', url: pageUrl(o.url, count, offset + count) });
    if (offset > 0) link.push({ relation: 'previous', url: pageUrl(o.url, count, Math.max(0, offset - count)) });
    return { resourceType: 'Bundle', type: 'history', link, ...(entries.length ? { entry: entries } : undefined) };
  }

  // ---- writes ----

  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    // FHIR create: the server picks the id; batch processing assigns ids ahead to rewrite references.
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    return this.write({ ...resource, id }, true);
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) throw new OperationOutcomeError(badRequest('Missing id'));
    if (options?.ifMatch) {
      const existing = await this.readResource(resource.resourceType, resource.id);
      if (existing.meta?.versionId !== options.ifMatch) throw new OperationOutcomeError(preconditionFailed);
    }
    return this.write(resource as WithId<T>, false);
  }

  /** A delete is a version too (it has its own versionId); deleting a deleted resource changes nothing. */
  override async deleteResource(resourceType: string, id: string): Promise<void> {
    if (!this.internals.resources.get(resourceType)?.has(id)) {
      if (this.gone.get(resourceType)?.has(id)) return;
      throw new OperationOutcomeError(notFound);
    }
    await this.commit({ op: 'delete', resourceType, id, versionId: generateId(), lastUpdated: new Date().toISOString() });
  }

  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.tx.getStore()) return callback(undefined); // nested: part of the enclosing transaction
    await this.enter();
    const state: TxState = { ops: [], undo: [], index: new Map() };
    try {
      const result = await this.tx.run(state, () => callback(undefined));
      if (state.ops.length > 0) {
        const at: Loc = [this.store.activeSegment, this.store.active.nextOffset, 0];
        const locs = state.ops.map((_, i): Loc => [at[0], at[1], i]);
        for (const [k, i] of state.index) this.pending.set(k, locs[i]);
        try {
          await this.store.active.append({ op: 'tx', ops: state.ops });
        } finally {
          for (const [k, i] of state.index) if (this.pending.get(k) === locs[i]) this.pending.delete(k);
        }
        // Now the versions have locations of their own.
        for (const [i, op] of state.ops.entries()) {
          if (op.op === 'put') (op.resource as Stored)[LOC] = locs[i];
          else {
            const tomb = this.gone.get(op.resourceType)?.get(op.id);
            if (tomb && tomb.versionId === op.versionId) tomb.loc = locs[i];
          }
        }
      }
      return result;
    } catch (err) {
      for (const undo of state.undo.reverse()) undo();
      throw err;
    } finally {
      this.leave();
      this.maybeSnapshot();
    }
  }

  private async write<T extends Resource>(resource: WithId<T>, create: boolean): Promise<WithId<T>> {
    const stored = stamped(resource);
    validateResource(stored); // throws an OperationOutcomeError (400) naming the bad element
    await this.commit(create ? { op: 'put', resource: stored, create: true } : { op: 'put', resource: stored });
    return deepClone(stored);
  }

  /**
   * Creates resources the server built itself (its AuditEvents) as one journal record, without
   * FHIR validation and without handing copies back: validating each event cost ten times the
   * read it records. Their shape is fixed by code, and test/audit-shape.test.ts validates it.
   */
  async createServerBuilt(resources: Resource[]): Promise<void> {
    await this.withTransaction(async () => {
      for (const resource of resources)
        await this.commit({ op: 'put', resource: stamped({ ...resource, id: this.generateId() }), create: true });
    });
  }

  /** Journals then applies one write; inside a transaction, applies it and defers the journal. */
  private async commit(op: WriteOp): Promise<void> {
    const k = op.op === 'put' ? key(op.resource.resourceType, op.resource.id) : key(op.resourceType, op.id);
    const tx = this.tx.getStore();
    if (tx) {
      const earlier = tx.index.get(k);
      op.prev = earlier ?? this.head(k, op);
      tx.index.set(k, tx.ops.length);
      tx.ops.push(op);
      tx.undo.push(this.undoFor(op));
      // Until the transaction is journaled, its version stands on its predecessor's location.
      this.apply(op, typeof op.prev === 'number' ? undefined : op.prev);
      return;
    }
    await this.enter();
    try {
      op.prev = this.head(k, op);
      const loc: Loc = [this.store.activeSegment, this.store.active.nextOffset, 0];
      this.pending.set(k, loc);
      try {
        await this.store.active.append(op);
      } finally {
        if (this.pending.get(k) === loc) this.pending.delete(k);
      }
      this.apply(op, loc);
    } finally {
      this.leave();
    }
    this.maybeSnapshot();
  }

  /** The location the next version of k chains to. */
  private head(k: string, op: WriteOp): Loc | undefined {
    const pending = this.pending.get(k);
    if (pending) return pending;
    const [type, id] = op.op === 'put' ? [op.resource.resourceType, op.resource.id] : [op.resourceType, op.id];
    return this.internals.resources.get(type)?.get(id)?.[LOC] ?? this.gone.get(type)?.get(id)?.loc;
  }

  private apply(op: WriteOp, loc: Loc | undefined): void {
    const { resources } = this.internals;
    if (op.op === 'put') {
      const { resourceType: type, id } = op.resource;
      const stored = op.resource as Stored;
      stored[LOC] = loc;
      mapOf(resources, type).set(id, stored);
      this.gone.get(type)?.delete(id);
    } else {
      resources.get(op.resourceType)?.delete(op.id);
      mapOf(this.gone, op.resourceType).set(op.id, { versionId: op.versionId, lastUpdated: op.lastUpdated, loc });
    }
  }

  private undoFor(op: WriteOp): () => void {
    const { resources } = this.internals;
    const [type, id] = op.op === 'put' ? [op.resource.resourceType, op.resource.id] : [op.resourceType, op.id];
    const previous = resources.get(type)?.get(id);
    const tomb = this.gone.get(type)?.get(id);
    return () => {
      if (previous) mapOf(resources, type).set(id, previous);
      else resources.get(type)?.delete(id);
      if (tomb) mapOf(this.gone, type).set(id, tomb);
      else this.gone.get(type)?.delete(id);
    };
  }

  /** Loads one batch of a snapshot. */
  private load(batch: { live?: LiveEntry[]; gone?: GoneEntry[] }): Promise<void> {
    const { resources } = this.internals;
    for (const [seg, offset, index, resource] of batch.live ?? []) {
      const stored = resource as Stored;
      stored[LOC] = [seg, offset, index];
      mapOf(resources, resource.resourceType).set(resource.id, stored);
    }
    for (const [type, id, versionId, lastUpdated, seg, offset, index] of batch.gone ?? [])
      mapOf(this.gone, type).set(id, { versionId, lastUpdated, loc: [seg, offset, index] });
    return breathe();
  }

  // ---- snapshots ----

  private async enter(): Promise<void> {
    while (this.gate) await this.gate;
    this.active++;
  }

  private leave(): void {
    if (--this.active === 0) this.idle?.();
  }

  /** Runs fn with no write in flight and none starting (reads go on). */
  private async quiesce<R>(fn: () => Promise<R>): Promise<R> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    try {
      if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
      this.idle = undefined;
      return await fn();
    } finally {
      this.gate = undefined;
      open();
    }
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || this.stopping || this.store.active.poisoned) return;
    if (this.store.tailBytes < Math.max(this.options.snapshotBytes, this.store.snapshotBytes)) return;
    this.snapshotting = this.snapshot()
      .catch((err: Error) => this.options.log(`writing a snapshot failed (the journal still holds everything): ${err.message}`))
      .finally(() => (this.snapshotting = undefined));
  }

  /**
   * Seals the journal segment and takes the live state at that same moment (writes held for
   * the rename and a copy of the maps), then writes the snapshot while serving goes on.
   */
  async snapshot(): Promise<void> {
    const { seg, source, nextSeq } = await this.quiesce(async () => {
      const sealed = await this.store.rotate();
      return { seg: sealed, source: this.capture(), nextSeq: this.store.active.nextSeq };
    });
    const started = Date.now();
    const { cipher } = this.options;
    const bytes = await writeSnapshot(this.store.dir, seg, source, 2, cipher && { cipher, nextSeq });
    this.store.snapshotWritten(seg, bytes);
    await pruneSnapshots(this.store.dir, this.store.snapshots);
    this.options.log(
      `wrote ${snapshotName(seg)} (${bytes} bytes) in ${Date.now() - started} ms: a start replays the journal after it only`,
    );
  }

  /**
   * A backup's position (backup.ts): seals the active segment with writes held for the rename,
   * so every write acknowledged before this call is in segments 1..segment, which are never
   * rewritten. Writes go on in the next segment meanwhile.
   */
  get encrypted(): boolean {
    return this.options.cipher !== undefined;
  }

  async sealForBackup(): Promise<{ segment: number; nextSeq: number }> {
    return this.quiesce(async () => {
      const segment = await this.store.rotate();
      return { segment, nextSeq: this.store.active.nextSeq };
    });
  }

  private capture(): SnapshotSource {
    const live = [...this.internals.resources.values()].map((m) => [...m.values()]);
    const goneCopy = [...this.gone.entries()].map(([type, m]) => [type, [...m.entries()]] as const);
    function* liveEntries(): Iterable<LiveEntry> {
      for (const list of live) for (const r of list) yield [...(r[LOC] as Loc), r as LiveEntry[3]];
    }
    function* goneEntries(): Iterable<GoneEntry> {
      for (const [type, list] of goneCopy) for (const [id, t] of list) yield [type, id, t.versionId, t.lastUpdated, ...(t.loc as Loc)];
    }
    return { live: liveEntries(), gone: goneEntries() };
  }

  /** Stops taking snapshots, waits for queued appends, closes the files. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.store.close();
  }

  private get internals(): Internals {
    return this as unknown as Internals;
  }
}

function mapOf<V>(maps: Map<string, Map<string, V>>, type: string): Map<string, V> {
  let m = maps.get(type);
  if (!m) maps.set(type, (m = new Map()));
  return m;
}

/** A history entry as FHIR R4 (http.html#history) has it: the version, and request/response. */
export function historyEntry(op: WriteOp): BundleEntry {
  if (op.op === 'delete') {
    return {
      request: { method: 'DELETE', url: `${op.resourceType}/${op.id}` },
      response: {
        status: '200 OK',
        ...(op.versionId ? { etag: `W/"${op.versionId}"` } : undefined),
        ...(op.lastUpdated ? { lastModified: op.lastUpdated } : undefined),
      },
    };
  }
  const { resourceType: type, id, meta } = op.resource;
  const created = op.create === true || op.prev === undefined;
  return {
    resource: deepClone(op.resource),
    request: created ? { method: 'POST', url: type } : { method: 'PUT', url: `${type}/${id}` },
    response: {
      status: created ? '201 Created' : '200 OK',
      etag: `W/"${meta?.versionId}"`,
      ...(meta?.lastUpdated ? { lastModified: meta.lastUpdated } : undefined),
    },
  };
}

function pageUrl(url: string, count: number, offset: number): string {
  const u = new URL(url, 'http://fhir/');
  u.searchParams.set('_count', String(count));
  if (offset > 0) u.searchParams.set('_offset', String(offset));
  else u.searchParams.delete('_offset');
  return `${u.pathname.replace(/^\//, '')}${u.search}`;
}
