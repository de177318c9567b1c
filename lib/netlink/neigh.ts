// Neighbours (RTM_NEWNEIGH/DELNEIGH/GETNEIGH): ARP/NDP entries, and bridge FDB entries
// (AF_BRIDGE) such as a VXLAN device's per-MAC and all-zeros flood entries with NTF_SELF.
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_VNI, NLM_F_APPEND, NLM_F_CREATE,
  NDTA_NAME, NDTA_PARMS, NDTPA_IFINDEX, NDTPA_PROXY_DELAY,
  NLM_F_EXCL, NLM_F_REPLACE, NTF_SELF, NUD_NOARP, NUD_PERMANENT, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH, RTM_SETNEIGHTBL,
} from './constants';
import { NDMSG_LEN, NlWriter, attrU32, decodeAttrs, decodeNdMsg, encodeNdMsg, formatMac, ipText, parseMac } from './codec';
import type { NetlinkSocket } from './socket';

export type NeighFamily = 4 | 6 | 'bridge';

/** A neighbour or FDB entry. */
export interface Neigh {
  index: number;
  family: NeighFamily;
  /** NDA_DST: the neighbour's address, or for an FDB entry the remote VTEP. */
  ip?: string;
  /** NDA_LLADDR. */
  mac?: string;
  /** NUD_* (default NUD_PERMANENT; FDB default NUD_NOARP|NUD_PERMANENT as `bridge fdb` sends). */
  state?: number;
  /** NTF_* (FDB default NTF_SELF). */
  flags?: number;
  /** NDA_VNI for VXLAN FDB entries. */
  vni?: number;
  /** NDA_MASTER (decoded). */
  master?: number;
}

function familyNum(f: NeighFamily): number {
  return f === 'bridge' ? AF_BRIDGE : f === 6 ? AF_INET6 : AF_INET;
}

/** Body of `ip neigh add|replace|del` / `bridge fdb add|append|del`. */
export function encodeNeighRequest(n: Neigh): Uint8Array {
  const bridge = n.family === 'bridge';
  const w = new NlWriter(64);
  encodeNdMsg(w, {
    family: familyNum(n.family),
    index: n.index,
    state: n.state ?? (bridge ? NUD_NOARP | NUD_PERMANENT : NUD_PERMANENT),
    flags: n.flags ?? (bridge ? NTF_SELF : 0),
    type: 0,
  });
  if (n.ip) w.attrIp(NDA_DST, n.ip);
  if (n.mac) w.attr(NDA_LLADDR, parseMac(n.mac));
  if (n.vni !== undefined) w.attrU32(NDA_VNI, n.vni);
  return w.take();
}

function what(n: Neigh): string {
  const parts = n.family === 'bridge' ? [`fdb ${n.mac ?? ''}`, n.ip ? `dst ${n.ip}` : ''] : [`neighbour ${n.ip ?? ''}`, n.mac ? `lladdr ${n.mac}` : ''];
  return `${parts.filter(Boolean).join(' ')} dev ${n.index}`;
}

/** Equivalent to `ip neigh add IP lladdr MAC dev X nud permanent` / `bridge fdb add MAC dev X dst IP`. */
export function addNeigh(nl: NetlinkSocket, n: Neigh): void {
  nl.request(`add ${what(n)}`, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, encodeNeighRequest(n));
}

/** Equivalent to `ip neigh replace ...` / `bridge fdb replace ...`. */
export function replaceNeigh(nl: NetlinkSocket, n: Neigh): void {
  nl.request(`replace ${what(n)}`, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, encodeNeighRequest(n));
}

/** Adds another destination for the same MAC. Equivalent to `bridge fdb append MAC dev X dst IP`. */
export function appendNeigh(nl: NetlinkSocket, n: Neigh): void {
  nl.request(`append ${what(n)}`, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, encodeNeighRequest(n));
}

