// Links (RTM_NEWLINK/DELLINK/GETLINK): veth pairs with the peer created straight into another
// namespace, vxlan and bridge devices, up/down, MTU, MAC, name, master, and lookups.
import {
  AF_INET, AF_UNSPEC, IFF_LOWER_UP, IFLA_AF_SPEC, IFLA_INET_CONF, IPV4_DEVCONF_FORWARDING, IPV4_DEVCONF_PROXY_ARP, NLM_F_ECHO, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
  IFLA_LINK, IFLA_LINK_NETNSID, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_NET_NS_FD, IFLA_NUM_RX_QUEUES, IFLA_NUM_TX_QUEUES, IFLA_OPERSTATE,
  IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, IFLA_VXLAN_PORT,
  IF_OPER_UP, NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, VETH_INFO_PEER,
} from './constants';
import {
  NlWriter, attrString, attrU32, attrU8, decodeAttrs, decodeIfInfoMsg, encodeIfInfoMsg, formatMac, IFINFOMSG_LEN, parseMac,
} from './codec';
import { NetlinkError } from './errors';
import type { NetlinkSocket } from './socket';

/** A network interface as `ip link show` reports it. */
export interface Link {
  index: number;
  name: string;
  mtu: number;
  /** Link-layer address, lowercase colon text ('' when the device has none). */
  mac: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operationally up (IFLA_OPERSTATE is IF_OPER_UP, or carrier when unknown). */
  operUp?: boolean;
  /** IFLA_INFO_KIND: 'veth', 'vxlan', 'bridge'... */
  kind?: string;
  /** Index of the master device (bridge), IFLA_MASTER. */
  master?: number;
  /** IFLA_LINK: the veth peer's index (in its own namespace when linkNetnsId is set). */
  peerIndex?: number;
  /** IFLA_LINK_NETNSID: the peer's namespace id when it lives elsewhere. */
  linkNetnsId?: number;
  /** ifi_flags (IFF_*). */
  flags: number;
}

export interface VethOptions {
  name: string;
  peerName: string;
  /** Create the peer directly in this namespace (an fd from openNetns), IFLA_NET_NS_FD. */
  peerNetnsFd?: number;
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** Defaults to mtu. */
  peerMtu?: number;
  /**
   * TX and RX queues of each end (IFLA_NUM_TX_QUEUES/IFLA_NUM_RX_QUEUES), default 1: what the
   * kernel leaves a veth with anyway. Left out, a recent kernel (6.18 here) creates one queue per possible
   * CPU and then cuts the real count back to one, and that cut waits for an expedited RCU grace
   * period, once per end: IPIs to every CPU, which on a VM wait for idle vCPUs to wake.
   */
  queues?: number;
}

export interface VxlanOptions {
  name: string;
  vni: number;
  /** UDP destination port (IFLA_VXLAN_PORT); 4789 is the IANA port. */
  port: number;
  localIp: string;
  learning?: boolean;
  mtu?: number;
  mac?: string;
  /** Underlay device index (IFLA_VXLAN_LINK). */
  dev?: number;
}

function ifinfo(w: NlWriter, index: number, flags = 0, change = 0): void {
  encodeIfInfoMsg(w, { family: AF_UNSPEC, type: 0, index, flags, change });
}

/**
 * Starts an RTM_NEWLINK body for a new link of `kind`: ifinfomsg, IFLA_IFNAME, [IFLA_MTU],
 * [IFLA_ADDRESS], then IFLA_LINKINFO with IFLA_INFO_KIND left open; returns its offset.
 */
function beginNewLink(w: NlWriter, o: { name: string; mtu?: number; mac?: string; queues?: number }, kind: string): number {
  ifinfo(w, 0);
  w.attrString(IFLA_IFNAME, o.name);
  if (o.mtu !== undefined) w.attrU32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) w.attr(IFLA_ADDRESS, parseMac(o.mac));
  queueAttrs(w, o.queues);
  const li = w.beginNested(IFLA_LINKINFO);
  w.attrString(IFLA_INFO_KIND, kind);
  return li;
}

function queueAttrs(w: NlWriter, queues: number | undefined): void {
  if (queues === undefined) return;
  w.attrU32(IFLA_NUM_TX_QUEUES, queues);
  w.attrU32(IFLA_NUM_RX_QUEUES, queues);
}

/** Body of `ip link add NAME [mtu M] [address A] numtxqueues Q numrxqueues Q type veth peer name P [address] [mtu] [numtxqueues Q numrxqueues Q] [netns]`. */
export function encodeVethRequest(o: VethOptions): Uint8Array {
  const w = new NlWriter(256);
  const queues = o.queues ?? 1;
  const li = beginNewLink(w, { ...o, queues }, 'veth');
  const data = w.beginNested(IFLA_INFO_DATA);
  // VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's IFLA_* attributes.
  const peer = w.beginNested(VETH_INFO_PEER);
  ifinfo(w, 0);
  w.attrString(IFLA_IFNAME, o.peerName);
  const peerMtu = o.peerMtu ?? o.mtu;
  if (peerMtu !== undefined) w.attrU32(IFLA_MTU, peerMtu);
  if (o.peerMac !== undefined) w.attr(IFLA_ADDRESS, parseMac(o.peerMac));
  queueAttrs(w, queues);
  if (o.peerNetnsFd !== undefined) w.attrU32(IFLA_NET_NS_FD, o.peerNetnsFd);
  w.endNested(peer);
  w.endNested(data);
  w.endNested(li);
  return w.take();
}

