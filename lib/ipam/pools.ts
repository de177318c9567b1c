// IPPool rules: defaults, validation (CIDR, block size, overlap, reserved ranges, modes,
// selector) and the once-only creation of a default pool when the cluster has none.
import { tryParseCidr, formatCidr, cidrOverlaps, parseCidr, type Cidr } from '../ip';
import { AlreadyExistsError, type Datastore, type IPPoolSpec, type Resource } from '../datastore/types';
import { PoolValidationError } from './errors';
import { parseSelector, SelectorError } from './selector';

export { selectorMatches } from './selector';

const RESERVED: { cidr: Cidr; why: string }[] = [
  { cidr: parseCidr('169.254.0.0/16'), why: 'link-local range 169.254.0.0/16 is reserved' },
  { cidr: parseCidr('fe80::/10'), why: 'link-local range fe80::/10 is reserved' },
];
const MODES = ['Always', 'CrossSubnet', 'Never'];

export const DEFAULT_IPV4_POOL = '10.244.0.0/16';
export const DEFAULT_IPV4_POOL_NAME = 'default-ipv4-ippool';
export const DEFAULT_IPV6_POOL_NAME = 'default-ipv6-ippool';

/** Default block prefix length of a family (26 / 122). */
export function defaultBlockSize(family: 4 | 6): number { return family === 4 ? 26 : 122; }

/** Family of a pool (from its CIDR). */
export function poolFamily(pool: Resource<'IPPool'>): 4 | 6 { return parseCidr(pool.spec.cidr, { loose: true }).family; }

/**
 * Validates a pool against the other pools and fills defaults; returns the normalized pool.
 * `previous` is the stored version when this is an update (blockSize is immutable).
 * Throws PoolValidationError naming the pool.
 */
export function validatePool(pool: Resource<'IPPool'>, existing: Resource<'IPPool'>[], previous?: Resource<'IPPool'>): Resource<'IPPool'> {
  const name = pool.metadata?.name;
  const fail = (why: string): never => { throw new PoolValidationError(name || '(unnamed)', why); };
  if (!name) fail('metadata.name is required');
  const s = (pool.spec ?? {}) as Partial<IPPoolSpec>;
  const cidr = tryParseCidr(String(s.cidr ?? ''));
  if (!cidr) {
    const loose = tryParseCidr(String(s.cidr ?? ''), { loose: true });
    return fail(loose ? `cidr ${s.cidr} has host bits set` : `invalid cidr "${s.cidr ?? ''}"`);
  }
  const max = cidr.family === 4 ? 32 : 128;
  const blockSize = s.blockSize ?? defaultBlockSize(cidr.family);
  if (!Number.isInteger(blockSize) || blockSize < cidr.len || blockSize > max) {
    fail(`blockSize ${blockSize} is outside the pool ${formatCidr(cidr)} (allowed ${cidr.len}..${max})`);
  }
  // Blocks are stored with a per-address free list: keep them to at most 4096 addresses
  // (Calico's lower bounds are the same: /20 for IPv4, /116 for IPv6).
  if (max - blockSize > 12) fail(`blockSize ${blockSize} makes blocks of more than 4096 addresses (minimum ${max - 12})`);
  for (const r of RESERVED) if (cidrOverlaps(r.cidr, cidr)) fail(`cidr ${formatCidr(cidr)} overlaps the ${r.why}`);
  const ipipMode = s.ipipMode ?? 'Never';
  const vxlanMode = s.vxlanMode ?? 'Never';
  if (!MODES.includes(ipipMode)) fail(`ipipMode "${ipipMode}" is not one of ${MODES.join(', ')}`);
  if (!MODES.includes(vxlanMode)) fail(`vxlanMode "${vxlanMode}" is not one of ${MODES.join(', ')}`);
  if (ipipMode !== 'Never' && vxlanMode !== 'Never') fail('ipipMode and vxlanMode cannot both be enabled');
  if (ipipMode !== 'Never' && cidr.family === 6) fail('ipipMode is IPv4 only');
  const nodeSelector = s.nodeSelector ?? 'all()';
  try { parseSelector(nodeSelector); } catch (err) {
    if (err instanceof SelectorError) fail(`nodeSelector: ${err.message}`);
    throw err;
  }
  if (previous && previous.spec.blockSize !== blockSize) {
    fail(`blockSize is immutable (stored ${previous.spec.blockSize}, requested ${blockSize})`);
  }
  if (previous && previous.spec.cidr !== formatCidr(cidr)) {
    fail(`cidr is immutable (stored ${previous.spec.cidr}, requested ${formatCidr(cidr)})`);
  }
  for (const other of existing) {
    if (other.metadata.name === name) continue;
    const oc = tryParseCidr(other.spec.cidr, { loose: true });
    if (oc && cidrOverlaps(oc, cidr)) fail(`cidr ${formatCidr(cidr)} overlaps pool ${other.metadata.name} (${other.spec.cidr})`);
  }
  return {
    kind: 'IPPool',
    metadata: { ...pool.metadata },
    spec: {
      cidr: formatCidr(cidr), blockSize, ipipMode, vxlanMode,
      natOutgoing: s.natOutgoing ?? false, nodeSelector, disabled: s.disabled ?? false,
    } as IPPoolSpec,
  };
}

/** Settings of the default pools, from the plugin config's `ipam` section. */
export interface DefaultPoolOptions {
  default_ipv4_pool?: string;
  default_ipv6_pool?: string;
}

/**
 * If no pool exists at all, creates the default IPv4 pool (config's `default_ipv4_pool` or
 * 10.244.0.0/16) and, if configured, the default IPv6 pool. Create-if-absent under fixed
 * names, so concurrent plugin processes create each at most once. Returns the pools now present.
 */
export async function ensureDefaultPool(ds: Datastore, opts: DefaultPoolOptions = {}): Promise<Resource<'IPPool'>[]> {
  const { items } = await ds.list('IPPool');
  if (items.length > 0) return items;
  const wanted: Resource<'IPPool'>[] = [
    { kind: 'IPPool', metadata: { name: DEFAULT_IPV4_POOL_NAME }, spec: { cidr: opts.default_ipv4_pool || DEFAULT_IPV4_POOL } as IPPoolSpec },
  ];
  if (opts.default_ipv6_pool) {
    wanted.push({ kind: 'IPPool', metadata: { name: DEFAULT_IPV6_POOL_NAME }, spec: { cidr: opts.default_ipv6_pool } as IPPoolSpec });
  }
  const made: Resource<'IPPool'>[] = [];
  for (const p of wanted) {
    const valid = validatePool(p, made);
    try {
      made.push(await ds.create(valid));
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      made.push(await ds.get('IPPool', p.metadata.name));
    }
  }
  return made;
}

/** Creates a pool after validating it against the stored ones. */
export async function createPool(ds: Datastore, pool: Resource<'IPPool'>): Promise<Resource<'IPPool'>> {
  const { items } = await ds.list('IPPool');
  return ds.create(validatePool(pool, items));
}

/** Updates a pool after validating it (blockSize and cidr immutable). */
export async function updatePool(ds: Datastore, pool: Resource<'IPPool'>): Promise<Resource<'IPPool'>> {
  const [{ items }, prev] = await Promise.all([ds.list('IPPool'), ds.get('IPPool', pool.metadata.name)]);
  const valid = validatePool(pool, items, prev);
  valid.metadata.revision = pool.metadata.revision ?? prev.metadata.revision;
  return ds.update(valid);
}
