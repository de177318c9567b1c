// How a learned BGP route becomes a kernel route on this node: plain `via <node ip>` (onlink
// on the uplink when the next hop is in its subnet, resolved through the kernel otherwise),
// through vxlan.brindle to the remote node's VTEP address when the pool's vxlanMode says so,
// through tunl0 onlink for ipipMode; ECMP when several best paths. Pure.
import { cidrContains, cidrOverlaps, parseIp, tryParseCidr, tryParseIp, type Cidr, type Ip } from '../ip';
import type { EncapMode } from '../datastore/types';
import type { KRoute } from '../dataplane/routes';

export interface PoolInfo { cidr: Cidr; vxlanMode: EncapMode; ipipMode: EncapMode; disabled?: boolean }
export interface RemoteNode { name: string; vxlanTunnelAddress?: string; vxlanTunnelMACAddr?: string }

export interface ForwardingContext {
  /** This node's own addresses (next hops equal to one are ignored). */
  myAddrs: Set<string>;
  /** Subnets of the uplink (the interface holding the node address). */
  uplinkSubnets: Cidr[];
  uplinkIndex?: number;
  pools: PoolInfo[];
  /** Cluster nodes by their BGP address. */
  nodesByIp: Map<string, RemoteNode>;
  /** Prefixes this node originates itself: never installed from a peer. */
  ownPrefixes: Set<string>;
  vxlanIndex?: number;
  tunlIndex?: number;
  /** Resolves a next hop that is not on the uplink (like `ip route get`): the first hop to use. */
  resolve?: (nh: string) => { gateway?: string; oif?: number } | undefined;
}

export interface ForwardingResult {
  route?: KRoute;
  problems: string[];
  /** Consumers may cache a derived value (the programmer's shape) on a shared decision. */
  shape?: unknown;
}

const NO_PROBLEMS: string[] = [];

type Hop = { gateway?: string; oif?: number; onlink?: boolean };

/** The pool a prefix belongs to (the longest pool containing it). */
export function poolFor(pools: PoolInfo[], prefix: Cidr): PoolInfo | undefined {
  let best: PoolInfo | undefined;
  for (const p of pools) {
    if (p.cidr.family !== prefix.family || p.cidr.len > prefix.len || !cidrOverlaps(p.cidr, prefix)) continue;
    if (!best || p.cidr.len > best.cidr.len) best = p;
  }
  return best;
}

function modeApplies(mode: EncapMode | undefined, crossSubnet: boolean): boolean {
  return mode === 'Always' || (mode === 'CrossSubnet' && crossSubnet);
}

/** The kernel route for a learned prefix with its best next hops; no route when nothing usable. */
export function forwardingRoute(prefix: string, nextHops: string[], ctx: ForwardingContext): ForwardingResult {
  const problems: string[] = [];
  const c = tryParseCidr(prefix);
  if (!c || ctx.ownPrefixes.has(prefix) || nextHops.length === 0) return { problems };
  const pool = poolFor(ctx.pools, c);
  const hops: Hop[] = [];
  const seen = new Set<string>();
  for (const nh of nextHops) {
    const ip: Ip | undefined = tryParseIp(nh);
    if (!ip || ip.family !== c.family || ctx.myAddrs.has(nh) || seen.has(nh)) continue;
    seen.add(nh);
    const onUplink = ctx.uplinkSubnets.some((s) => cidrContains(s, ip));
    if (pool && modeApplies(pool.vxlanMode, !onUplink)) {
      const remote = ctx.nodesByIp.get(nh);
      if (ctx.vxlanIndex !== undefined && remote?.vxlanTunnelAddress && tryParseIp(remote.vxlanTunnelAddress)?.family === c.family) {
        hops.push({ gateway: remote.vxlanTunnelAddress, oif: ctx.vxlanIndex, onlink: true });
        continue;
      }
      problems.push(`route ${prefix} via ${nh}: no vxlan tunnel to ${remote?.name ?? nh}`);
    } else if (pool && c.family === 4 && modeApplies(pool.ipipMode, !onUplink)) {
      if (ctx.tunlIndex !== undefined) {
        hops.push({ gateway: nh, oif: ctx.tunlIndex, onlink: true });
        continue;
      }
      problems.push(`route ${prefix} via ${nh}: ipip device tunl0 missing`);
    }
    if (onUplink) {
      hops.push(ctx.uplinkIndex !== undefined ? { gateway: nh, oif: ctx.uplinkIndex, onlink: true } : { gateway: nh });
    } else {
      const r = ctx.resolve?.(nh);
      if (r?.gateway && r.oif !== undefined) hops.push({ gateway: r.gateway, oif: r.oif });
      else if (r && r.oif !== undefined) hops.push({ gateway: nh, oif: r.oif, onlink: true });
      else problems.push(`route ${prefix} via ${nh}: next hop unreachable`);
    }
  }
  if (hops.length === 0) return { problems };
  // Two next hops resolving to one hop (same gateway) are one path.
  const uniq = new Map<string, Hop>();
  for (const h of hops) uniq.set(`${h.gateway}@${h.oif}`, h);
  const list = [...uniq.values()];
  if (list.length === 1) return { route: { family: c.family, dst: prefix, ...list[0] }, problems };
  return {
    route: { family: c.family, dst: prefix, multipath: list.map((h) => ({ gateway: h.gateway, oif: h.oif!, ...(h.onlink ? { onlink: true } : {}) })) },
    problems,
  };
}

