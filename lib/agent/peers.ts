// Desired BGP peers of one node, computed from the datastore's view of the cluster: the
// node-to-node mesh, route reflectors and their clients, global and per-node BGPPeers
// (peerIP or peerSelector). A pure function; the agent hands the result to Speaker.setPeers.
import type { BGPConfigurationSpec, BGPPeerSpec, NodeSpec, Resource } from '../datastore/types';
import { selectorMatches } from '../ipam/selector';
import { parseIp, tryParseIp } from '../ip';
import type { PeerConfig, PeerType } from '../bgp/speaker';

export type { PeerConfig, PeerType };

export const DEFAULT_ASN = 64512;
export const DEFAULT_BGP_PORT = 179;

export interface PeerInputs {
  thisNode: Resource<'Node'>;
  nodes: Resource<'Node'>[];
  bgpPeers: Resource<'BGPPeer'>[];
  bgpConfig?: BGPConfigurationSpec;
}

/** Address part of a node's "a/len" BGP address, or undefined. */
export function nodeAddress(spec: NodeSpec | undefined, family: 4 | 6): string | undefined {
  const text = family === 4 ? spec?.bgp?.ipv4Address : spec?.bgp?.ipv6Address;
  if (!text) return undefined;
  const a = text.split('/')[0];
  return tryParseIp(a)?.family === family ? a : undefined;
}

/** The AS a node speaks: its own asNumber, else the cluster's, else 64512. */
export function nodeAsn(spec: NodeSpec | undefined, cfg: BGPConfigurationSpec | undefined): number {
  return spec?.bgp?.asNumber ?? cfg?.asNumber ?? DEFAULT_ASN;
}

function isReflector(n: Resource<'Node'>): boolean {
  return !!n.spec.bgp?.routeReflectorClusterID;
}

function labels(n: Resource<'Node'>): Record<string, string> {
  return n.metadata.labels ?? {};
}

function matches(selector: string | undefined, n: Resource<'Node'>): boolean {
  try {
    return selectorMatches(selector, labels(n));
  } catch {
    return false; // a selector that does not parse selects nothing
  }
}

// Lower rank wins when several sources name the same peer address.
const RANK: Record<PeerType, number> = { nodeSpecific: 0, global: 1, routeReflector: 2, rrClient: 2, nodeMesh: 3 };

/** Compares two addresses of one family numerically. */
function cmpIp(a: string, b: string): number {
  const x = parseIp(a).value, y = parseIp(b).value;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Splits BGPPeer.peerIP: "10.0.0.1", "10.0.0.1:1179", "[fd00::1]:1179", "fd00::1". */
export function splitPeerIp(text: string): { address: string; port?: number } | undefined {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) return tryParseIp(bracket[1]) ? { address: bracket[1], port: bracket[2] ? Number(bracket[2]) : undefined } : undefined;
  if (tryParseIp(text)) return { address: text };
  const v4port = /^([0-9.]+):(\d+)$/.exec(text);
  if (v4port && tryParseIp(v4port[1])) return { address: v4port[1], port: Number(v4port[2]) };
  return undefined;
}

/** Computes the peers of `thisNode`, sorted by address; one entry per peer address. */
export function computePeers(inp: PeerInputs): PeerConfig[] {
  const me = inp.thisNode;
  const cfg = inp.bgpConfig;
  const meshOn = cfg?.nodeToNodeMeshEnabled ?? true;
  const clusterPort = cfg?.listenPort ?? DEFAULT_BGP_PORT;
  const meRR = isReflector(me);
  const out = new Map<string, PeerConfig>();
  const clusterAddrs = new Set<string>();
  for (const n of inp.nodes) {
    for (const f of [4, 6] as const) { const a = nodeAddress(n.spec, f); if (a) clusterAddrs.add(a); }
  }

  const put = (p: PeerConfig): void => {
    const cur = out.get(p.address);
    if (!cur || RANK[p.type] < RANK[cur.type]) out.set(p.address, p);
  };

  // A peering between two cluster nodes: same port on both ends, and exactly one side connects
  // (the lower address); the higher one only listens, so no connection collision occurs.
  const clusterPeer = (other: Resource<'Node'>, type: PeerType, extra: Partial<PeerConfig> = {}): void => {
    for (const f of [4, 6] as const) {
      const mine = nodeAddress(me.spec, f), theirs = nodeAddress(other.spec, f);
      if (!mine || !theirs || mine === theirs) continue;
      const p: PeerConfig = {
        address: theirs, asn: nodeAsn(other.spec, cfg), type, localAddress: mine,
        passive: cmpIp(mine, theirs) > 0, ...extra,
      };
      if (clusterPort !== DEFAULT_BGP_PORT) p.port = clusterPort;
      if (meRR && !isReflector(other)) { p.rrClient = true; if (type === 'routeReflector') p.type = 'rrClient'; }
      put(p);
    }
  };

  for (const other of inp.nodes) {
    if (other.metadata.name === me.metadata.name) continue;
    const otherRR = isReflector(other);
    if (meRR || otherRR) {
      // Reflectors peer with each other and with every non-reflector (their clients);
      // the mesh does not include reflectors.
      clusterPeer(other, meRR && !otherRR ? 'rrClient' : 'routeReflector');
    } else if (meshOn) {
      clusterPeer(other, 'nodeMesh');
    }
  }

  for (const bp of inp.bgpPeers) {
    const s: BGPPeerSpec = bp.spec;
    let type: PeerType;
    if (s.node) {
      if (s.node !== me.metadata.name) continue;
      type = 'nodeSpecific';
    } else {
      if (s.nodeSelector && !matches(s.nodeSelector, me)) continue;
      type = 'global';
    }
    const extra: Partial<PeerConfig> = s.password ? { password: s.password } : {};
    if (s.peerSelector) {
      for (const other of inp.nodes) {
        if (other.metadata.name === me.metadata.name || !matches(s.peerSelector, other)) continue;
        clusterPeer(other, type, { ...extra, ...(s.asNumber !== undefined ? { asn: s.asNumber } : {}) });
      }
      continue;
    }
    if (!s.peerIP) continue;
    const target = splitPeerIp(s.peerIP);
    if (!target) continue;
    if (nodeAddress(me.spec, 4) === target.address || nodeAddress(me.spec, 6) === target.address) continue;
    const fam = tryParseIp(target.address)!.family;
    const local = nodeAddress(me.spec, fam);
    const p: PeerConfig = {
      address: target.address,
      asn: s.asNumber ?? nodeAsn(me.spec, cfg),
      type,
      ...extra,
    };
    const port = s.peerPort ?? target.port;
    if (port !== undefined && port !== DEFAULT_BGP_PORT) p.port = port;
    if (local) p.localAddress = local;
    // A BGPPeer naming another cluster node by IP is a cluster peering: one side connects.
    if (clusterAddrs.has(target.address) && local) p.passive = cmpIp(local, target.address) > 0;
    if (meRR && clusterAddrs.has(target.address)) {
      const other = inp.nodes.find((n) => nodeAddress(n.spec, fam) === target.address);
      if (other && !isReflector(other)) p.rrClient = true;
    } else if (meRR && p.asn === nodeAsn(me.spec, cfg)) {
      // Calico's rule for peers outside the cluster: on a reflector node, a BGPPeer in the
      // node's own AS is a route-reflector client (external routers have no cluster ID).
      p.rrClient = true;
    }
    put(p);
  }

  return [...out.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
