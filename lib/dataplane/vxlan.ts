// The node's VXLAN tunnel: device `vxlan.brindle` (VNI 4096, UDP 4789, no learning), its VTEP
// MAC derived from the node name and its tunnel address (allocated by IPAM, published on the
// node record), and per remote node a neighbour entry (tunnel IP → MAC) and an FDB entry
// (MAC → node IP), as Calico's felix programs them. Uses lib/netlink in the current namespace.
import { createHash } from 'node:crypto';

export const VXLAN_DEVICE = 'vxlan.brindle';
export const VXLAN_VNI = 4096;
export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** A stable, locally administered unicast MAC for a node's VTEP: from sha256(node name). */
export function vtepMac(nodeName: string): string {
  const h = createHash('sha256').update(`brindle-vtep:${nodeName}`).digest();
  h[0] = (h[0] & 0xfe) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export interface VtepPeer { nodeIp: string; tunnelAddress: string; mac: string }

type NL = any; // lib/netlink NetlinkSocket

function nl() {
  /* eslint-disable @typescript-eslint/no-var-requires */
  return {
    link: require('../netlink/link') as any,
    addr: require('../netlink/addr') as any,
    neigh: require('../netlink/neigh') as any,
  };
}

/**
 * Makes sure vxlan.brindle exists with our VTEP MAC, is up and holds the tunnel address (/32).
 * Equivalent to `ip link add vxlan.brindle type vxlan id 4096 dstport 4789 local <ip> nolearning`.
 * Returns the device index.
 */
export function ensureVxlanDevice(sock: NL, opts: { localIp: string; mac: string; tunnelAddress: string; mtu?: number }): number {
  const { link, addr } = nl();
  let dev = link.getLink(sock, VXLAN_DEVICE);
  if (dev && dev.kind && dev.kind !== 'vxlan') { link.delLink(sock, dev.index); dev = undefined; }
  if (!dev) {
    link.addVxlan(sock, { name: VXLAN_DEVICE, vni: VXLAN_VNI, port: VXLAN_PORT, localIp: opts.localIp, learning: false, mtu: opts.mtu, mac: opts.mac });
    dev = link.getLink(sock, VXLAN_DEVICE);
  } else {
    if (dev.mac && dev.mac.toLowerCase() !== opts.mac) link.setLinkMac(sock, dev.index, opts.mac);
    if (opts.mtu && dev.mtu !== opts.mtu) link.setLinkMtu(sock, dev.index, opts.mtu);
  }
  if (!dev) throw new Error(`add link ${VXLAN_DEVICE}: not found after creation`);
  const want = `${opts.tunnelAddress}/32`;
  for (const a of addr.listAddrs(sock, { index: dev.index, family: 4 })) {
    if (`${a.address}/${a.prefixLen}` !== want) addr.delAddr(sock, dev.index, `${a.address}/${a.prefixLen}`);
  }
  addr.ensureAddr(sock, dev.index, want);
  if (!dev.up) link.setLinkUp(sock, dev.index);
  return dev.index;
}

/** Removes vxlan.brindle if present (`ip link del vxlan.brindle`). */
export function removeVxlanDevice(sock: NL): void {
  const { link } = nl();
  const dev = link.getLink(sock, VXLAN_DEVICE);
  if (dev) link.delLink(sock, dev.index);
}

/** Index of vxlan.brindle, if present. */
export function vxlanIndex(sock: NL): number | undefined {
  return nl().link.getLink(sock, VXLAN_DEVICE)?.index;
}

/**
 * Programs the neighbour and FDB entries of every remote VTEP and removes those of nodes that
 * are gone. `ip neigh replace <tunnel ip> lladdr <mac> dev vxlan.brindle nud permanent` and
 * `bridge fdb replace <mac> dev vxlan.brindle dst <node ip> self permanent`.
 */
export function syncVtepPeers(sock: NL, index: number, peers: VtepPeer[]): { errors: Error[] } {
  const { neigh } = nl();
  const errors: Error[] = [];
  const wantMacs = new Set(peers.map((p) => p.mac.toLowerCase()));
  const wantIps = new Set(peers.map((p) => p.tunnelAddress));
  for (const p of peers) {
    try {
      neigh.replaceNeigh(sock, { index, family: 4, ip: p.tunnelAddress, mac: p.mac, state: NUD_PERMANENT });
      neigh.replaceNeigh(sock, { index, family: 'bridge', ip: p.nodeIp, mac: p.mac, state: NUD_PERMANENT, flags: NTF_SELF });
    } catch (err) { errors.push(err as Error); }
  }
  try {
    for (const n of neigh.listNeighs(sock, { index, family: 4 }) as any[]) {
      if (n.index === index && n.ip && !wantIps.has(n.ip)) { try { neigh.delNeigh(sock, n); } catch (e) { errors.push(e as Error); } }
    }
    for (const n of neigh.listNeighs(sock, { index, family: 'bridge' }) as any[]) {
      if (n.index === index && n.mac && n.ip && !wantMacs.has(String(n.mac).toLowerCase())) { try { neigh.delNeigh(sock, n); } catch (e) { errors.push(e as Error); } }
    }
  } catch (err) { errors.push(err as Error); }
  return { errors };
}
