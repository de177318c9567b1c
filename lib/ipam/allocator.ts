// The block allocator: addresses come from blocks affine to the node, then from a newly
// claimed block (affinity pending -> block created -> affinity confirmed; the block's
// creation decides ownership), then, unless strictAffinity, borrowed from other nodes'
// blocks. Every write is a revision-guarded apply() of block + handle with bounded retries.
import { parseCidr, parseIp, tryParseIp, cidrContains, formatCidr, type Cidr } from '../ip';
import {
  AlreadyExistsError, ConflictError, NotFoundError,
  type BlockAllocation, type Datastore, type IPAMConfigSpec, type Resource, type WriteOp,
} from '../datastore/types';
import {
  affinityName, affinityPrefix, allocateFrom, allocateOrdinal, blockCount, blockName, blockNode,
  blockOf, blockSizeOf, freeOrdinal, inUse, ipOrdinal, newBlockSpec, nthBlock, ordinalIp,
} from './blocks';
import { BlockLimitError, CasRetriesError, IpUnavailableError, NoPoolForNodeError, PoolExhaustedError } from './errors';
import { readBatch } from '../datastore/common';
import type { BlockHints } from './hints';
import { ensureDefaultPool, type DefaultPoolOptions } from './pools';
import { selectorMatches } from './selector';

export type Attrs = BlockAllocation['attrs'];
type Block = Resource<'IPAMBlock'>;
type Handle = Resource<'IPAMHandle'>;
type Pool = Resource<'IPPool'>;
type Affinity = Resource<'BlockAffinity'>;

export interface IpamOptions {
  /** Compare-and-swap attempts before CasRetriesError (default 20). */
  maxRetries?: number;
  /** Upper bound of the jittered backoff between attempts, ms (default 40). */
  maxBackoffMs?: number;
  /** Cross-process lock around a node's allocations (the plugin passes a file lock). */
  lock?: <T>(node: string, fn: () => Promise<T>) => Promise<T>;
  /** Creates these default pools when the cluster has no pool at all. */
  defaultPools?: DefaultPoolOptions;
  /**
   * Long-lived allocators (agent, benchmarks): keep IPAMConfig, pools and node labels this
   * long, remember the node's blocks between calls and create handles optimistically (an
   * existing handle shows up as a failed create). Compare-and-swap keeps this safe: a stale
   * block or handle only costs a retry. 0 (default) = read everything on every call.
   */
  cacheTtlMs?: number;
  /**
   * Where a node's search for a free block starts: 'hashed' (default) at a hash of the node
   * name, so nodes claiming at once mostly pick different blocks; 'ordered' at the pool's
   * first block (deterministic layouts in tests and small labs).
   */
  blockSearch?: 'hashed' | 'ordered';
  /**
   * Uncached allocators read what an ADD needs in two batched reads (config, pools, node,
   * handle and affinities; then their blocks), one round trip each where the backend has
   * Datastore.read. false = one request per object (kept for A/B benchmarks). Default true.
   */
  batchReads?: boolean;
  /**
   * Where the uncached path remembers a node's blocks between processes (the plugin: files
   * in its run dir): hinted blocks are read in the first batch, so an ADD whose node owns no
   * new block since the last one takes one read round trip and one write.
   */
  blockHints?: BlockHints;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** FNV-1a (32 bits, mixed) of a node name, scaled to a block index in [0, total). */
export function blockSearchStart(node: string, total: bigint): bigint {
  let h = 0x811c9dc5;
  for (let i = 0; i < node.length; i++) { h ^= node.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  // murmur3's finaliser: FNV's high bits barely change between "node1" and "node2".
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16; h >>>= 0;
  return (BigInt(h) * total) >> 32n;
}

export interface AutoAssignArgs {
  handle: string;
  node: string;
  num4?: number;
  num6?: number;
  attrs?: Attrs;
  /** Restrict to these pools (names or CIDRs). */
  pools4?: string[];
  pools6?: string[];
}

export interface Assignment { ip: string; family: 4 | 6; block: string; seq: number; handle: string }

export interface AutoAssignResult {
  /** Plain addresses ("10.244.0.5"). */
  ips4: string[];
  ips6: string[];
  /** Each address with its block CIDR and sequence number. */
  assignments: Assignment[];
}

export interface ReleaseItem { ip: string; handle?: string; seq?: number }

export interface ReleaseResult { released: string[]; skipped: { ip: string; reason: string }[] }

export interface BlockUsage { cidr: string; node?: string; size: number; inUse: number; free: number }
export interface PoolUsage { name: string; cidr: string; disabled: boolean; size: number; blocks: number; inUse: number; free: number; blockUsage: BlockUsage[] }

export type ProblemKind =
  | 'allocationWithoutHandle'   // a block allocation names a handle that does not exist
  | 'handleWithoutAllocation'   // a handle names a block that holds fewer of its addresses
  | 'blockWithoutAffinity'      // a block affine to a node without that node's confirmed affinity
  | 'affinityWithoutBlock'      // an affinity (pending or confirmed) whose block is missing or another node's
  | 'duplicateOwnership'        // two nodes claim one block
  | 'duplicateAddress'          // one address allocated twice (overlapping blocks)
  | 'leakedHandle';             // a handle not in the caller's set of valid attachments

export interface Problem { kind: ProblemKind; message: string; handle?: string; block?: string; node?: string; ip?: string }
export interface ConsistencyReport { ok: boolean; problems: Problem[]; leakedHandles: string[]; blocks: number; handles: number; allocations: number }

/** Counters of one Ipam instance (for benchmarks and tests). */
export interface IpamStats { allocations: number; conflicts: number; retries: number; claims: number; borrows: number }

const DEFAULT_CONFIG: IPAMConfigSpec = { strictAffinity: false, maxBlocksPerHost: 0, autoAllocateBlocks: true };

interface Ctx {
  node: string;
  config: IPAMConfigSpec;
  pools: Pool[];
  labels: Record<string, string>;
}

function cmpCidr(a: string, b: string): number {
  const x = parseCidr(a), y = parseCidr(b);
  return x.family !== y.family ? x.family - y.family : x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

function poolMatches(p: Pool, wanted: string[]): boolean {
  return wanted.includes(p.metadata.name) || wanted.includes(p.spec.cidr);
}

/**
 * What an uncached ADD reads up front (Ipam.prefetch): the handle, the node's affinities and
 * the blocks of both, as of one moment. Only the first attempt uses it; every write stays
 * revision-guarded, so a stale picture costs a retry, never a duplicate.
 */
interface Prefetch {
  handle: Handle | null;
  affinities: Affinity[];
  /** Block CIDR → block (undefined: absent), for every affinity's and the handle's blocks. */
  blocks: Map<string, Block | undefined>;
}

/** A handle as last read or written: null = absent, undefined = unknown. */
interface HandleState { res: Handle | null | undefined; optimistic?: boolean }

/** Retry signal inside the allocation loops: a guarded write lost a race; re-read and try again. */
class Retry extends Error {}

export class Ipam {
  readonly stats: IpamStats = { allocations: 0, conflicts: 0, retries: 0, claims: 0, borrows: 0 };
  private readonly maxRetries: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly nodeQueues = new Map<string, Promise<unknown>>();
  private readonly ctxCache = new Map<string, { at: number; ctx: Promise<Ctx> }>();
  /** The node's own blocks as last read or written (cacheTtlMs > 0). */
  private readonly blockCache = new Map<string, Map<string, Block>>();

  constructor(readonly ds: Datastore, private readonly opts: IpamOptions = {}) {
    this.maxRetries = opts.maxRetries ?? 20;
    this.maxBackoffMs = opts.maxBackoffMs ?? 40;
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Runs fn exclusively for this node: in-process queue, then the cross-process lock if any. */
  private withNode<T>(node: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.nodeQueues.get(node) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => (this.opts.lock ? this.opts.lock(node, fn) : fn()));
    const tail = run.catch(() => undefined);
    this.nodeQueues.set(node, tail);
    void tail.then(() => { if (this.nodeQueues.get(node) === tail) this.nodeQueues.delete(node); });
    return run;
  }

  /** Bounded, jittered retry of `fn` while it throws Retry (or a write conflict). */
  private async retrying<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (!(err instanceof Retry || err instanceof ConflictError || err instanceof AlreadyExistsError)) throw err;
        this.stats.conflicts++;
        if (attempt + 1 >= this.maxRetries) throw new CasRetriesError(what, attempt + 1);
        this.stats.retries++;
        const cap = Math.min(this.maxBackoffMs, 2 << attempt);
        await this.sleep(Math.floor(this.random() * cap));
      }
    }
  }

