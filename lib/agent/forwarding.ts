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

export interface ForwardingResult { route?: KRoute; problems: string[] }

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

/** A blackhole route for a block this node owns. */
export function blackholeRoute(block: string): KRoute {
  return { family: parseIp(block.split('/')[0]).family, dst: block, type: 'blackhole' };
}
