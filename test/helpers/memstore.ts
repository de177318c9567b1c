// A small working Datastore over Maps for unit tests: one global revision counter like
// etcd's, create/update/delete guarded by revision, atomic apply(), list with label and
// prefix selection, and watch from a revision over an in-memory event log.
import { alreadyExists, ApplyWrites, conflict, listFilter, notFound } from '../../lib/datastore/common';
import {
  UnavailableError,
  type Datastore, type Kind, type ListOptions, type ListResult, type Resource, type Watch,
  type WatchEvent, type WatchHandlers, type WriteOp,
} from '../../lib/datastore/types';

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

export class MemStore extends ApplyWrites implements Datastore {
  readonly type = 'embedded' as const;
  private rev = 0;
  private readonly data = new Map<string, Resource>();
  private readonly log: { rev: number; ev: WatchEvent }[] = [];
  private readonly watchers = new Set<{ kind: Kind; h: WatchHandlers<Kind> }>();
  /** When true every call fails with UnavailableError (a store that is down). */
  unavailable = false;
  /** Called before each write batch commits; may throw (e.g. to inject a conflict). */
  beforeWrite?: (ops: WriteOp[]) => void;
  /** Awaited before every call: inject latency/interleaving (e.g. a random number of ticks). */
  delay?: () => Promise<void>;
  /** Counters for tests and benchmarks. */
  readonly stats = { reads: 0, writes: 0, conflicts: 0 };

  private key(kind: Kind, name: string): string { return `${kind}/${name}`; }
  private async check(): Promise<void> {
    if (this.delay) await this.delay();
    if (this.unavailable) throw new UnavailableError('memstore: unavailable');
  }

  async get<K extends Kind>(kind: K, name: string): Promise<Resource<K>> {
    await this.check(); this.stats.reads++;
    const r = this.data.get(this.key(kind, name));
    if (!r) throw notFound(kind, name);
    return clone(r) as Resource<K>;
  }

  async list<K extends Kind>(kind: K, opts: ListOptions = {}): Promise<ListResult<K>> {
    await this.check(); this.stats.reads++;
    const keep = listFilter(opts);
    const items: Resource<K>[] = [];
    for (const [k, r] of this.data) {
      if (k.startsWith(`${kind}/`) && keep(r)) items.push(clone(r) as Resource<K>);
    }
    items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    return { items, revision: String(this.rev) };
  }

  async apply(ops: WriteOp[]): Promise<(Resource | undefined)[]> {
    await this.check();
    this.beforeWrite?.(ops);
    // Validate every guard first: all or nothing.
    for (const op of ops) {
      if (op.op === 'delete') {
        const cur = this.data.get(this.key(op.kind, op.name));
        if (!cur) throw notFound(op.kind, op.name);
        if (op.revision !== undefined && cur.metadata.revision !== op.revision) { this.stats.conflicts++; throw conflict(op.kind, op.name, op.revision, cur.metadata.revision); }
      } else {
        const { kind, metadata } = op.res;
        const cur = this.data.get(this.key(kind, metadata.name));
        if (op.op === 'create' && cur) throw alreadyExists(kind, metadata.name);
        if (op.op === 'update') {
          if (!cur) throw notFound(kind, metadata.name);
          if (metadata.revision !== undefined && cur.metadata.revision !== metadata.revision) { this.stats.conflicts++; throw conflict(kind, metadata.name, metadata.revision, cur.metadata.revision); }
        }
      }
    }
    const rev = ++this.rev;
    this.stats.writes++;
    const out: (Resource | undefined)[] = [];
    for (const op of ops) {
      if (op.op === 'delete') {
        const k = this.key(op.kind, op.name);
        const cur = this.data.get(k)!;
        this.data.delete(k);
        this.emit(rev, { type: 'DELETED', object: clone({ ...cur, metadata: { ...cur.metadata, revision: String(rev) } }) });
        out.push(undefined);
      } else {
        const k = this.key(op.res.kind, op.res.metadata.name);
        const existed = this.data.has(k);
        const stored = clone(op.res);
        stored.metadata.revision = String(rev);
        if (!existed) stored.metadata.creationTimestamp = new Date().toISOString();
        else stored.metadata.creationTimestamp = this.data.get(k)!.metadata.creationTimestamp;
        this.data.set(k, stored);
        this.emit(rev, { type: existed ? 'MODIFIED' : 'ADDED', object: clone(stored) });
        out.push(clone(stored));
      }
    }
    return out;
  }

  private emit(rev: number, ev: WatchEvent): void {
    this.log.push({ rev, ev });
    for (const w of this.watchers) if (w.kind === ev.object.kind) {
      const h = w.h; const e = clone(ev);
      queueMicrotask(() => { if (this.watchers.has(w)) h.onEvent(e); });
    }
  }

  watch<K extends Kind>(kind: K, revision: string, handlers: WatchHandlers<K>): Watch {
    const w = { kind, h: handlers as unknown as WatchHandlers<Kind> };
    const from = Number(revision) || 0;
    const backlog = this.log.filter((l) => l.rev > from && l.ev.object.kind === kind).map((l) => clone(l.ev));
    this.watchers.add(w);
    queueMicrotask(() => { for (const e of backlog) if (this.watchers.has(w)) w.h.onEvent(e); });
    return { close: () => { this.watchers.delete(w); } };
  }

  async ping(): Promise<void> { await this.check(); }
  async close(): Promise<void> { this.watchers.clear(); }

  /** Every stored resource of a kind, synchronously (test assertions). */
  all<K extends Kind>(kind: K): Resource<K>[] {
    return [...this.data.values()].filter((r) => r.kind === kind).map((r) => clone(r) as Resource<K>);
  }
}