  private async getOr<K extends 'IPAMBlock' | 'IPAMHandle' | 'IPAMConfig' | 'Node' | 'BlockAffinity'>(kind: K, name: string): Promise<Resource<K> | undefined> {
    try { return await this.ds.get(kind, name); } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private context(node: string): Promise<Ctx> {
    const ttl = this.opts.cacheTtlMs ?? 0;
    if (ttl <= 0) return this.readContext(node);
    const hit = this.ctxCache.get(node);
    if (hit && Date.now() - hit.at < ttl) return hit.ctx;
    const ctx = this.readContext(node);
    this.ctxCache.set(node, { at: Date.now(), ctx });
    ctx.catch(() => this.ctxCache.delete(node));
    return ctx;
  }

  private cacheBlock(node: string, b: Block | undefined): void {
    if (!(this.opts.cacheTtlMs ?? 0) || !b || blockNode(b.spec) !== node) return;
    let m = this.blockCache.get(node);
    if (!m) this.blockCache.set(node, (m = new Map()));
    m.set(b.spec.cidr, b);
  }

  private async readContext(node: string): Promise<Ctx> {
    const [cfg, poolList, nodeRes] = await Promise.all([
      this.getOr('IPAMConfig', 'default'),
      this.ds.list('IPPool'),
      this.getOr('Node', node),
    ]);
    return this.makeContext(node, cfg, poolList.items, nodeRes);
  }

  private async makeContext(node: string, cfg: Resource<'IPAMConfig'> | undefined, pools: Pool[], nodeRes: Resource<'Node'> | undefined): Promise<Ctx> {
    if (pools.length === 0 && this.opts.defaultPools) pools = await ensureDefaultPool(this.ds, this.opts.defaultPools);
    return { node, config: { ...DEFAULT_CONFIG, ...(cfg?.spec ?? {}) }, pools, labels: nodeRes?.metadata.labels ?? {} };
  }

  /**
   * The uncached ADD's reads in batches (one round trip each on etcd, instead of one per
   * object): config, pools, node, handle, the node's affinities and the hinted blocks; then
   * the blocks that were not hinted (none when the hint is right).
   */
  private async prefetch(node: string, handle: string): Promise<{ ctx: Ctx; pre: Prefetch }> {
    // At most 64 well-formed CIDRs: the file is only a hint.
    const hinted = (this.opts.blockHints?.get(node) ?? []).filter((c) => { try { parseCidr(c); return true; } catch { return false; } }).slice(0, 64);
    const getBlock = (c: string) => ({ op: 'get' as const, kind: 'IPAMBlock' as const, name: blockName(c) });
    const [cfg, pools, nodeRes, h, affs, ...hintedBlocks] = await readBatch(this.ds, [
      { op: 'get', kind: 'IPAMConfig', name: 'default' },
      { op: 'list', kind: 'IPPool' },
      { op: 'get', kind: 'Node', name: node },
      { op: 'get', kind: 'IPAMHandle', name: handle },
      { op: 'list', kind: 'BlockAffinity', opts: { prefix: affinityPrefix(node) } },
      ...hinted.map(getBlock),
    ]);
    const affinities = (affs as Affinity[]).filter((a) => a.spec.node === node);
    const hres = (h as Handle | undefined) ?? null;
    const own = affinities.filter((a) => a.spec.state !== 'pendingDeletion').map((a) => a.spec.cidr).sort(cmpCidr);
    const cidrs = [...new Set([...own, ...Object.keys(hres?.spec.block ?? {})])];
    const blocks = new Map<string, Block | undefined>(hinted.map((c, i) => [c, hintedBlocks[i] as Block | undefined]));
    const missing = cidrs.filter((c) => !blocks.has(c));
    const [ctx, got] = await Promise.all([
      this.makeContext(node, cfg as Resource<'IPAMConfig'> | undefined, pools as Pool[], nodeRes as Resource<'Node'> | undefined),
      missing.length ? readBatch(this.ds, missing.map(getBlock)) : [],
    ]);
    missing.forEach((c, i) => blocks.set(c, got[i] as Block | undefined));
    if (this.opts.blockHints && own.join(',') !== [...hinted].sort(cmpCidr).join(',')) this.opts.blockHints.set(node, own);
    return { ctx, pre: { handle: hres, affinities, blocks } };
  }

  /** Enabled pools of a family that select the node, restricted to `wanted` when given. */
  private eligiblePools(ctx: Ctx, family: 4 | 6, wanted?: string[]): Pool[] {
    const fam = ctx.pools.filter((p) => parseCidr(p.spec.cidr, { loose: true }).family === family);
    const restricted = wanted?.length ? fam.filter((p) => poolMatches(p, wanted)) : fam;
    const out = restricted.filter((p) => !p.spec.disabled && selectorMatches(p.spec.nodeSelector, ctx.labels));
    if (out.length === 0) throw new NoPoolForNodeError(ctx.node, family, wanted ?? []);
    return out.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  /** Affinities of a node (exact node match; the name prefix may match longer node names). */
  private async nodeAffinities(node: string): Promise<Affinity[]> {
    const { items } = await this.ds.list('BlockAffinity', { prefix: affinityPrefix(node) });
    return items.filter((a) => a.spec.node === node);
  }

  /**
   * Allocates `num4` IPv4 and `num6` IPv6 addresses for `handle` on `node`. A handle that
   * already holds addresses gets those back (repeated ADD). If one family fails, what this
   * call allocated for the other is released.
   */
  autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult> {
    return this.withNode(args.node, async () => {
      const batched = (this.opts.cacheTtlMs ?? 0) <= 0 && this.opts.batchReads !== false;
      const { ctx, pre } = batched ? await this.prefetch(args.node, args.handle) : { ctx: await this.context(args.node), pre: undefined };
      const out: AutoAssignResult = { ips4: [], ips6: [], assignments: [] };
      const made: Assignment[] = [];
      const hs: HandleState = { res: undefined, optimistic: (this.opts.cacheTtlMs ?? 0) > 0 };
      try {
        for (const family of [4, 6] as const) {
          const n = (family === 4 ? args.num4 : args.num6) ?? 0;
          if (n <= 0) continue;
          const pools = this.eligiblePools(ctx, family, family === 4 ? args.pools4 : args.pools6);
          const { held, fresh } = await this.assignFamily(ctx, family, n, args.handle, args.attrs, pools, hs, pre);
          made.push(...fresh);
          for (const a of [...held, ...fresh]) {
            (family === 4 ? out.ips4 : out.ips6).push(a.ip);
            out.assignments.push(a);
          }
        }
      } catch (err) {
        if (made.length) await this.releaseIpsUnlocked(made.map((a) => ({ ip: a.ip, handle: a.handle, seq: a.seq }))).catch(() => undefined);
        throw err;
      }
      return out;
    });
  }

  /** Addresses `handle` holds now (from its blocks), optionally of one family. */
  async handleAssignments(handle: string, family?: 4 | 6): Promise<Assignment[]> {
    return (await this.readHandle(handle, family)).held;
  }

  private async readHandle(handle: string, family?: 4 | 6, pre?: Prefetch): Promise<{ res: Handle | null; held: Assignment[] }> {
    const h = pre ? pre.handle : await this.getOr('IPAMHandle', handle);
    if (!h) return { res: null, held: [] };
    const cidrs = Object.keys(h.spec.block).filter((c) => !family || parseCidr(c).family === family).sort(cmpCidr);
    const blocks = pre ? cidrs.map((c) => pre.blocks.get(c)) : await this.readBlocks(cidrs);
    const held: Assignment[] = [];
    for (const b of blocks) {
      if (!b) continue;
      const c = parseCidr(b.spec.cidr);
      for (const a of Object.values(b.spec.allocations)) {
        if (a.handle === handle) held.push({ ip: ordinalIp(c, a.ordinal), family: c.family, block: b.spec.cidr, seq: a.seq, handle });
      }
    }
    return { res: h, held };
  }

  /** Blocks by CIDR, batched (undefined where absent). */
  private async readBlocks(cidrs: string[]): Promise<(Block | undefined)[]> {
    if (cidrs.length === 0) return [];
    if (this.opts.batchReads === false) return Promise.all(cidrs.map((c) => this.getOr('IPAMBlock', blockName(c))));
    return await readBatch(this.ds, cidrs.map((c) => ({ op: 'get', kind: 'IPAMBlock', name: blockName(c) }))) as (Block | undefined)[];
  }

  private async assignFamily(ctx: Ctx, family: 4 | 6, n: number, handle: string, attrs: Attrs, pools: Pool[], hs: HandleState, pre?: Prefetch): Promise<{ held: Assignment[]; fresh: Assignment[] }> {
    let held: Assignment[] = [];
    // Optimistic (cached) mode assumes a new handle and checks only if its create fails.
    let checked = false;
    const check = async (p?: Prefetch) => {
      const r = await this.readHandle(handle, family, p);
      held = r.held; checked = true;
      // A handle this call already wrote (the other family) is newer than the prefetched one.
      if (!p || hs.res === undefined) hs.res = r.res;
    };
    if (pre) await check(pre);
    else if (hs.optimistic && hs.res === undefined) hs.res = null;
    else await check();
    if (held.length >= n) return { held: held.slice(0, n), fresh: [] };
    const fresh: Assignment[] = [];
    const need = () => n - held.length - fresh.length;
    const poolCidrs = pools.map((p) => parseCidr(p.spec.cidr));
    const inPools = (cidr: string) => { const c = parseCidr(cidr); return poolCidrs.some((p) => p.family === c.family && p.len <= c.len && cidrContains(p, c)); };
    const names = pools.map((p) => p.metadata.name);

    await this.retrying(`allocate ipv${family} for ${handle} on node ${ctx.node}`, async (attempt) => {
      if (attempt > 0) {
        hs.res = undefined;
        this.blockCache.delete(ctx.node);
        if (!checked) {
          await check();
          if (need() <= 0) return;
        }
      }
      // 1. The node's affine blocks (remembered ones first, when caching).
      const cached = [...(this.blockCache.get(ctx.node)?.values() ?? [])]
        .filter((b) => parseCidr(b.spec.cidr).family === family && b.spec.unallocated.length > 0 && inPools(b.spec.cidr));
      let mine: Block[];
      if (cached.length && need() <= cached.reduce((s, b) => s + b.spec.unallocated.length, 0)) {
        mine = cached.sort((x, y) => cmpCidr(x.spec.cidr, y.spec.cidr));
      } else {
        // Not enough room in the remembered blocks: look at the full, fresh picture.
        this.blockCache.delete(ctx.node);
        mine = attempt === 0 && pre
          ? await this.affineBlocks(ctx.node, pre.affinities, family, pre.blocks)
          : await this.affineBlocks(ctx.node, await this.nodeAffinities(ctx.node), family);
        for (const b of mine) this.cacheBlock(ctx.node, b);
      }
      for (const b of mine) {
        if (need() <= 0) break;
        if (!inPools(b.spec.cidr) || b.spec.unallocated.length === 0) continue;
        fresh.push(...await this.writeAllocation(b, need(), handle, attrs, hs));
      }
      if (need() <= 0) return;
      // 2. Claim new blocks.
      let limited: BlockLimitError | undefined;
      let owned = mine.length;
      while (need() > 0 && ctx.config.autoAllocateBlocks) {
        if (ctx.config.maxBlocksPerHost > 0 && owned >= ctx.config.maxBlocksPerHost) {
          limited = new BlockLimitError(ctx.node, owned, ctx.config.maxBlocksPerHost, names);
          break;
        }
        const got = await this.claimBlock(ctx, pools, attempt > 0, handle, need(), attrs, hs);
        if (!got) break;
        owned++;
        fresh.push(...got);
      }
      if (need() <= 0) return;
      // 3. Borrow from other nodes' blocks.
      if (!ctx.config.strictAffinity) {
        const { items } = await this.ds.list('IPAMBlock');
        const candidates = items.filter((b) => parseCidr(b.spec.cidr).family === family && inPools(b.spec.cidr)
          && b.spec.unallocated.length > 0 && !b.spec.deleted && blockNode(b.spec) !== ctx.node);
        candidates.sort((a, b) => b.spec.unallocated.length - a.spec.unallocated.length || cmpCidr(a.spec.cidr, b.spec.cidr));
        for (const b of candidates) {
          if (need() <= 0) break;
          const got = await this.writeAllocation(b, need(), handle, { ...(attrs ?? {}), node: ctx.node }, hs);
          this.stats.borrows += got.length;
          fresh.push(...got);
        }
        if (need() <= 0) return;
      }
      if (limited) throw limited;
      throw new PoolExhaustedError(names, ctx.node, family);
    });
    this.stats.allocations += fresh.length;
    if (held.length > n - fresh.length) held = held.slice(0, n - fresh.length);
    return { held, fresh };
  }

  /**
   * The node's usable blocks of a family, oldest first. Repairs what a crash mid-claim left:
   * a pending affinity whose block this node created is confirmed; one whose block is
   * missing or another node's is deleted.
   */
  private async affineBlocks(node: string, affinities: Affinity[], family: 4 | 6, known?: Map<string, Block | undefined>): Promise<Block[]> {
    const fam = affinities.filter((a) => parseCidr(a.spec.cidr).family === family && a.spec.state !== 'pendingDeletion');
    const blocks = known ? fam.map((a) => known.get(a.spec.cidr)) : await this.readBlocks(fam.map((a) => a.spec.cidr));
    const out: Block[] = [];
    for (let i = 0; i < fam.length; i++) {
      const a = fam[i], b = blocks[i];
      const owned = b && blockNode(b.spec) === node && !b.spec.deleted;
      if (owned && a.spec.state === 'pending') {
        await this.ds.update({ ...a, spec: { ...a.spec, state: 'confirmed' } }).catch((err) => { if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err; });
      } else if (!owned) {
        await this.ds.delete('BlockAffinity', a.metadata.name, a.metadata.revision).catch((err) => { if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err; });
      }
      if (owned) out.push(b);
    }
    return out.sort((x, y) => cmpCidr(x.spec.cidr, y.spec.cidr));
  }

  /** The handle write that goes with adding `delta` addresses of `cidr` (create or update). */
  private async handleOp(handle: string, cidr: string, delta: number, hs?: HandleState): Promise<WriteOp> {
    if (hs && hs.res === undefined) hs.res = (await this.getOr('IPAMHandle', handle)) ?? null;
    const h = hs ? hs.res : await this.getOr('IPAMHandle', handle);
    if (!h) return { op: 'create', res: { kind: 'IPAMHandle', metadata: { name: handle }, spec: { handleID: handle, block: { [cidr]: delta } } } };
    const block = { ...h.spec.block, [cidr]: (h.spec.block[cidr] ?? 0) + delta };
    if (block[cidr] <= 0) delete block[cidr];
    if (Object.keys(block).length === 0) return { op: 'delete', kind: 'IPAMHandle', name: h.metadata.name, revision: h.metadata.revision };
    return { op: 'update', res: { ...h, spec: { ...h.spec, block } } };
  }

  /** Allocates up to n addresses from an existing block; one atomic write of handle + block. */
  private async writeAllocation(b: Block, n: number, handle: string, attrs: Attrs, hs: HandleState): Promise<Assignment[]> {
    const spec = JSON.parse(JSON.stringify(b.spec)) as Block['spec'];
    const allocs = allocateFrom(spec, n, handle, attrs);
    if (allocs.length === 0) return [];
    const hop = await this.handleOp(handle, spec.cidr, allocs.length, hs);
    hs.res = undefined;
    let h: unknown, nb: unknown;
    try {
      [h, nb] = await this.ds.apply([hop, { op: 'update', res: { ...b, spec } }]);
    } catch (err) {
      if (err instanceof NotFoundError) throw new Retry(`block ${spec.cidr} is gone`);
      throw err;
    }
    hs.res = (h as Handle | undefined) ?? null;
    const node = blockNode(spec);
    if (node) this.cacheBlock(node, nb as Block);
    const c = parseCidr(spec.cidr);
    return allocs.map((a) => ({ ip: ordinalIp(c, a.ordinal), family: c.family, block: spec.cidr, seq: a.seq, handle }));
  }

  /**
   * Claims a free block of one of the pools for the node and allocates from it in the same
   * write. Returns undefined when no pool has a free block; throws Retry on a lost race.
   */
  private async claimBlock(ctx: Ctx, pools: Pool[], spread: boolean, handle: string, n: number, attrs: Attrs, hs: HandleState): Promise<Assignment[] | undefined> {
    const { items } = await this.ds.list('IPAMBlock');
    const taken = new Set(items.map((b) => b.spec.cidr));
    let cidr: Cidr | undefined;
    for (const p of pools) {
      const pc = parseCidr(p.spec.cidr);
      const free: Cidr[] = [];
      const total = blockCount(pc, p.spec.blockSize);
      const start = this.opts.blockSearch === 'ordered' ? 0n : blockSearchStart(ctx.node, total);
      // Only existing blocks can be skipped, so this scan is bounded by their count + 16.
      for (let k = 0n; k < total && free.length < (spread ? 16 : 1); k++) {
        const c = nthBlock(pc, p.spec.blockSize, (start + k) % total)!;
        if (!taken.has(formatCidr(c)) && !items.some((b) => b.spec.cidr !== formatCidr(c) && overlapsText(b.spec.cidr, c))) free.push(c);
      }
      if (free.length) { cidr = free[Math.floor(this.random() * free.length)]; break; }
    }
    if (!cidr) return undefined;
    const text = formatCidr(cidr);
    const affName = affinityName(ctx.node, text);
    // Step 1: pending affinity (reuse our own stale one).
    let aff: Affinity;
    try {
      aff = await this.ds.create<'BlockAffinity'>({ kind: 'BlockAffinity', metadata: { name: affName }, spec: { node: ctx.node, cidr: text, state: 'pending' } });
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      aff = await this.ds.get('BlockAffinity', affName);
    }
    // Step 2+3: create the block with our allocation in it and confirm the affinity, atomically
    // where the backend can (the block's creation is what decides ownership).
    const spec = newBlockSpec(text, ctx.node);
    const allocs = allocateFrom(spec, n, handle, attrs);
    const hop = await this.handleOp(handle, text, allocs.length, hs);
    hs.res = undefined;
    try {
      const [h, nb] = await this.ds.apply([
        hop,
        { op: 'create', res: { kind: 'IPAMBlock', metadata: { name: blockName(text) }, spec } },
        { op: 'update', res: { ...aff, spec: { ...aff.spec, state: 'confirmed' } } },
      ]);
      hs.res = (h as Handle | undefined) ?? null;
      this.cacheBlock(ctx.node, nb as Block);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError || err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      const b = await this.getOr('IPAMBlock', blockName(text));
      if (b && blockNode(b.spec) !== ctx.node) {
        // Another node created it first: our pending affinity is stale.
        await this.ds.delete('BlockAffinity', affName).catch(() => undefined);
      }
      throw new Retry(`claim block ${text}`);
    }
    this.stats.claims++;
    return allocs.map((a) => ({ ip: ordinalIp(cidr!, a.ordinal), family: cidr!.family, block: text, seq: a.seq, handle }));
  }

  /** Assigns one specific address to `handle` (IP= / the `ips` capability). */
  assignIp(args: { ip: string; handle: string; node: string; attrs?: Attrs }): Promise<Assignment> {
    return this.withNode(args.node, async () => {
      const ip = tryParseIp(args.ip);
      if (!ip) throw new IpUnavailableError(args.ip, 'not an IP address');
      const text = args.ip.includes(':') ? parseIp(args.ip) : ip;
      const ctx = await this.context(args.node);
      const pool = ctx.pools.find((p) => cidrContains(parseCidr(p.spec.cidr, { loose: true }), text));
      if (!pool) throw new IpUnavailableError(args.ip, 'it is in no pool');
      if (pool.spec.disabled) throw new IpUnavailableError(args.ip, `pool ${pool.metadata.name} is disabled`);
      const bc = blockOf(text, pool.spec.blockSize);
      const bcText = formatCidr(bc);
      const ordinal = ipOrdinal(bc, text);
      return this.retrying(`assign ${args.ip} to ${args.handle}`, async () => {
        const b = await this.getOr('IPAMBlock', blockName(bcText));
        if (!b) {
          const aff = await this.ds.create<'BlockAffinity'>({ kind: 'BlockAffinity', metadata: { name: affinityName(args.node, bcText) }, spec: { node: args.node, cidr: bcText, state: 'pending' } })
            .catch(async (err) => { if (err instanceof AlreadyExistsError) return this.ds.get('BlockAffinity', affinityName(args.node, bcText)); throw err; });
          const spec = newBlockSpec(bcText, args.node);
          const a = allocateOrdinal(spec, ordinal, args.handle, args.attrs);
          await this.ds.apply([
            await this.handleOp(args.handle, bcText, 1),
            { op: 'create', res: { kind: 'IPAMBlock', metadata: { name: blockName(bcText) }, spec } },
            { op: 'update', res: { ...aff, spec: { ...aff.spec, state: 'confirmed' } } },
          ]);
          this.stats.claims++;
          this.stats.allocations++;
          return { ip: ordinalIp(bc, ordinal), family: bc.family, block: bcText, seq: a.seq, handle: args.handle };
        }
        const cur = b.spec.allocations[ordinal];
        if (cur) {
          if (cur.handle === args.handle) return { ip: ordinalIp(bc, ordinal), family: bc.family, block: bcText, seq: cur.seq, handle: args.handle };
          throw new IpUnavailableError(args.ip, `already allocated to ${cur.handle}`);
        }
        const owner = blockNode(b.spec);
        if (owner && owner !== args.node && ctx.config.strictAffinity) {
          throw new IpUnavailableError(args.ip, `block ${bcText} is affine to node ${owner} and strictAffinity is on`);
        }
        const spec = JSON.parse(JSON.stringify(b.spec)) as Block['spec'];
        const a = allocateOrdinal(spec, ordinal, args.handle, owner && owner !== args.node ? { ...(args.attrs ?? {}), node: args.node } : args.attrs);
        await this.ds.apply([await this.handleOp(args.handle, bcText, 1), { op: 'update', res: { ...b, spec } }]);
        this.stats.allocations++;
        return { ip: ordinalIp(bc, ordinal), family: bc.family, block: bcText, seq: a.seq, handle: args.handle };
      });
    });
  }

  /**
   * Releases every address of a handle and the handle itself; nothing held is success.
   * Returns the freed addresses. With `node` (the plugin's DEL), runs in that node's queue
   * and lock, so a node's concurrent DELs do not fight over its blocks.
   */
  releaseByHandle(handle: string, opts: { node?: string } = {}): Promise<string[]> {
    return opts.node ? this.withNode(opts.node, () => this.releaseHandle(handle)) : this.releaseHandle(handle);
  }

  private async releaseHandle(handle: string): Promise<string[]> {
    const freed: string[] = [];
    await this.retrying(`release handle ${handle}`, async () => {
      for (;;) {
        const h = await this.getOr('IPAMHandle', handle);
        if (!h) return;
        const cidr = Object.keys(h.spec.block).sort(cmpCidr)[0];
        if (cidr === undefined) { await this.ds.delete('IPAMHandle', handle, h.metadata.revision); return; }
        const b = await this.getOr('IPAMBlock', blockName(cidr));
        const ops: WriteOp[] = [];
        const here: string[] = [];
        if (b) {
          const spec = JSON.parse(JSON.stringify(b.spec)) as Block['spec'];
          const c = parseCidr(spec.cidr);
          for (const a of Object.values(b.spec.allocations)) {
            if (a.handle !== handle) continue;
            freeOrdinal(spec, a.ordinal);
            here.push(ordinalIp(c, a.ordinal));
          }
          if (here.length) ops.push({ op: 'update', res: { ...b, spec } });
        }
        // Block first, then handle: on a backend without atomic batches a crash between
        // leaves a handle naming a block without its addresses, never a handle-less address.
        const rest = { ...h.spec.block };
        delete rest[cidr];
        const last = Object.keys(rest).length === 0;
        ops.push(last
          ? { op: 'delete', kind: 'IPAMHandle', name: h.metadata.name, revision: h.metadata.revision }
          : { op: 'update', res: { ...h, spec: { ...h.spec, block: rest } } });
        await this.ds.apply(ops);
        freed.push(...here);
        if (last) return; // the guarded delete succeeded: nothing left to read back
      }
    });
    return freed;
  }

  /**
   * Releases addresses. With `handle` and/or `seq`, an address is freed only if it is still
   * held under that handle at that sequence number (a stale release never frees a reused address).
   */
  async releaseIps(items: (string | ReleaseItem)[]): Promise<ReleaseResult> {
    return this.releaseIpsUnlocked(items.map((i) => (typeof i === 'string' ? { ip: i } : i)));
  }

  private async releaseIpsUnlocked(items: ReleaseItem[]): Promise<ReleaseResult> {
    const res: ReleaseResult = { released: [], skipped: [] };
    if (items.length === 0) return res;
    const { items: blocks } = await this.ds.list('IPAMBlock');
    for (const item of items) {
      const ip = tryParseIp(item.ip);
      const b0 = ip && blocks.find((b) => cidrContains(parseCidr(b.spec.cidr), ip));
      if (!ip || !b0) { res.skipped.push({ ip: item.ip, reason: 'not in any block' }); continue; }
      await this.retrying(`release ${item.ip}`, async (attempt) => {
        const b = attempt === 0 ? b0 : await this.getOr('IPAMBlock', b0.metadata.name);
        const c = parseCidr(b0.spec.cidr);
        const ord = ipOrdinal(c, ip);
        const a = b?.spec.allocations[ord];
        if (!b || !a) { res.skipped.push({ ip: item.ip, reason: 'not allocated' }); return; }
        if (item.handle !== undefined && a.handle !== item.handle) { res.skipped.push({ ip: item.ip, reason: `held by ${a.handle}` }); return; }
        if (item.seq !== undefined && a.seq !== item.seq) { res.skipped.push({ ip: item.ip, reason: `sequence ${a.seq}, not ${item.seq}` }); return; }
        const spec = JSON.parse(JSON.stringify(b.spec)) as Block['spec'];
        freeOrdinal(spec, ord);
        const ops: WriteOp[] = [{ op: 'update', res: { ...b, spec } }];
        const h = await this.getOr('IPAMHandle', a.handle);
        if (h) {
          const left = Object.values(spec.allocations).filter((x) => x.handle === a.handle).length;
          const block = { ...h.spec.block };
          if (left > 0) block[spec.cidr] = left; else delete block[spec.cidr];
          ops.push(Object.keys(block).length
            ? { op: 'update', res: { ...h, spec: { ...h.spec, block } } }
            : { op: 'delete', kind: 'IPAMHandle', name: h.metadata.name, revision: h.metadata.revision });
        }
        await this.ds.apply(ops);
        res.released.push(ordinalIp(c, ord));
      });
    }
    return res;
  }

  /** CIDRs of the blocks affine to a node (confirmed affinities whose block it owns). */
  async blocksForNode(node: string): Promise<string[]> {
    const affs = await this.nodeAffinities(node);
    return affs.filter((a) => a.spec.state === 'confirmed').map((a) => a.spec.cidr).sort(cmpCidr);
  }

  /** Deletes the node's blocks that hold no address (block and affinity in one write). Returns their CIDRs. */
  releaseEmptyBlocks(node: string): Promise<string[]> {
    return this.withNode(node, async () => {
      const out: string[] = [];
      for (const a of await this.nodeAffinities(node)) {
        const b = await this.getOr('IPAMBlock', blockName(a.spec.cidr));
        if (!b || blockNode(b.spec) !== node || inUse(b.spec) > 0) continue;
        try {
          await this.ds.apply([
            { op: 'delete', kind: 'IPAMBlock', name: b.metadata.name, revision: b.metadata.revision },
            { op: 'delete', kind: 'BlockAffinity', name: a.metadata.name, revision: a.metadata.revision },
          ]);
          out.push(a.spec.cidr);
        } catch (err) {
          if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
        }
      }
      return out;
    });
  }

  /** Utilisation per pool and per block. */
  async usage(): Promise<PoolUsage[]> {
    const [{ items: pools }, { items: blocks }] = await Promise.all([this.ds.list('IPPool'), this.ds.list('IPAMBlock')]);
    return pools.map((p) => {
      const pc = parseCidr(p.spec.cidr, { loose: true });
      const mine = blocks.filter((b) => { const c = parseCidr(b.spec.cidr); return c.family === pc.family && c.len >= pc.len && cidrContains(pc, c); })
        .sort((a, b) => cmpCidr(a.spec.cidr, b.spec.cidr));
      const blockUsage = mine.map((b) => {
        const c = parseCidr(b.spec.cidr);
        const size = blockSizeOf(c.family, c.len);
        const used = inUse(b.spec);
        return { cidr: b.spec.cidr, node: blockNode(b.spec), size, inUse: used, free: size - used };
      });
      const size = Number(1n << BigInt((pc.family === 4 ? 32 : 128) - pc.len));
      const used = blockUsage.reduce((s, b) => s + b.inUse, 0);
      return { name: p.metadata.name, cidr: p.spec.cidr, disabled: !!p.spec.disabled, size, blocks: mine.length, inUse: used, free: size - used, blockUsage };
    });
  }

  /**
   * Cross-checks blocks, affinities and handles. With `validHandles` (the attachments that
   * really exist), every other handle is reported as leaked.
   */
  async checkConsistency(opts: { validHandles?: Iterable<string> } = {}): Promise<ConsistencyReport> {
    const [{ items: blocks }, { items: affs }, { items: handles }] = await Promise.all([
      this.ds.list('IPAMBlock'), this.ds.list('BlockAffinity'), this.ds.list('IPAMHandle'),
    ]);
    const problems: Problem[] = [];
    const handleById = new Map(handles.map((h) => [h.spec.handleID, h]));
    const held = new Map<string, Map<string, number>>(); // handle -> block cidr -> count
    const seenIp = new Map<string, string>();
    let allocations = 0;
    for (const b of blocks) {
      const c = parseCidr(b.spec.cidr);
      for (const a of Object.values(b.spec.allocations)) {
        allocations++;
        const ip = ordinalIp(c, a.ordinal);
        const other = seenIp.get(ip);
        if (other !== undefined) problems.push({ kind: 'duplicateAddress', ip, handle: a.handle, block: b.spec.cidr, message: `address ${ip} is allocated to ${other} and ${a.handle}` });
        seenIp.set(ip, a.handle);
        if (!handleById.has(a.handle)) problems.push({ kind: 'allocationWithoutHandle', ip, handle: a.handle, block: b.spec.cidr, message: `address ${ip} in block ${b.spec.cidr} is held by missing handle ${a.handle}` });
        const m = held.get(a.handle) ?? new Map<string, number>();
        m.set(b.spec.cidr, (m.get(b.spec.cidr) ?? 0) + 1);
        held.set(a.handle, m);
      }
      const node = blockNode(b.spec);
      if (node) {
        const confirmed = affs.some((a) => a.spec.node === node && a.spec.cidr === b.spec.cidr && a.spec.state === 'confirmed');
        if (!confirmed) problems.push({ kind: 'blockWithoutAffinity', block: b.spec.cidr, node, message: `block ${b.spec.cidr} is affine to node ${node} without a confirmed affinity` });
      }
    }
    // Overlapping blocks (different sizes) are how one address could be in two blocks; seenIp covers allocated ones.
    const byCidr = new Map<string, string[]>();
    for (const a of affs) {
      if (a.spec.state !== 'confirmed') continue;
      byCidr.set(a.spec.cidr, [...(byCidr.get(a.spec.cidr) ?? []), a.spec.node]);
    }
    for (const [cidr, nodes] of byCidr) {
      if (nodes.length > 1) problems.push({ kind: 'duplicateOwnership', block: cidr, message: `block ${cidr} is claimed by nodes ${nodes.join(', ')}` });
    }
    const blockByCidr = new Map(blocks.map((b) => [b.spec.cidr, b]));
    for (const a of affs) {
      const b = blockByCidr.get(a.spec.cidr);
      if (!b || blockNode(b.spec) !== a.spec.node) {
        problems.push({ kind: 'affinityWithoutBlock', block: a.spec.cidr, node: a.spec.node, message: `${a.spec.state} affinity of node ${a.spec.node} to block ${a.spec.cidr} has ${b ? `a block owned by ${blockNode(b.spec) ?? 'no node'}` : 'no block'}` });
      }
    }
    for (const h of handles) {
      const m = held.get(h.spec.handleID);
      for (const [cidr, n] of Object.entries(h.spec.block)) {
        const have = m?.get(cidr) ?? 0;
        if (have < n) problems.push({ kind: 'handleWithoutAllocation', handle: h.spec.handleID, block: cidr, message: `handle ${h.spec.handleID} counts ${n} addresses in block ${cidr}, the block holds ${have}` });
      }
    }
    const leakedHandles: string[] = [];
    if (opts.validHandles) {
      const valid = new Set(opts.validHandles);
      for (const h of handles) {
        if (valid.has(h.spec.handleID)) continue;
        leakedHandles.push(h.spec.handleID);
        problems.push({ kind: 'leakedHandle', handle: h.spec.handleID, message: `handle ${h.spec.handleID} belongs to no valid attachment` });
      }
      leakedHandles.sort();
    }
    return { ok: problems.length === 0, problems, leakedHandles, blocks: blocks.length, handles: handles.length, allocations };
  }
}

function overlapsText(cidr: string, c: Cidr): boolean {
  const x = parseCidr(cidr);
  if (x.family !== c.family) return false;
  const len = Math.min(x.len, c.len);
  return cidrContains({ family: c.family, value: c.value, len }, x);
}
