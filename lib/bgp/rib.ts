// Routing information bases: Adj-RIB-In per peer, the Loc-RIB with best-path selection
// (RFC 4271 §9.1.2 plus the usual tie-breakers and multipath), and the per-peer export rules
// (iBGP split horizon, RFC 4456 route reflection). Paths are shared by every prefix of the
// UPDATE that carried them, and Adj-RIBs-In and Loc-RIB live in one map keyed by the prefix
// text: 100,000 prefixes from one peer cost one map entry each, not an object or three entries.
import { asPathLength } from './codec/update';
import { AS_SEQUENCE, type PathAttributes } from './codec/types';
import { routerIdToNumber } from './codec/message';

export interface PeerInfo {
  address: string;
  routerId: string;
  asn: number;
  ebgp: boolean;
  rrClient: boolean;
  /** The sentinel for our own originations. */
  local?: boolean;
  /** Prefixes held from this source (its Adj-RIB-In size), kept by the Rib. */
  received?: number;
}

/** One path: attributes (shared), next hop, and where it came from. Never mutated except `stale`. */
export interface Path {
  source: PeerInfo;
  attrs: PathAttributes;
  nextHop: string | undefined;
  stale: boolean;
  /** Caches (per path, shared by every prefix using it): [this], and the next hops reported for it. */
  one?: Path[];
  hops?: string[];
}

export interface RibOptions { routerId: string; asn: number; clusterId?: string; multipath?: boolean }

const DEFAULT_LOCAL_PREF = 100;

function neighborAs(p: Path): number {
  const first = p.attrs.asPath?.[0];
  return first && first.type === AS_SEQUENCE && first.asns.length ? first.asns[0] : 0;
}

/** Compares up to the multipath boundary (§9.1.2.2 a–d, eBGP over iBGP): < 0 when a is better. */
export function comparePathsMultipath(a: Path, b: Path): number {
  if (a.source.local !== b.source.local) return a.source.local ? -1 : 1;
  const lp = (b.attrs.localPref ?? DEFAULT_LOCAL_PREF) - (a.attrs.localPref ?? DEFAULT_LOCAL_PREF);
  if (lp) return lp;
  const al = asPathLength(a.attrs.asPath) - asPathLength(b.attrs.asPath);
  if (al) return al;
  const o = (a.attrs.origin ?? 2) - (b.attrs.origin ?? 2);
  if (o) return o;
  // MED only between paths from the same neighbouring AS; a missing MED is 0 (RFC 4271 §9.1.2.2 c).
  if (neighborAs(a) === neighborAs(b)) { const m = (a.attrs.med ?? 0) - (b.attrs.med ?? 0); if (m) return m; }
  if (a.source.ebgp !== b.source.ebgp) return a.source.ebgp ? -1 : 1;
  return 0;
}

/** Full comparison: then lowest router ID (ORIGINATOR_ID when reflected, RFC 4456 §9), shortest CLUSTER_LIST, lowest peer address. */
export function comparePaths(a: Path, b: Path): number {
  const m = comparePathsMultipath(a, b);
  if (m) return m;
  const ra = routerIdToNumber(a.attrs.originatorId ?? a.source.routerId), rb = routerIdToNumber(b.attrs.originatorId ?? b.source.routerId);
  if (ra !== rb) return ra - rb;
  const cl = (a.attrs.clusterList?.length ?? 0) - (b.attrs.clusterList?.length ?? 0);
  if (cl) return cl;
  return a.source.address < b.source.address ? -1 : a.source.address > b.source.address ? 1 : 0;
}

export class Rib {
  /**
   * The whole RIB in one map: per prefix either the one path known for it (then also the best)
   * or a Multi holding every candidate (one per source) and the best path(s). Adj-RIB-In of a
   * peer = the entries whose candidate has that source (counted in `received`).
   */
  private readonly table = new Map<string, Path | Multi>();
  /** Prefixes changed since the last flush → their best before the first change (Path or Path[]). */
  private pending = new Map<string, Path | Path[]>();
  /**
   * Prefixes new since the last flush (best before: none). A table load is all new prefixes, so
   * they go to an array, not the pending map; `fresh` (built only when an existing prefix is
   * touched during such a batch) tells them apart so they are neither recorded twice nor in both.
   */
  private added: string[] = [];
  private fresh: Set<string> | undefined;

  constructor(readonly opts: RibOptions) {}

