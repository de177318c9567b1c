// Helpers shared by the backends: label selector parsing and matching (Kubernetes syntax),
// list filtering, the typed errors each backend throws, named after the object, single writes
// as apply() batches, and the newline-delimited JSON reader of the streaming watches.
import {
  AlreadyExistsError, ConflictError, KINDS, LabelSelectorError, NotFoundError,
  type Datastore, type Kind, type ListOptions, type ReadOp, type ReadResult, type Resource, type WriteOp,
} from './types';

export type Requirement =
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

// Label keys are "[prefix/]name": prefix a DNS subdomain (<= 253), name <= 63 alphanumerics
// with - _ . inside; values are empty or like a name (Kubernetes' validation of labels).
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const TOKEN_CHAR = /[A-Za-z0-9_./-]/;

/**
 * Parses a Kubernetes label selector ("a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j") into
 * requirements (empty = everything). Throws LabelSelectorError naming the selector and offset.
 */
export function parseLabelSelector(sel: string): Requirement[] {
  const out: Requirement[] = [];
  let i = 0;
  const fail = (reason: string, at = i): never => { throw new LabelSelectorError(sel, at, reason); };
  const ws = () => { while (i < sel.length && /\s/.test(sel[i])) i++; };
  const token = (): string => {
    const from = i;
    while (i < sel.length && TOKEN_CHAR.test(sel[i])) i++;
    return sel.slice(from, i);
  };
  const key = (): string => {
    const at = i;
    const k = token();
    if (k === '') fail(sel[i] === undefined ? 'expected a label key, found the end' : `expected a label key, found ${JSON.stringify(sel[i])}`);
    const slash = k.indexOf('/');
    const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    if ((prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name)) {
      fail(`invalid label key ${JSON.stringify(k)}`, at);
    }
    return k;
  };
  const value = (): string => {
    const at = i;
    const v = token();
    if (v !== '' && (v.length > 63 || !LABEL_NAME.test(v))) fail(`invalid label value ${JSON.stringify(v)}`, at);
    return v;
  };
  const word = (w: string): boolean => {
    if (!sel.startsWith(w, i)) return false;
    const next = sel[i + w.length];
    if (next !== undefined && next !== '(' && !/\s/.test(next)) return false;
    i += w.length;
    return true;
  };
  ws();
  if (i === sel.length) return out;
  for (;;) {
    ws();
    if (sel[i] === '!' && sel[i + 1] !== '=') {
      i++;
      ws();
      out.push({ key: key(), op: '!exists' });
    } else {
      const k = key();
      ws();
      if (i === sel.length || sel[i] === ',') {
        out.push({ key: k, op: 'exists' });
      } else if (sel.startsWith('!=', i) || sel.startsWith('==', i) || sel[i] === '=') {
        const op = sel[i] === '!' ? '!=' : '=';
        i += sel.startsWith('==', i) || op === '!=' ? 2 : 1;
        ws();
        out.push({ key: k, op, value: value() });
      } else if (word('in') || word('notin')) {
        const op = sel.slice(0, i).endsWith('notin') ? 'notin' : 'in';
        ws();
        if (sel[i] !== '(') fail(`expected "(" after ${op}`);
        i++;
        const values: string[] = [];
        for (;;) {
          ws();
          values.push(value());
          ws();
          if (sel[i] === ',') { i++; continue; }
          if (sel[i] === ')') { i++; break; }
          fail(sel[i] === undefined ? `unterminated ${op} set` : `expected "," or ")" in ${op} set, found ${JSON.stringify(sel[i])}`);
        }
        if (values.length === 1 && values[0] === '') fail(`empty ${op} set`, i - 1);
        out.push({ key: k, op, values });
      } else {
        fail(`expected =, ==, !=, in, notin or "," after key ${JSON.stringify(k)}, found ${JSON.stringify(sel[i])}`);
      }
    }
    ws();
    if (i === sel.length) return out;
    if (sel[i] !== ',') fail(`expected "," between requirements, found ${JSON.stringify(sel[i])}`);
    i++;
    ws();
    if (i === sel.length) fail('trailing ","');
  }
}

