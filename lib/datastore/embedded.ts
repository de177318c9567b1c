// The embedded backend: one SQLite database file shared by every process on the machine.
// Tables: resources (kind, name, rev, json); meta (the global revision counter and the
// compaction mark); changes (rev, kind, name, type, json), a bounded log that watches poll.
//
// Concurrency: WAL mode, so readers never block the single writer; every write runs in
// BEGIN IMMEDIATE (the write lock is taken up front, so two writers never both read then
// fail to upgrade) and waits for the lock up to the busy timeout.
// Crash safety: WAL with synchronous=NORMAL. A process killed mid-write (SIGKILL) loses only
// its uncommitted transaction: the commit frame either reached the WAL (in the OS page cache,
// which outlives the process) or did not, and readers ignore a partial tail. Only a power
// loss can roll back the last commits (never corrupting the file), an accepted trade for not
// paying an fsync per allocation.
import fs = require('node:fs');
import path = require('node:path');
import type BetterSqlite3 from 'better-sqlite3';
import { loadNativeAddon } from '../native/addon';
import { alreadyExists, ApplyWrites, checkKey, conflict, listFilter, notFound, stripRevision } from './common';
import {
  DatastoreError, ExpiredError, UnavailableError,
  type Datastore, type DatastoreSettings, type Kind, type ListOptions, type ListResult, type ReadOp, type ReadResult, type Resource,
  type Watch, type WatchEventType, type WatchHandlers, type WriteOp,
} from './types';
import { DEFAULT_EMBEDDED_PATH } from './settings';

