// Medplum's in-memory repository made durable: every write is validated, journaled and
// fsync'd first, then applied to memory, so a write the client saw acknowledged survives
// a crash, and replaying the journal rebuilds exactly the same state (ids, versions, times).
import { AsyncLocalStorage } from 'node:async_hooks';
import { OperationOutcomeError, badRequest, deepClone, generateId, preconditionFailed, validateResource, type WithId } from '@medplum/core';
import { MemoryRepository, type CreateResourceOptions, type ReadHistoryOptions, type UpdateResourceOptions } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Journal } from './journal.js';

export type WriteOp = { op: 'put'; resource: WithId<Resource> } | { op: 'delete'; resourceType: string; id: string };

/** A transaction is one record, so it is on disk entirely or not at all. */
export type JournalRecord = WriteOp | { op: 'tx'; ops: WriteOp[] };

type TxState = { ops: WriteOp[]; undo: (() => void)[] };

// MemoryRepository keeps its maps private; rolling back a failed transaction needs them
// (the Medplum version is pinned in package.json).
type Internals = {
  resources: Map<string, Map<string, Resource>>;
  history: Map<string, Map<string, Resource[]>>;
};

export class DurableRepository extends MemoryRepository {
  private readonly tx = new AsyncLocalStorage<TxState>();

  constructor(private readonly journal: Journal<JournalRecord>) {
    super();
  }

  /** Rebuilds memory from journal records read at start; they were validated when written. */
  async replay(records: readonly JournalRecord[]): Promise<void> {
    for (const record of records) {
      for (const op of record.op === 'tx' ? record.ops : [record]) await this.apply(op);
    }
  }

  override async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    // FHIR create: the server picks the id; batch processing assigns ids ahead to rewrite references.
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    return this.write({ ...resource, id });
  }

  override async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    if (!resource.id) throw new OperationOutcomeError(badRequest('Missing id'));
    if (options?.ifMatch) {
      const existing = await this.readResource(resource.resourceType, resource.id);
      if (existing.meta?.versionId !== options.ifMatch) throw new OperationOutcomeError(preconditionFailed);
    }
    return this.write(resource as WithId<T>);
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    await this.readResource(resourceType, id); // 404 for a resource that is not there
    await this.commit({ op: 'delete', resourceType, id });
  }

  // MemoryRepository's readHistory reverses its stored history array in place; copy instead.
  override async readHistory<T extends Resource>(resourceType: string, id: string, options?: ReadHistoryOptions): Promise<Bundle<T>> {
    await this.readResource(resourceType, id);
    const versions = [...(this.internals.history.get(resourceType)?.get(id) ?? [])].reverse();
    const offset = options?.offset ?? 0;
    const page = versions.slice(offset, options?.limit === undefined ? undefined : offset + options.limit);
    return {
      resourceType: 'Bundle',
      type: 'history',
      total: versions.length,
      ...(page.length ? { entry: page.map((v) => ({ resource: deepClone(v) as T })) } : undefined),
    };
  }

  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.tx.getStore()) return callback(undefined); // nested: part of the enclosing transaction
    const state: TxState = { ops: [], undo: [] };
    try {
      const result = await this.tx.run(state, () => callback(undefined));
      if (state.ops.length > 0) await this.journal.append({ op: 'tx', ops: state.ops });
      return result;
    } catch (err) {
      for (const undo of state.undo.reverse()) undo();
      throw err;
    }
  }

  private async write<T extends Resource>(resource: WithId<T>): Promise<WithId<T>> {
    const stored = {
      ...resource,
      meta: { ...resource.meta, versionId: generateId(), lastUpdated: new Date().toISOString() },
    };
    validateResource(stored); // throws an OperationOutcomeError (400) naming the bad element
    return (await this.commit({ op: 'put', resource: stored })) as WithId<T>;
  }

  /** Journals then applies one write; inside a transaction, applies it and defers the journal. */
  private async commit(op: WriteOp): Promise<Resource | undefined> {
    const tx = this.tx.getStore();
    if (tx) {
      tx.ops.push(op);
      tx.undo.push(this.undoFor(op));
    } else {
      await this.journal.append(op);
    }
    return this.apply(op);
  }

  private async apply(op: WriteOp): Promise<Resource | undefined> {
    if (op.op === 'put') return super.createResource(op.resource); // keeps the journaled id and meta
    // Two concurrent deletes of one resource can both be journaled; the second is a no-op.
    if (this.internals.resources.get(op.resourceType)?.has(op.id)) await super.deleteResource(op.resourceType, op.id);
    return undefined;
  }

  private undoFor(op: WriteOp): () => void {
    const { resources, history } = this.internals;
    const type = op.op === 'put' ? op.resource.resourceType : op.resourceType;
    const id = op.op === 'put' ? op.resource.id : op.id;
    const previous = resources.get(type)?.get(id);
    return () => {
      if (previous) resources.get(type)?.set(id, previous);
      else resources.get(type)?.delete(id);
      if (op.op === 'put') history.get(type)?.get(id)?.pop();
    };
  }

  private get internals(): Internals {
    return this as unknown as Internals;
  }
}