/** True when `labels` satisfy every requirement of the selector (Kubernetes semantics). */
export function labelsMatch(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case '=': if (!has || l[r.key] !== r.value) return false; break;
      case '!=': if (has && l[r.key] === r.value) return false; break;
      case 'in': if (!has || !r.values.includes(l[r.key])) return false; break;
      // As in Kubernetes, notin (like !=) also selects objects without the key.
      case 'notin': if (has && r.values.includes(l[r.key])) return false; break;
      case 'exists': if (!has) return false; break;
      case '!exists': if (has) return false; break;
    }
  }
  return true;
}

/** Returns a predicate for ListOptions (prefix + label selector) over resources. */
export function listFilter(opts: ListOptions | undefined): (r: Resource) => boolean {
  const prefix = opts?.prefix ?? '';
  const reqs = opts?.labelSelector ? parseLabelSelector(opts.labelSelector) : [];
  return (r) => r.metadata.name.startsWith(prefix) && labelsMatch(reqs, r.metadata.labels);
}

/** Several reads at once: the backend's read() (one round trip) when it has one, else get/list in parallel. */
export async function readBatch(ds: Datastore, ops: ReadOp[]): Promise<ReadResult[]> {
  if (ds.read) return ds.read(ops);
  return Promise.all(ops.map(async (o): Promise<ReadResult> => {
    if (o.op === 'list') return (await ds.list(o.kind, o.opts)).items;
    try { return await ds.get(o.kind, o.name); } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }));
}

/** Throws TypeError unless `kind` is a Brindle kind and `name` a non-empty name. */
export function checkKey(kind: Kind, name: string): void {
  if (!KINDS.includes(kind)) throw new TypeError(`kind ${JSON.stringify(kind)}: unknown`);
  if (typeof name !== 'string' || name === '') throw new TypeError(`${kind}: empty name`);
}

export function notFound(kind: Kind, name: string): NotFoundError {
  return new NotFoundError(`${kind} ${name}: not found`);
}

export function alreadyExists(kind: Kind, name: string): AlreadyExistsError {
  return new AlreadyExistsError(`${kind} ${name}: already exists`);
}

export function conflict(kind: Kind, name: string, want?: string, have?: string): ConflictError {
  const detail = want !== undefined && have !== undefined ? ` (revision ${want}, stored ${have})` : '';
  return new ConflictError(`${kind} ${name}: revision conflict${detail}`);
}

/** The stored form of a resource: kind, metadata without revision, spec. */
export function stripRevision(res: Resource): Resource {
  const { revision: _rev, ...metadata } = res.metadata;
  return { kind: res.kind, metadata, spec: res.spec };
}

/** create/update/delete as one-op apply() batches, for a backend whose apply() is atomic. */
export abstract class ApplyWrites {
  abstract apply(ops: WriteOp[]): Promise<(Resource | undefined)[]>;

  async create<K extends Kind>(res: Resource<K>): Promise<Resource<K>> {
    return (await this.apply([{ op: 'create', res }]))[0] as Resource<K>;
  }

  async update<K extends Kind>(res: Resource<K>): Promise<Resource<K>> {
    return (await this.apply([{ op: 'update', res }]))[0] as Resource<K>;
  }

  async delete(kind: Kind, name: string, revision?: string): Promise<void> {
    await this.apply([{ op: 'delete', kind, name, revision }]);
  }
}

/**
 * A handler for the text chunks of a newline-delimited JSON stream (a watch): each non-empty
 * line goes to `onJson` parsed; a line that is not JSON goes to `onBad`, and the rest of
 * that chunk is dropped.
 */
export function ndjsonReader(onJson: (json: any) => void, onBad: () => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line === '') continue;
      let json: unknown;
      try { json = JSON.parse(line); } catch { onBad(); return; }
      onJson(json);
    }
  };
}