  /** RFC 4456 §8 and RFC 4271 §9.1.2 loop checks: true when a received path must be ignored. */
  isLoop(peer: PeerInfo, attrs: PathAttributes): boolean {
    if (attrs.originatorId !== undefined && attrs.originatorId === this.opts.routerId) return true;
    const cluster = this.opts.clusterId ?? this.opts.routerId;
    if (attrs.clusterList?.includes(cluster)) return true;
    if (peer.ebgp && attrs.asPath?.some((s) => s.asns.includes(this.opts.asn))) return true;
    return false;
  }

  /** Records the best of an existing prefix before its first change since the last flush. */
  private touch(prefix: string, slot: Path | Multi): void {
    if (this.pending.has(prefix) || this.isFresh(prefix)) return;
    this.pending.set(prefix, slot instanceof Multi ? slot.best : slot);
  }

  private isFresh(prefix: string): boolean {
    if (this.added.length === 0) return false;
    if (!this.fresh) this.fresh = new Set(this.added);
    return this.fresh.has(prefix);
  }

  private addNew(prefix: string): void {
    if (this.fresh) { if (this.fresh.has(prefix)) return; this.fresh.add(prefix); }
    this.added.push(prefix);
  }

  private count(source: PeerInfo, d: number): void {
    source.received = (source.received ?? 0) + d;
  }

  /** Adds or replaces the path from `path.source` for a prefix. */
  announce(prefix: string, path: Path): void {
    const slot = this.table.get(prefix);
    if (slot === undefined) { this.table.set(prefix, path); this.addNew(prefix); this.count(path.source, 1); return; }
    this.touch(prefix, slot);
    if (!(slot instanceof Multi)) {
      if (slot.source === path.source) this.table.set(prefix, path);
      else { this.table.set(prefix, new Multi([slot, path], [slot])); this.count(path.source, 1); }
      return;
    }
    const c = slot.paths;
    for (let i = 0; i < c.length; i++) if (c[i].source === path.source) { c[i] = path; return; }
    c.push(path);
    this.count(path.source, 1);
  }

  /** Removes the path from `source` for a prefix (no-op when absent). */
  withdraw(prefix: string, source: PeerInfo): void {
    const slot = this.table.get(prefix);
    if (slot === undefined) return;
    if (!(slot instanceof Multi)) {
      if (slot.source !== source) return;
      this.touch(prefix, slot);
      this.table.delete(prefix);
    } else {
      const i = slot.paths.findIndex((p) => p.source === source);
      if (i < 0) return;
      this.touch(prefix, slot);
      slot.paths.splice(i, 1);
      if (slot.paths.length === 1) this.table.set(prefix, slot.paths[0]);
    }
    this.count(source, -1);
  }

  /** The path from `source` for a prefix, if any (Adj-RIB-In lookup). */
  pathFrom(prefix: string, source: PeerInfo): Path | undefined {
    const slot = this.table.get(prefix);
    if (slot === undefined) return undefined;
    if (!(slot instanceof Multi)) return slot.source === source ? slot : undefined;
    return slot.paths.find((p) => p.source === source);
  }

  /** Number of prefixes received from a source (its Adj-RIB-In size). */
  receivedFrom(source: PeerInfo): number { return source.received ?? 0; }

  /** Calls fn for every path of `source` (a snapshot, so fn may withdraw). */
  private pathsOf(source: PeerInfo, fn: (prefix: string, p: Path) => void): void {
    const hits: string[] = [];
    const paths: Path[] = [];
    for (const [prefix, slot] of this.table) {
      const p = slot instanceof Multi ? slot.paths.find((x) => x.source === source) : slot.source === source ? slot : undefined;
      if (p) { hits.push(prefix); paths.push(p); }
    }
    for (let i = 0; i < hits.length; i++) fn(hits[i], paths[i]);
  }

  /** Withdraws every path of a peer (session down without graceful restart, or peer removed). */
  dropPeer(source: PeerInfo, filter?: (prefix: string, p: Path) => boolean): number {
    if (!this.receivedFrom(source)) return 0;
    let n = 0;
    this.pathsOf(source, (prefix, p) => { if (!filter || filter(prefix, p)) { this.withdraw(prefix, source); n++; } });
    return n;
  }

  /** RFC 4724 §4.2: the helper keeps a restarting peer's routes, marked stale. */
  markStale(source: PeerInfo): number {
    if (!this.receivedFrom(source)) return 0;
    let n = 0;
    this.pathsOf(source, (_prefix, p) => { p.stale = true; n++; });
    return n;
  }

