// Routing information bases: Adj-RIB-In per peer, the Loc-RIB with best-path selection
// (RFC 4271 §9.1.2 plus the usual tie-breakers and multipath), and the per-peer export rules
// (iBGP split horizon, RFC 4456 route reflection). Paths are shared by every prefix of the
// UPDATE that carried them, so 100,000 prefixes cost a map entry each, not an object each.
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
}

/** One path: attributes (shared), next hop, and where it came from. Never mutated except `stale`. */
export interface Path {
  source: PeerInfo;
  attrs: PathAttributes;
  nextHop: string | undefined;
  stale: boolean;
}

export interface RibChange { prefix: string; old: Path[] | undefined; now: Path[] | undefined }

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
  readonly adjIn = new Map<PeerInfo, Map<string, Path>>();
  /** Candidate paths per prefix, one per source. */
  private readonly candidates = new Map<string, Path | Path[]>();
  /** The Loc-RIB: best path first, then its multipath equals. */
  readonly best = new Map<string, Path[]>();
  private dirty = new Set<string>();

  constructor(readonly opts: RibOptions) {}

  /** RFC 4456 §8 and RFC 4271 §9.1.2 loop checks: true when a received path must be ignored. */
  isLoop(peer: PeerInfo, attrs: PathAttributes): boolean {
    if (attrs.originatorId !== undefined && attrs.originatorId === this.opts.routerId) return true;
    const cluster = this.opts.clusterId ?? this.opts.routerId;
    if (attrs.clusterList?.includes(cluster)) return true;
    if (peer.ebgp && attrs.asPath?.some((s) => s.asns.includes(this.opts.asn))) return true;
    return false;
  }

  private inOf(peer: PeerInfo): Map<string, Path> {
    let m = this.adjIn.get(peer);
    if (!m) { m = new Map(); this.adjIn.set(peer, m); }
    return m;
  }

  /** Adds or replaces the path from `path.source` for a prefix. */
  announce(prefix: string, path: Path): void {
    this.inOf(path.source).set(prefix, path);
    const c = this.candidates.get(prefix);
    if (c === undefined) this.candidates.set(prefix, path);
    else if (!Array.isArray(c)) this.candidates.set(prefix, c.source === path.source ? path : [c, path]);
    else {
      const i = c.findIndex((p) => p.source === path.source);
      if (i >= 0) c[i] = path; else c.push(path);
    }
    this.dirty.add(prefix);
  }

  /** Removes the path from `source` for a prefix (no-op when absent). */
  withdraw(prefix: string, source: PeerInfo): void {
    const m = this.adjIn.get(source);
    if (!m || !m.delete(prefix)) return;
    const c = this.candidates.get(prefix);
    if (c === undefined) return;
    if (!Array.isArray(c)) { if (c.source === source) this.candidates.delete(prefix); }
    else {
      const rest = c.filter((p) => p.source !== source);
      this.candidates.set(prefix, rest.length === 1 ? rest[0] : rest);
      if (rest.length === 0) this.candidates.delete(prefix);
    }
    this.dirty.add(prefix);
  }

  /** Withdraws every path of a peer (session down without graceful restart, or peer removed). */
  dropPeer(source: PeerInfo, filter?: (prefix: string, p: Path) => boolean): number {
    const m = this.adjIn.get(source);
    if (!m) return 0;
    let n = 0;
    for (const [prefix, p] of [...m]) if (!filter || filter(prefix, p)) { this.withdraw(prefix, source); n++; }
    if (!filter) this.adjIn.delete(source);
    return n;
  }

  /** RFC 4724 §4.2: the helper keeps a restarting peer's routes, marked stale. */
  markStale(source: PeerInfo): number {
    const m = this.adjIn.get(source);
    if (!m) return 0;
    for (const p of m.values()) p.stale = true;
    return m.size;
  }

  /** Removes the stale paths of a peer (for one family when given). */
  sweepStale(source: PeerInfo, family?: 4 | 6): number {
    return this.dropPeer(source, (prefix, p) => p.stale && (!family || (prefix.includes(':') ? 6 : 4) === family));
  }

  hasStale(source: PeerInfo): boolean {
    const m = this.adjIn.get(source);
    if (m) for (const p of m.values()) if (p.stale) return true;
    return false;
  }

  /** Recomputes best paths of everything changed since the last flush; returns the changed ones. */
  flush(): RibChange[] {
    const out: RibChange[] = [];
    const dirty = this.dirty;
    this.dirty = new Set();
    for (const prefix of dirty) {
      const old = this.best.get(prefix);
      const c = this.candidates.get(prefix);
      let now: Path[] | undefined;
      if (c === undefined) now = undefined;
      else if (!Array.isArray(c)) now = [c];
      else {
        const sorted = c.slice().sort(comparePaths);
        now = [sorted[0]];
        if (this.opts.multipath !== false) for (let i = 1; i < sorted.length && comparePathsMultipath(sorted[0], sorted[i]) === 0; i++) now.push(sorted[i]);
      }
      if (sameSet(old, now)) continue;
      if (now) this.best.set(prefix, now); else this.best.delete(prefix);
      out.push({ prefix, old, now });
    }
    return out;
  }

  get pending(): number { return this.dirty.size; }
}

function sameSet(a: Path[] | undefined, b: Path[] | undefined): boolean {
  if (!a || !b) return a === b;
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
