// Helpers shared by the backends: label selector matching (the Kubernetes equality subset),
// list filtering, the typed errors each backend throws, named after the object, single writes
// as apply() batches, and the newline-delimited JSON reader of the streaming watches.
import {
  AlreadyExistsError, ConflictError, KINDS, NotFoundError,
  type Kind, type ListOptions, type Resource, type WriteOp,
} from './types';

type Requirement = { key: string; op: '=' | '!=' | 'exists' | '!exists'; value?: string };

/** Parses "a=b,c==d,e!=f,g,!h" into requirements; throws TypeError on bad syntax. */
export function parseLabelSelector(sel: string): Requirement[] {
  const out: Requirement[] = [];
  for (const raw of sel.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*([^=!\s]*)$/))) {
      out.push({ key: m[1], op: m[2] === '!=' ? '!=' : '=', value: m[3] });
    } else if ((m = part.match(/^!\s*([^=!\s]+)$/))) {
      out.push({ key: m[1], op: '!exists' });
    } else if ((m = part.match(/^([^=!\s]+)$/))) {
      out.push({ key: m[1], op: 'exists' });
    } else {
      throw new TypeError(`label selector ${JSON.stringify(sel)}: cannot parse ${JSON.stringify(part)}`);
    }
  }
  return out;
}

/** True when `labels` satisfy every requirement of the selector. */
export function labelsMatch(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case '=': if (!has || l[r.key] !== r.value) return false; break;
      case '!=': if (has && l[r.key] === r.value) return false; break;
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