/**
 * Creates a veth pair. Equivalent to `ip link add NAME type veth peer name PEER [netns NS]`.
 * Returns the new link NAME as the kernel echoes it (NLM_F_ECHO, Linux 6.2+): its index, and
 * in peerIndex the peer's index in the peer's namespace; undefined from a kernel that does not
 * echo (look the two ends up then).
 */
export function addVeth(nl: NetlinkSocket, o: VethOptions): Link | undefined {
  let link: Link | undefined;
  nl.requestEach(`add veth ${o.name} peer ${o.peerName}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, encodeVethRequest(o), (t, p) => {
    if (t === RTM_NEWLINK) link = decodeLink(p);
  });
  return link;
}

/** Body of `ip link add NAME type vxlan id VNI local IP dstport PORT [nolearning] [dev D]`. */
export function encodeVxlanRequest(o: VxlanOptions): Uint8Array {
  const w = new NlWriter(256);
  const li = beginNewLink(w, o, 'vxlan');
  const data = w.beginNested(IFLA_INFO_DATA);
  w.attrU32(IFLA_VXLAN_ID, o.vni);
  if (o.dev !== undefined) w.attrU32(IFLA_VXLAN_LINK, o.dev);
  const at = w.off;
  if (w.attrIp(IFLA_VXLAN_LOCAL, o.localIp) === 6) w.dv.setUint16(at + 2, IFLA_VXLAN_LOCAL6, true);
  w.attrBe16(IFLA_VXLAN_PORT, o.port);
  w.attrU8(IFLA_VXLAN_LEARNING, o.learning ? 1 : 0);
  w.endNested(data);
  w.endNested(li);
  return w.take();
}

/** Creates a VXLAN device. Equivalent to `ip link add NAME type vxlan id VNI local IP dstport PORT nolearning`. */
export function addVxlan(nl: NetlinkSocket, o: VxlanOptions): void {
  nl.request(`add vxlan ${o.name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeVxlanRequest(o));
}

/** Creates a bridge. Equivalent to `ip link add NAME type bridge`. */
export function addBridge(nl: NetlinkSocket, o: { name: string; mtu?: number; mac?: string }): void {
  const w = new NlWriter(128);
  const li = beginNewLink(w, o, 'bridge');
  w.endNested(li);
  nl.request(`add bridge ${o.name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, w.view());
}

/** Decodes an RTM_NEWLINK payload. */
export function decodeLink(payload: Uint8Array): Link {
  const m = decodeIfInfoMsg(payload);
  const a = decodeAttrs(payload, IFINFOMSG_LEN);
  const link: Link = {
    index: m.index,
    name: a[IFLA_IFNAME] ? attrString(a[IFLA_IFNAME]!) : '',
    mtu: a[IFLA_MTU] ? attrU32(a[IFLA_MTU]!) : 0,
    mac: a[IFLA_ADDRESS] ? formatMac(a[IFLA_ADDRESS]!) : '',
    up: (m.flags & IFF_UP) !== 0,
    flags: m.flags,
  };
  const oper = a[IFLA_OPERSTATE] ? attrU8(a[IFLA_OPERSTATE]!) : undefined;
  link.operUp = oper === IF_OPER_UP || ((oper === undefined || oper === 0) && (m.flags & IFF_LOWER_UP) !== 0);
  if (a[IFLA_LINKINFO]) {
    const li = decodeAttrs(a[IFLA_LINKINFO]!);
    if (li[IFLA_INFO_KIND]) link.kind = attrString(li[IFLA_INFO_KIND]!);
  }
  if (a[IFLA_MASTER]) link.master = attrU32(a[IFLA_MASTER]!);
  if (a[IFLA_LINK]) link.peerIndex = attrU32(a[IFLA_LINK]!);
  if (a[IFLA_LINK_NETNSID]) link.linkNetnsId = attrU32(a[IFLA_LINK_NETNSID]!) | 0;
  return link;
}

function getOne(nl: NetlinkSocket, op: string, body: Uint8Array): Link | undefined {
  try {
    let link: Link | undefined;
    nl.requestEach(op, RTM_GETLINK, 0, body, (_t, p) => { link = decodeLink(p); });
    return link;
  } catch (err) {
    if (err instanceof NetlinkError && err.notFound) return undefined;
    throw err;
  }
}

/** The link with this name, or undefined. Equivalent to `ip link show dev NAME`. */
export function getLink(nl: NetlinkSocket, name: string): Link | undefined {
  const w = new NlWriter(64);
  ifinfo(w, 0);
  w.attrString(IFLA_IFNAME, name);
  return getOne(nl, `get link ${name}`, w.view());
}

/** The link with this index, or undefined. Equivalent to `ip link show` filtered by index. */
export function getLinkByIndex(nl: NetlinkSocket, index: number): Link | undefined {
  const w = new NlWriter(32);
  ifinfo(w, index);
  return getOne(nl, `get link ${index}`, w.view());
}

/** All links of the socket's namespace. Equivalent to `ip link show`. */
export function listLinks(nl: NetlinkSocket): Link[] {
  const w = new NlWriter(32);
  ifinfo(w, 0);
  return nl.dump('list links', RTM_GETLINK, w.view(), (t, p) => (t === RTM_NEWLINK ? decodeLink(p) : undefined));
}

function setLink(nl: NetlinkSocket, op: string, index: number, fill: (w: NlWriter) => void, flags = 0, change = 0): void {
  const w = new NlWriter(64);
  ifinfo(w, index, flags, change);
  fill(w);
  nl.request(op, RTM_NEWLINK, 0, w.view());
}

/** IPv4 settings of a device (sysctl net.ipv4.conf.<dev>.*) that RTM_NEWLINK can set (IFLA_INET_CONF). */
export interface Ipv4DevConf { forwarding?: boolean; proxyArp?: boolean }

/**
 * Body of `ip link set dev X up`, with IPv4 device settings in the same message when given
 * (IFLA_AF_SPEC → AF_INET → IFLA_INET_CONF: what writing net.ipv4.conf.X.forwarding and
 * proxy_arp does, without opening /proc files).
 */
export function encodeLinkUpRequest(index: number, conf?: Ipv4DevConf): Uint8Array {
  const w = new NlWriter(64);
  ifinfo(w, index, IFF_UP, IFF_UP);
  if (conf && (conf.forwarding !== undefined || conf.proxyArp !== undefined)) {
    const spec = w.beginNested(IFLA_AF_SPEC);
    const inet = w.beginNested(AF_INET);
    const c = w.beginNested(IFLA_INET_CONF);
    if (conf.forwarding !== undefined) w.attrU32(IPV4_DEVCONF_FORWARDING, conf.forwarding ? 1 : 0);
    if (conf.proxyArp !== undefined) w.attrU32(IPV4_DEVCONF_PROXY_ARP, conf.proxyArp ? 1 : 0);
    w.endNested(c);
    w.endNested(inet);
    w.endNested(spec);
  }
  return w.take();
}

/** Equivalent to `ip link set dev X up` (and the IPv4 settings in `conf`). */
export function setLinkUp(nl: NetlinkSocket, index: number, conf?: Ipv4DevConf): void {
  nl.request(`set link ${index} up`, RTM_NEWLINK, 0, encodeLinkUpRequest(index, conf));
}

/** Equivalent to `ip link set dev X down`. */
export function setLinkDown(nl: NetlinkSocket, index: number): void {
  setLink(nl, `set link ${index} down`, index, () => undefined, 0, IFF_UP);
}

/** Equivalent to `ip link set dev X mtu M`. */
export function setLinkMtu(nl: NetlinkSocket, index: number, mtu: number): void {
  setLink(nl, `set link ${index} mtu ${mtu}`, index, (w) => w.attrU32(IFLA_MTU, mtu));
}

/** Equivalent to `ip link set dev X address MAC`. */
export function setLinkMac(nl: NetlinkSocket, index: number, mac: string): void {
  setLink(nl, `set link ${index} address ${mac}`, index, (w) => w.attr(IFLA_ADDRESS, parseMac(mac)));
}

/** Equivalent to `ip link set dev X name NEW` (older kernels refuse an up link with EBUSY). */
export function renameLink(nl: NetlinkSocket, index: number, name: string): void {
  setLink(nl, `rename link ${index} to ${name}`, index, (w) => w.attrString(IFLA_IFNAME, name));
}

/** Equivalent to `ip link set dev X master BR` (masterIndex 0: `nomaster`). */
export function setLinkMaster(nl: NetlinkSocket, index: number, masterIndex: number): void {
  setLink(nl, `set link ${index} master ${masterIndex}`, index, (w) => w.attrU32(IFLA_MASTER, masterIndex));
}

/** Moves a link to another namespace (fd from openNetns). Equivalent to `ip link set dev X netns NS`. */
export function setLinkNetns(nl: NetlinkSocket, index: number, netnsFd: number): void {
  setLink(nl, `set link ${index} netns`, index, (w) => w.attrU32(IFLA_NET_NS_FD, netnsFd));
}

/** Deletes a link (a veth takes its peer along). Equivalent to `ip link del dev X`. */
export function delLink(nl: NetlinkSocket, index: number): void {
  const w = new NlWriter(32);
  ifinfo(w, index);
  nl.request(`delete link ${index}`, RTM_DELLINK, 0, w.view());
}