/** Equivalent to `ip neigh del IP dev X` / `bridge fdb del MAC dev X [dst IP]`. */
export function delNeigh(nl: NetlinkSocket, n: Neigh): void {
  nl.request(`delete ${what(n)}`, RTM_DELNEIGH, 0, encodeNeighRequest(n));
}

/** Decodes an RTM_NEWNEIGH payload. */
export function decodeNeigh(payload: Uint8Array): Neigh {
  const m = decodeNdMsg(payload);
  const a = decodeAttrs(payload, NDMSG_LEN);
  const n: Neigh = {
    index: m.index,
    family: m.family === AF_BRIDGE ? 'bridge' : m.family === AF_INET6 ? 6 : 4,
    state: m.state,
    flags: m.flags,
  };
  if (a[NDA_DST]) n.ip = ipText(a[NDA_DST]!);
  if (a[NDA_LLADDR]) n.mac = formatMac(a[NDA_LLADDR]!);
  if (a[NDA_VNI]) n.vni = attrU32(a[NDA_VNI]!);
  if (a[NDA_MASTER]) n.master = attrU32(a[NDA_MASTER]!);
  return n;
}

/** Neighbours/FDB entries. Equivalent to `ip neigh show [dev X]` / `bridge fdb show [dev X]`. */
export function listNeighs(nl: NetlinkSocket, filter: { index?: number; family?: NeighFamily } = {}): Neigh[] {
  const w = new NlWriter(16);
  encodeNdMsg(w, { family: filter.family === undefined ? AF_UNSPEC : familyNum(filter.family), index: 0, state: 0, flags: 0, type: 0 });
  return nl.dump('list neighbours', RTM_GETNEIGH, w.view(), (t, p) => {
    if (t !== RTM_NEWNEIGH) return undefined;
    const n = decodeNeigh(p);
    if (filter.index !== undefined && n.index !== filter.index) return undefined;
    if (filter.family !== undefined && n.family !== filter.family) return undefined;
    return n;
  });
}

/** Per-device neighbour parameters (sysctl net.ipv4.neigh.<dev>.* / net.ipv6.neigh.<dev>.*) that RTM_SETNEIGHTBL sets. */
export interface NeighParms {
  family: 4 | 6;
  index: number;
  /** proxy_delay in ms (the sysctl's unit is jiffies shown as such; 0 is 0 in both). */
  proxyDelayMs?: number;
}

/**
 * Body of RTM_SETNEIGHTBL for one device's parameters of the ARP (arp_cache) or NDP
 * (ndisc_cache) table: ndtmsg, NDTA_NAME, NDTA_PARMS { NDTPA_IFINDEX, NDTPA_PROXY_DELAY (u64 ms) }.
 * Equivalent to writing net.ipv4.neigh.<dev>.proxy_delay.
 */
export function encodeNeighParmsRequest(p: NeighParms): Uint8Array {
  const w = new NlWriter(64);
  // struct ndtmsg { u8 ndtm_family; u8 pad1; u16 pad2; }
  w.u8(p.family === 6 ? AF_INET6 : AF_INET);
  w.u8(0);
  w.u16(0);
  w.attrString(NDTA_NAME, p.family === 6 ? 'ndisc_cache' : 'arp_cache');
  const parms = w.beginNested(NDTA_PARMS);
  w.attrU32(NDTPA_IFINDEX, p.index);
  if (p.proxyDelayMs !== undefined) {
    const v = new Uint8Array(8), dv = new DataView(v.buffer);
    dv.setUint32(0, p.proxyDelayMs >>> 0, true);
    dv.setUint32(4, Math.floor(p.proxyDelayMs / 0x100000000), true);
    w.attr(NDTPA_PROXY_DELAY, v);
  }
  w.endNested(parms);
  return w.take();
}

/** Sets one device's neighbour parameters; see encodeNeighParmsRequest. */
export function setNeighParms(nl: NetlinkSocket, p: NeighParms): void {
  nl.request(`set neigh parms of ${p.index}`, RTM_SETNEIGHTBL, 0, encodeNeighParmsRequest(p));
}
