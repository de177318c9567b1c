// `brindlectl apply -f FILE|-` and `delete -f`: reads YAML or JSON documents, validates every
// one (schema, then pools against each other and the store) before writing anything, then
// creates or updates each with compare-and-swap retries.
import { readFileSync } from 'node:fs';
import type { Datastore, Kind, Resource, WriteOp } from '../datastore/types';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/types';
import { CtlError, SchemaError, UsageError } from './errors';
import { docLabel, expandLists, toResource } from './resources';
import { YamlError, parseYamlDocuments, type YamlDocument } from './yaml';

const MAX_TRIES = 8;

/** Reads `-f` sources ("-" is stdin) into documents; JSON or YAML per source. */
export function readSources(files: string[]): { value: unknown; line: number; source: string }[] {
  const out: { value: unknown; line: number; source: string }[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f === '-' ? 0 : f, 'utf8');
    } catch (err) {
      throw new CtlError(`cannot read ${f === '-' ? 'stdin' : f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const src = f === '-' ? 'stdin' : f;
    let docs: YamlDocument[];
    const t = text.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        docs = [{ value: JSON.parse(text), line: 1 }];
      } catch (err) {
        throw new CtlError(`${src}: invalid JSON: ${(err as Error).message}`);
      }
    } else {
      try {
        docs = parseYamlDocuments(text);
      } catch (err) {
        if (err instanceof YamlError) throw new CtlError(`${src}: ${err.message}`);
        throw err;
      }
    }
    for (const d of expandLists(docs)) out.push({ ...d, source: src });
  }
  if (!out.length) throw new CtlError('no documents to apply');
  return out;
}

/** Parses and validates every document; the first invalid one is the error. */
export function validateDocuments(docs: unknown[]): Resource[] {
  const seen = new Set<string>();
  return docs.map((d, i) => {
    const r = toResource(d, i + 1);
    const key = `${r.kind}/${r.metadata.name}`;
    if (seen.has(key)) throw new SchemaError(docLabel(i + 1, d), 'metadata.name', `${key} appears twice in the input`);
    seen.add(key);
    return r;
  });
}

/** Checks pools against each other and the stored ones (overlap, immutable fields). */
async function checkPools(ds: Datastore, resources: Resource[], docs: unknown[]): Promise<void> {
  const pools = resources.map((r, i) => ({ r, i })).filter((x) => x.r.kind === 'IPPool');
  if (!pools.length) return;
  const stored = (await ds.list('IPPool')).items;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  let validatePool: ((pool: Resource<'IPPool'>, existing: Resource<'IPPool'>[], previous?: Resource<'IPPool'>) => unknown) | undefined;
  try {
    validatePool = require('../ipam/pools').validatePool;
  } catch { /* pools module not present: the checks below still run */ }
  const { parseCidr, cidrOverlaps } = require('../ip') as typeof import('../ip');
  for (const { r, i } of pools) {
    const label = docLabel(i + 1, docs[i]);
    const pool = r as Resource<'IPPool'>;
    const old = stored.find((p) => p.metadata.name === pool.metadata.name);
    if (old) {
      if (old.spec.cidr !== pool.spec.cidr) throw new SchemaError(label, 'spec.cidr', `cannot change the CIDR of existing pool ${old.metadata.name} (${old.spec.cidr}); create a new pool`);
      if (old.spec.blockSize !== pool.spec.blockSize) throw new SchemaError(label, 'spec.blockSize', `cannot change the block size of existing pool ${old.metadata.name} (${old.spec.blockSize})`);
    }
    const others = [
      ...stored.filter((p) => p.metadata.name !== pool.metadata.name && !pools.some((x) => x.r.metadata.name === p.metadata.name)),
      ...pools.filter((x) => x.i !== i).map((x) => x.r as Resource<'IPPool'>),
    ];
    const mine = parseCidr(pool.spec.cidr);
    for (const o of others) {
      if (cidrOverlaps(mine, parseCidr(o.spec.cidr))) {
        throw new SchemaError(label, 'spec.cidr', `${pool.spec.cidr} overlaps pool ${o.metadata.name} (${o.spec.cidr})`);
      }
    }
    if (validatePool) {
      try {
        validatePool(pool, others, old);
      } catch (err) {
        const reason = (err as { reason?: unknown }).reason;
        if (typeof reason !== 'string') throw err;
        const m = /^(cidr|blockSize|ipipMode|vxlanMode|nodeSelector|natOutgoing|disabled)\b/.exec(reason);
        throw new SchemaError(label, m ? `spec.${m[1]}` : 'spec', reason);
      }
    }
  }
}

/** Merges an applied Node onto the stored one: the agent's fields (addresses, tunnel data) survive. */
function mergeNode(old: Resource<'Node'>, r: Resource<'Node'>): Resource<'Node'> {
  return {
    kind: 'Node',
    metadata: { ...old.metadata, labels: r.metadata.labels ?? old.metadata.labels, annotations: r.metadata.annotations ?? old.metadata.annotations },
    spec: { ...old.spec, ...r.spec, bgp: r.spec.bgp || old.spec.bgp ? { ...old.spec.bgp, ...r.spec.bgp } : undefined },
  };
}

export interface ApplyOutcome { kind: Kind; name: string; action: 'created' | 'configured' | 'unchanged' }

/** Writes the validated resources in one atomic batch, re-reading and retrying on conflicts. */
export async function applyResources(ds: Datastore, resources: Resource[], docs: unknown[]): Promise<ApplyOutcome[]> {
  await checkPools(ds, resources, docs);
  for (let attempt = 1; ; attempt++) {
    const ops: WriteOp[] = [];
    const outcomes: ApplyOutcome[] = [];
    for (const r of resources) {
      let old: Resource | undefined;
      try {
        old = await ds.get(r.kind, r.metadata.name);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      if (!old) {
        ops.push({ op: 'create', res: r });
        outcomes.push({ kind: r.kind, name: r.metadata.name, action: 'created' });
        continue;
      }
      const next: Resource = r.kind === 'Node' ? mergeNode(old as Resource<'Node'>, r as Resource<'Node'>)
        : { ...r, metadata: { ...old.metadata, labels: r.metadata.labels, annotations: r.metadata.annotations } };
      next.metadata.revision = old.metadata.revision;
      if (sameContent(old, next)) {
        outcomes.push({ kind: r.kind, name: r.metadata.name, action: 'unchanged' });
        continue;
      }
      ops.push({ op: 'update', res: next });
      outcomes.push({ kind: r.kind, name: r.metadata.name, action: 'configured' });
    }
    try {
      if (ops.length) await ds.apply(ops);
      return outcomes;
    } catch (err) {
      if ((err instanceof ConflictError || err instanceof AlreadyExistsError || err instanceof NotFoundError) && attempt < MAX_TRIES) continue;
      throw err;
    }
  }
}

function sameContent(a: Resource, b: Resource): boolean {
  return stable(a.spec) === stable(b.spec) && stable(a.metadata.labels ?? {}) === stable(b.metadata.labels ?? {}) &&
    stable(a.metadata.annotations ?? {}) === stable(b.metadata.annotations ?? {});
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).filter((k) => (v as any)[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${stable((v as any)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Deletes the named resources; a missing one is an error naming it. */
export async function deleteResources(ds: Datastore, targets: { kind: Kind; name: string }[]): Promise<void> {
  for (const t of targets) {
    if (t.kind === 'IPPool') await checkPoolEmpty(ds, t.name);
    try {
      await ds.delete(t.kind, t.name);
    } catch (err) {
      if (err instanceof NotFoundError) throw new CtlError(`${t.kind} "${t.name}" not found`);
      throw err;
    }
  }
}

/** A pool with addresses in use cannot be deleted (the pods would keep unroutable addresses). */
async function checkPoolEmpty(ds: Datastore, name: string): Promise<void> {
  let pool: Resource<'IPPool'>;
  try {
    pool = await ds.get('IPPool', name);
  } catch (err) {
    if (err instanceof NotFoundError) throw new CtlError(`IPPool "${name}" not found`);
    throw err;
  }
  const { parseCidr, cidrOverlaps } = require('../ip') as typeof import('../ip');
  const cidr = parseCidr(pool.spec.cidr);
  const blocks = (await ds.list('IPAMBlock')).items;
  let used = 0;
  for (const b of blocks) {
    if (!cidrOverlaps(cidr, parseCidr(b.spec.cidr))) continue;
    used += Object.values(b.spec.allocations ?? {}).filter(Boolean).length;
  }
  if (used) throw new CtlError(`IPPool "${name}" has ${used} address${used === 1 ? '' : 'es'} in use; disable it (spec.disabled: true) and release them first`);
}

export { UsageError };