const SCHEMA_VERSION = 1;
/** Changes kept for watches; older ones are pruned in steps of PRUNE_EVERY revisions. */
export const CHANGES_KEEP = 10000;
const PRUNE_EVERY = 500;
const WATCH_POLL_MS = 50;
/** Waiting for another process's write lock is not unreachability: allow at least this. */
const MIN_BUSY_MS = 10000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (k, v) VALUES ('rev', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS resources (
  kind TEXT NOT NULL, name TEXT NOT NULL, rev INTEGER NOT NULL, json TEXT NOT NULL,
  PRIMARY KEY (kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  rev INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, json TEXT NOT NULL);
PRAGMA user_version = ${SCHEMA_VERSION};
`;

type Row = { rev: number; json: string };
type ChangeRow = { rev: number; kind: string; name: string; type: WatchEventType; json: string };

export class EmbeddedDatastore extends ApplyWrites implements Datastore {
  readonly type = 'embedded' as const;
  readonly path: string;
  private readonly db: BetterSqlite3.Database;
  private readonly watches = new Set<EmbeddedWatch>();
  private readonly st: {
    getRow: BetterSqlite3.Statement<[string, string], Row>;
    getMeta: BetterSqlite3.Statement<[string], { v: number }>;
    setMeta: BetterSqlite3.Statement<[number, string]>;
    insert: BetterSqlite3.Statement<[string, string, number, string]>;
    update: BetterSqlite3.Statement<[number, string, string, string]>;
    remove: BetterSqlite3.Statement<[string, string]>;
    change: BetterSqlite3.Statement<[number, string, string, string, string]>;
    prune: BetterSqlite3.Statement<[number]>;
    listKind: BetterSqlite3.Statement<[string], Row>;
    changesAfter: BetterSqlite3.Statement<[number, string], ChangeRow>;
  };
  private readonly writeTx: BetterSqlite3.Transaction<(ops: WriteOp[]) => (Resource | undefined)[]>;
  private readonly listTx: BetterSqlite3.Transaction<(kind: string) => { rows: Row[]; rev: number }>;
  private readonly readTx: BetterSqlite3.Transaction<(ops: ReadOp[]) => (Row | Row[] | undefined)[]>;

  constructor(settings: Pick<DatastoreSettings, 'embeddedPath' | 'timeoutMs'> = {}) {
    super();
    this.path = settings.embeddedPath ?? DEFAULT_EMBEDDED_PATH;
    const busyMs = Math.max(settings.timeoutMs ?? 0, MIN_BUSY_MS);
    this.db = wrapSqlite(`open database ${this.path}`, () => {
      const dir = path.dirname(this.path);
      if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const Database = require('better-sqlite3') as typeof BetterSqlite3;
      const db = new Database(this.path, {
        timeout: busyMs,
        nativeBinding: loadNativeAddon('better_sqlite3') as unknown as string,
      });
      // SQLite answers SQLITE_BUSY without calling the busy handler while another connection
      // opens the WAL index as the first one (recovery, or its switch to WAL): with many plugin
      // processes starting at once and none holding the database, that happens. Retried here
      // until the same deadline the busy handler has.
      const deadline = Date.now() + busyMs;
      untilNotBusy(deadline, () => {
        if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        if (db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
          db.transaction(() => db.exec(SCHEMA)).immediate();
        }
      });
      return db;
    });
    const db = this.db;
    this.st = {
      getRow: db.prepare('SELECT rev, json FROM resources WHERE kind = ? AND name = ?'),
      getMeta: db.prepare('SELECT v FROM meta WHERE k = ?'),
      setMeta: db.prepare('UPDATE meta SET v = ? WHERE k = ?'),
      insert: db.prepare('INSERT INTO resources (kind, name, rev, json) VALUES (?, ?, ?, ?)'),
      update: db.prepare('UPDATE resources SET rev = ?, json = ? WHERE kind = ? AND name = ?'),
      remove: db.prepare('DELETE FROM resources WHERE kind = ? AND name = ?'),
      change: db.prepare('INSERT INTO changes (rev, kind, name, type, json) VALUES (?, ?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM changes WHERE rev <= ?'),
      listKind: db.prepare('SELECT rev, json FROM resources WHERE kind = ? ORDER BY name'),
      changesAfter: db.prepare('SELECT rev, kind, name, type, json FROM changes WHERE rev > ? AND kind = ? ORDER BY rev LIMIT 1000'),
    };
    this.writeTx = db.transaction((ops: WriteOp[]) => this.writeOps(ops));
    this.readTx = db.transaction((ops: ReadOp[]) => ops.map((o) => (o.op === 'get'
      ? this.st.getRow.get(o.kind, o.name)
      : this.st.listKind.all(o.kind))));
    this.listTx = db.transaction((kind: string) => {
      const rows = this.st.listKind.all(kind);
      return { rows, rev: this.st.getMeta.get('rev')!.v };
    });
  }

  async get<K extends Kind>(kind: K, name: string): Promise<Resource<K>> {
    checkKey(kind, name);
    const row = wrapSqlite(`get ${kind} ${name}`, () => this.st.getRow.get(kind, name));
    if (!row) throw notFound(kind, name);
    return fromRow<K>(row);
  }

  async list<K extends Kind>(kind: K, opts?: ListOptions): Promise<ListResult<K>> {
    checkKey(kind, '-');
    const keep = listFilter(opts);
    const { rows, rev } = wrapSqlite(`list ${kind}`, () => this.listTx.deferred(kind));
    const items = rows.map((r) => fromRow<K>(r)).filter(keep) as Resource<K>[];
    return { items, revision: String(rev) };
  }

  /** Every read in one read transaction (one consistent snapshot). */
  async read(ops: ReadOp[]): Promise<ReadResult[]> {
    const keeps = ops.map((o) => {
      checkKey(o.kind, o.op === 'get' ? o.name : '-');
      return o.op === 'list' ? listFilter(o.opts) : undefined;
    });
    const rows = wrapSqlite('read', () => this.readTx.deferred(ops));
    return ops.map((o, i) => {
      const r = rows[i];
      if (o.op === 'get') return r ? fromRow(r as Row) : undefined;
      return (r as Row[]).map((x) => fromRow(x)).filter(keeps[i]!);
    });
  }

  /** All ops in one BEGIN IMMEDIATE transaction: all or nothing. */
  async apply(ops: WriteOp[]): Promise<(Resource | undefined)[]> {
    for (const op of ops) {
      if (op.op === 'delete') checkKey(op.kind, op.name);
      else checkKey(op.res.kind, op.res.metadata?.name);
    }
    if (ops.length === 0) return [];
    return wrapSqlite('write', () => this.writeTx.immediate(ops));
  }

  watch<K extends Kind>(kind: K, revision: string, handlers: WatchHandlers<K>): Watch {
    checkKey(kind, '-');
    const w = new EmbeddedWatch(this, kind, Number(revision) || 0, handlers as WatchHandlers<Kind>);
    this.watches.add(w);
    return w;
  }

  async ping(): Promise<void> {
    wrapSqlite('ping', () => this.st.getMeta.get('rev'));
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) w.close();
    if (this.db.open) this.db.close();
  }

  /**
   * For a process about to exit (a plugin run): stops watches but leaves the connection for
   * the exit to drop, as a killed process would (safe: see the header). Closing would make
   * the last connection checkpoint and delete the WAL (two fsyncs), and the next process
   * re-create it (two more, inside the node's IPAM lock): ~20-40 ms per plugin run here.
   */
  leaveForExit(): void {
    for (const w of [...this.watches]) w.close();
  }

  /** @internal */
  dropWatch(w: EmbeddedWatch): void { this.watches.delete(w); }

  /** @internal Changes after `rev` for `kind`, or null when `rev` is older than the log keeps. */
  changesSince(kind: Kind, rev: number): ChangeRow[] | null {
    const compacted = this.st.getMeta.get('compacted')!.v;
    if (rev < compacted) return null;
    return this.st.changesAfter.all(rev, kind);
  }

  private writeOps(ops: WriteOp[]): (Resource | undefined)[] {
    const st = this.st;
    const start = st.getMeta.get('rev')!.v;
    let rev = start;
    const out: (Resource | undefined)[] = [];
    for (const op of ops) {
      if (op.op === 'delete') {
        const row = st.getRow.get(op.kind, op.name);
        if (!row) throw notFound(op.kind, op.name);
        if (op.revision !== undefined && op.revision !== String(row.rev)) {
          throw conflict(op.kind, op.name, op.revision, String(row.rev));
        }
        rev++;
        st.remove.run(op.kind, op.name);
        st.change.run(rev, op.kind, op.name, 'DELETED', row.json);
        out.push(undefined);
        continue;
      }
      const { kind, metadata: { name } } = op.res;
      const row = st.getRow.get(kind, name);
      const stored = stripRevision(op.res);
      let type: WatchEventType;
      if (op.op === 'create') {
        if (row) throw alreadyExists(kind, name);
        stored.metadata.creationTimestamp = new Date().toISOString();
        type = 'ADDED';
      } else {
        if (!row) throw notFound(kind, name);
        const want = op.res.metadata.revision;
        if (want !== undefined && want !== String(row.rev)) throw conflict(kind, name, want, String(row.rev));
        type = 'MODIFIED';
      }
      rev++;
      const json = JSON.stringify(stored);
      if (row) st.update.run(rev, json, kind, name);
      else st.insert.run(kind, name, rev, json);
      st.change.run(rev, kind, name, type, json);
      out.push(fromRow({ rev, json }));
    }
    st.setMeta.run(rev, 'rev');
    if (Math.floor(rev / PRUNE_EVERY) !== Math.floor(start / PRUNE_EVERY) && rev > CHANGES_KEEP) {
      const upTo = rev - CHANGES_KEEP;
      st.prune.run(upTo);
      st.setMeta.run(upTo, 'compacted');
    }
    return out;
  }
}

/** Polls the changes log; one timer per watch, stopped by close(). */
class EmbeddedWatch implements Watch {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly ds: EmbeddedDatastore, private readonly kind: Kind, private rev: number,
    private readonly handlers: WatchHandlers<Kind>) {
    this.timer = setInterval(() => this.poll(), WATCH_POLL_MS);
    setImmediate(() => this.poll());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.ds.dropWatch(this);
  }

  private poll(): void {
    while (!this.closed) {
      let rows: ChangeRow[] | null;
      try {
        rows = this.ds.changesSince(this.kind, this.rev);
      } catch (err) {
        // A busy or vanished database: report and stop; the watcher relists.
        this.close();
        this.handlers.onError(toDatastoreError(`watch ${this.kind}`, err));
        return;
      }
      if (rows === null) {
        this.close();
        this.handlers.onError(new ExpiredError(`watch ${this.kind} from revision ${this.rev}: revision compacted`));
        return;
      }
      for (const r of rows) {
        if (this.closed) return;
        this.rev = r.rev;
        this.handlers.onEvent({ type: r.type, object: fromRow({ rev: r.rev, json: r.json }) });
      }
      if (rows.length < 1000) return;
    }
  }
}

function fromRow<K extends Kind>(row: Row): Resource<K> {
  const res = JSON.parse(row.json) as Resource<K>;
  res.metadata.revision = String(row.rev);
  return res;
}

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|PROTOCOL|READONLY|FULL)/;

function toDatastoreError(what: string, err: unknown): Error {
  if (err instanceof DatastoreError || err instanceof TypeError) return err;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && UNAVAILABLE.test(code)) {
    return new UnavailableError(`${what}: ${code.toLowerCase()}: ${(err as Error).message}`);
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return new DatastoreError(`${what}: ${code.toLowerCase()}: ${(err as Error).message}`);
  }
  return err as Error;
}

/** Runs a synchronous SQLite step, turning SQLite errors into datastore errors. */
let pause: Int32Array | undefined;

/** Runs `fn` again, after 1–4 ms, while SQLite says SQLITE_BUSY*, until `deadline` (then throws it). */
function untilNotBusy(deadline: number, fn: () => void): void {
  for (;;) {
    try {
      fn();
      return;
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait((pause ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1 + Math.random() * 3);
    }
  }
}

function wrapSqlite<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toDatastoreError(what, err);
  }
}