  /** Removes the stale paths of a peer (for one family when given). */
  sweepStale(source: PeerInfo, family?: 4 | 6): number {
    return this.dropPeer(source, (prefix, p) => p.stale && (!family || (prefix.includes(':') ? 6 : 4) === family));
  }

  hasStale(source: PeerInfo): boolean {
    if (!this.receivedFrom(source)) return false;
    for (const slot of this.table.values()) {
      if (slot instanceof Multi) { for (const p of slot.paths) if (p.source === source && p.stale) return true; }
      else if (slot.source === source && slot.stale) return true;
    }
    return false;
  }

  /** The Loc-RIB entry: best path first, then its multipath equals. */
  best(prefix: string): readonly Path[] | undefined {
    const slot = this.table.get(prefix);
    return slot === undefined ? undefined : slot instanceof Multi ? slot.best : one(slot);
  }

  /** The best path of a prefix. */
  bestPath(prefix: string): Path | undefined {
    const slot = this.table.get(prefix);
    return slot === undefined ? undefined : slot instanceof Multi ? slot.best[0] : slot;
  }

  /** Every prefix with a best path, with it (Loc-RIB iteration). */
  *entries(): IterableIterator<[string, readonly Path[]]> {
    for (const [prefix, slot] of this.table) yield [prefix, slot instanceof Multi ? slot.best : one(slot)];
  }

  /** Every prefix in the Loc-RIB. */
  prefixes(): IterableIterator<string> { return this.table.keys(); }

  /** Number of prefixes in the Loc-RIB. */
  get size(): number { return this.table.size; }

  /**
   * Recomputes best paths of everything changed since the last flush; calls `changed` for each
   * prefix whose best path set changed (old/now undefined = none) and returns their count.
   */
  flush(changed: (prefix: string, old: readonly Path[] | undefined, now: readonly Path[] | undefined) => void): number {
    const pending = this.pending, added = this.added;
    if (pending.size === 0 && added.length === 0) return 0;
    this.pending = new Map();
    this.added = [];
    this.fresh = undefined;
    let n = 0;
    for (let i = 0; i < added.length; i++) {
      const prefix = added[i];
      const slot = this.table.get(prefix);
      if (slot === undefined) continue;
      n++;
      changed(prefix, undefined, slot instanceof Multi ? this.recompute(slot) : one(slot));
    }
    for (const [prefix, before] of pending) {
      const old = Array.isArray(before) ? before : one(before);
      const slot = this.table.get(prefix);
      let now: readonly Path[] | undefined;
      if (slot === undefined) now = undefined;
      else if (!(slot instanceof Multi)) now = one(slot);
      else now = this.recompute(slot);
      if (sameSet(old, now)) continue;
      n++;
      changed(prefix, old, now);
    }
    return n;
  }

  /** Best path(s) of a Multi, kept as the same array while unchanged. */
  private recompute(slot: Multi): Path[] {
    const sorted = slot.paths.slice().sort(comparePaths);
    const b = [sorted[0]];
    if (this.opts.multipath !== false) for (let i = 1; i < sorted.length && comparePathsMultipath(sorted[0], sorted[i]) === 0; i++) b.push(sorted[i]);
    if (!sameSet(slot.best, b)) slot.best = b;
    return slot.best;
  }

  get pendingCount(): number { return this.pending.size + this.added.length; }
}

/** Several candidate paths for one prefix and the best of them (replaced, never mutated). */
class Multi {
  constructor(public paths: Path[], public best: Path[]) {}
}

/** [p], one array per path (shared by all its prefixes). */
function one(p: Path): Path[] { return p.one ??= [p]; }

function sameSet(a: readonly Path[] | undefined, b: readonly Path[] | undefined): boolean {
  if (!a || !b) return a === b;
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Export policy (documented choice, Calico-like): our originations go to every peer; learned
 * routes are re-advertised only by a route reflector (RFC 4456 §6: client routes to all iBGP
 * peers, non-client routes to clients only), never back to their source, never to eBGP, and
 * nothing learned from eBGP is passed on (iBGP split horizon covers the mesh).
 */
export function exportable(best: Path, to: PeerInfo, clusterId: string | undefined): boolean {
  const from = best.source;
  if (from.local) return true;
  if (from === to || from.address === to.address) return false;
  if (!clusterId || from.ebgp || to.ebgp) return false;
  return from.rrClient || to.rrClient;
}