/** Parses an IPv4 "a.b.c.d/len" to [value, len] without BigInt; undefined for anything else. */
function fastV4(prefix: string): [number, number] | undefined {
  let v = 0, part = 0, dots = 0, digits = 0;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i);
    if (c >= 48 && c <= 57) { part = part * 10 + (c - 48); if (++digits > 3 || part > 255) return undefined; continue; }
    if (digits === 0) return undefined;
    if (c === 46 && dots < 3) { v = v * 256 + part; part = 0; digits = 0; dots++; continue; }
    if (c === 47 && dots === 3) {
      v = v * 256 + part;
      const len = Number(prefix.slice(i + 1));
      if (!Number.isInteger(len) || len < 0 || len > 32 || String(len) !== prefix.slice(i + 1)) return undefined;
      return [v, len];
    }
    return undefined;
  }
  return undefined;
}

/**
 * forwardingRoute with the per-(pool, next hops) decision cached: 100,000 routes learned from
 * one peer share a handful of decisions, so the hot path is a lookup and one small object.
 * Create a new one whenever the context changes.
 */
export class Forwarder {
  private readonly cache = new Map<string, ForwardingResult>();
  /** Decisions by next-hop list identity (the speaker shares one array per distinct list), then pool index + 1. */
  private readonly byHops = new Map<string[], (ForwardingResult | undefined)[]>();
  private readonly v4pools: { base: number; len: number; idx: number }[] = [];
  constructor(readonly ctx: ForwardingContext) {
    ctx.pools.forEach((p, idx) => {
      if (p.cidr.family === 4) this.v4pools.push({ base: Number(p.cidr.value), len: p.cidr.len, idx });
    });
  }

  /**
   * The shared decision for a prefix: for IPv4, one object per (pool, next hops) whose route
   * and problems name a representative prefix (dst must be replaced); for IPv6 a fresh result.
   * Returns undefined for prefixes never installed (our own, or no next hops).
   */
  decide(prefix: string, nextHops: string[]): ForwardingResult | undefined {
    if (this.ctx.ownPrefixes.has(prefix) || nextHops.length === 0) return undefined;
    const v4 = fastV4(prefix);
    if (!v4) return forwardingRoute(prefix, nextHops, this.ctx);
    let pool = -1, plen = -1;
    for (const p of this.v4pools) {
      if (p.len > v4[1] || p.len <= plen) continue;
      const shift = 32 - p.len;
      if (p.len === 0 || Math.floor(v4[0] / 2 ** shift) === Math.floor(p.base / 2 ** shift)) { pool = p.idx; plen = p.len; }
    }
    let row = this.byHops.get(nextHops);
    if (!row) { if (this.byHops.size >= 10_000) this.byHops.clear(); row = []; this.byHops.set(nextHops, row); }
    let tmpl = row[pool + 1];
    if (!tmpl) {
      const key = `${pool}|${nextHops.join(',')}`;
      tmpl = this.cache.get(key);
      if (!tmpl) {
        // Decide for a representative prefix of that pool (or of no pool): same hops for all.
        tmpl = forwardingRoute(prefix, nextHops, this.ctx);
        this.cache.set(key, tmpl);
      }
      row[pool + 1] = tmpl;
    }
    return tmpl;
  }

  route(prefix: string, nextHops: string[]): ForwardingResult {
    const tmpl = this.decide(prefix, nextHops);
    if (!tmpl) return { problems: [] };
    if (!tmpl.route || tmpl.route.dst === prefix) return tmpl;
    const r = tmpl.route;
    const route: KRoute = r.multipath
      ? { family: 4, dst: prefix, multipath: r.multipath }
      : { family: 4, dst: prefix, gateway: r.gateway, oif: r.oif, onlink: r.onlink };
    if (route.gateway === undefined) delete route.gateway;
    if (route.oif === undefined) delete route.oif;
    if (route.onlink === undefined) delete route.onlink;
    return { route, problems: tmpl.problems.length ? tmpl.problems.map((p) => p.replace(tmpl!.route!.dst, prefix)) : NO_PROBLEMS };
  }
}

/** A blackhole route for a block this node owns. */
export function blackholeRoute(block: string): KRoute {
  return { family: parseIp(block.split('/')[0]).family, dst: block, type: 'blackhole' };
}
