// Pod wiring (DESIGN.md "Dataplane"): the veth pair with its peer created directly in the
// pod's namespace, the pod's /32 and /128 with routes via 169.254.1.1 (IPv6: the host
// side's link-local), the host side's fixed MAC, sysctls and host routes; its removal;
// and the CHECK of all of it. One netlink socket per namespace: the pod's socket is opened
// inside the pod namespace and keeps it, so only the pod's sysctls need setns.
import { CniError, ERR_CHECK_FAILED, ERR_DATAPLANE, ERR_INVALID_ENV } from '../cni/errors';
import { NetlinkError } from '../netlink/errors';
import { NetlinkSocket } from '../netlink/socket';
import { closeFd, openNetns, withNetns } from '../netlink/netns';
import { addVeth, delLink, encodeLinkUpRequest, getLink, getLinkByIndex, type Link } from '../netlink/link';
import { encodeAddrRequest, listAddrs } from '../netlink/addr';
import { encodeRouteRequest, getRoute, listRoutes, type Route } from '../netlink/route';
import { encodeNeighParmsRequest } from '../netlink/neigh';
import { getSysctl, setSysctl } from '../netlink/sysctl';
import { formatMac } from '../netlink/codec';
import { NLM_F_CREATE, NLM_F_EXCL, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_SETNEIGHTBL } from '../netlink/constants';
import type { NetlinkRequest } from '../netlink/socket';

export const HOST_MAC = 'ee:ee:ee:ee:ee:ee';
export const GATEWAY4 = '169.254.1.1';
/** The host side's IPv6 link-local: EUI-64 of ee:ee:ee:ee:ee:ee with the U/L bit flipped. */
export const GATEWAY6 = 'fe80::ecee:eeff:feee:eeee';
export const DEFAULT_MTU = 1500;
const OVERHEAD: Record<string, number> = { vxlan: 50, ipip: 20, none: 0 };

export interface PodSpec {
  /** Path of the pod's network namespace. */
  netns: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  ifname: string;
  /** Host-side veth name. */
  hostIfname: string;
  /** Plain addresses ("10.244.0.5", "fd00::5"); configured as /32 and /128. */
  ips: string[];
  mtu: number;
}

export interface PodWiring {
  hostIf: { name: string; mac: string; index: number };
  podIf: { name: string; mac: string; index: number; mtu: number };
}

/** A CniError with code 101 for a failed dataplane step (netlink errno kept in the message). */
export function dataplaneError(err: unknown, what?: string): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(ERR_DATAPLANE, what ? `${what}: ${msg}` : msg);
}

/** Opens a netlink socket inside a namespace (the socket keeps it after we switch back). */
export function openNetlinkIn(netns: string): NetlinkSocket {
  return withNetns(netns, () => NetlinkSocket.open());
}

/** Checks the namespace path can be entered; CniError 4 otherwise. */
export function assertNetns(netns: string): void {
  let fd: number;
  try {
    fd = openNetns(netns);
  } catch (err) {
    throw new CniError(ERR_INVALID_ENV, `netns ${netns}: cannot open`, err instanceof Error ? err.message : undefined);
  }
  closeFd(fd);
}

/** MTU for pods: config `mtu`, else the uplink's (the default route's device) minus the encapsulation overhead. */
export function podMtu(nl: NetlinkSocket, conf: { mtu?: unknown; encapsulation?: unknown }): number {
  if (typeof conf.mtu === 'number' && conf.mtu >= 68) return conf.mtu;
  const overhead = OVERHEAD[typeof conf.encapsulation === 'string' ? conf.encapsulation : 'none'] ?? 0;
  let mtu = DEFAULT_MTU;
  try {
    // A FIB lookup (no packet is sent) of a documentation address finds the uplink the
    // default route uses, without dumping a main table that may hold 100k BGP routes.
    for (const probe of ['192.0.2.1', '2001:db8::1']) {
      let def: ReturnType<typeof getRoute> | undefined;
      try { def = getRoute(nl, probe); } catch { continue; }
      const oif = def?.oif ?? def?.multipath?.[0]?.oif;
      if (oif) {
        const link = getLinkByIndex(nl, oif);
        if (link?.mtu) { mtu = link.mtu; break; }
      }
    }
  } catch { /* no uplink: keep the fallback */ }
  return mtu - overhead;
}

function v6(ip: string): boolean { return ip.includes(':'); }
/** The host side's sysctls (what CHECK reads back); configurePod sets the IPv4 ones through netlink. */
function hostSysctls(ifname: string, hasV6: boolean): [string, string][] {
  return [...hostSysctls4(ifname), ...(hasV6 ? [...hostSysctls6PreUp(ifname), ...hostSysctls6(ifname)] : [])];
}
function hostSysctls4(ifname: string): [string, string][] {
  return [[`net/ipv4/conf/${ifname}/proxy_arp`, '1'], [`net/ipv4/neigh/${ifname}/proxy_delay`, '0'], [`net/ipv4/conf/${ifname}/forwarding`, '1']];
}
/**
 * IPv6's per-device settings have no netlink form (only the token and address mode do): /proc.
 * accept_ra and accept_dad are set on every host side before it is up (hostSideUp); proxy_ndp
 * and forwarding once the pod has an IPv6 address (configurePod). CHECK reads all four.
 */
function hostSysctls6(ifname: string): [string, string][] {
  return [[`net/ipv6/conf/${ifname}/proxy_ndp`, '1'], [`net/ipv6/conf/${ifname}/forwarding`, '1']];
}
function hostSysctls6PreUp(ifname: string): [string, string][] {
  return [[`net/ipv6/conf/${ifname}/accept_ra`, '0'], [`net/ipv6/conf/${ifname}/accept_dad`, '0']];
}

/** A random locally administered unicast MAC, as the kernel gives a veth end without one. */
export function randomMac(): string {
  const b = new Uint8Array(6);
  for (let i = 0; i < 6; i++) b[i] = (Math.random() * 256) | 0;
  b[0] = (b[0] & 0xfe) | 0x02;
  return formatMac(b);
}

/** The two ends of a pod's veth right after creation (see createPodLinks). */
export interface PodLinks { host: Link; pod: Link }

function step<T>(what: string, fn: () => T): T {
  try { return fn(); } catch (err) { throw dataplaneError(err, what); }
}

/**
 * First half of a pod's wiring, which needs no address: the veth pair (the slow part in the
 * kernel) and its host side up with its settings. The plugin runs it while a delegated IPAM
 * plugin is working. Both ends' indexes come from the kernel's echo of the new host side (its
 * IFLA_LINK is the pod side's index) and the pod side's MAC is chosen here, so no lookup
 * follows; a kernel without the echo gets both ends looked up.
 */
export function createPodLinks(nlHost: NetlinkSocket, nlPod: NetlinkSocket, spec: Omit<PodSpec, 'ips'>): PodLinks {
  const { hostIfname, ifname, netns, mtu } = spec;
  const podMac = randomMac();
  // The peer is created directly in the pod namespace (IFLA_NET_NS_FD): no move, no rename.
  const fd = step(`open netns ${netns}`, () => openNetns(netns));
  let echoed: Link | undefined;
  try {
    echoed = addVeth(nlHost, { name: hostIfname, peerName: ifname, peerNetnsFd: fd, mtu, mac: HOST_MAC, peerMac: podMac });
  } catch (err) {
    // Nothing was made: a name already taken (on either side) is the caller's to diagnose.
    if (err instanceof NetlinkError && err.exists) throw new VethExistsError(hostIfname, ifname, netns);
    throw dataplaneError(err, `add veth ${hostIfname} peer ${ifname}`);
  } finally {
    closeFd(fd);
  }
  try {
    let links: PodLinks;
    if (echoed?.peerIndex && echoed.name === hostIfname) {
      links = { host: echoed, pod: { index: echoed.peerIndex, name: ifname, mtu: echoed.mtu, mac: podMac, up: false, flags: 0 } };
    } else {
      const host = step(`get link ${hostIfname}`, () => getLink(nlHost, hostIfname));
      if (!host) throw new CniError(ERR_DATAPLANE, `link ${hostIfname} vanished after creation`);
      const pod = step(`get link ${ifname} in ${netns}`, () => getLink(nlPod, ifname));
      if (!pod) throw new CniError(ERR_DATAPLANE, `link ${ifname} not found in netns ${netns} after creation`);
      links = { host, pod };
    }
    hostSideUp(nlHost, links.host, hostIfname);
    return links;
  } catch (err) {
    // The pair exists but is not usable: removed here, so a failure leaves nothing behind.
    try { teardownPod(nlHost, hostIfname); } catch { /* the first error is the one reported */ }
    throw err;
  }
}

/** createPodLinks found a name taken: the host side in this namespace or `ifname` in the pod's. */
export class VethExistsError extends CniError {
  constructor(readonly hostIfname: string, readonly ifname: string, readonly netns: string) {
    super(ERR_DATAPLANE, `add veth ${hostIfname} peer ${ifname}: file exists`);
  }
}

/**
 * The host side up, before any address is known: IPv6's accept_ra=0 and no DAD first (they
 * must hold before IPv6 configures the link; skipped where the node has IPv6 off), then one
 * series: link up with IPv4 forwarding and proxy_arp (IFLA_AF_SPEC) and proxy_delay 0.
 */
function hostSideUp(nl: NetlinkSocket, host: Link, hostIfname: string): void {
  for (const [key, value] of hostSysctls6PreUp(hostIfname)) {
    try {
      setSysctl(key, value);
    } catch (err) {
      if (err instanceof NetlinkError && err.notFound) break; // no IPv6 here: an IPv6 pod fails in configurePod
      throw dataplaneError(err, `set sysctl ${key}`);
    }
  }
  series(nl, [
    [`set link ${hostIfname} up (forwarding, proxy_arp)`, { type: RTM_NEWLINK, flags: 0, body: encodeLinkUpRequest(host.index, { forwarding: true, proxyArp: true }) }],
    [`set sysctl net/ipv4/neigh/${hostIfname}/proxy_delay`, { type: RTM_SETNEIGHTBL, flags: 0, body: encodeNeighParmsRequest({ family: 4, index: host.index, proxyDelayMs: 0 }) }],
  ]);
}

/**
 * Second half of a pod's wiring (after createPodLinks, with the addresses): the host side's
 * other IPv6 settings when there is an IPv6 address, then two netlink round trips: the pod
 * side's addresses, up and routes; the host's routes to the pod.
 */
export function configurePod(nlHost: NetlinkSocket, nlPod: NetlinkSocket, links: PodLinks, spec: PodSpec): PodWiring {
  const { hostIfname, ifname, netns } = spec;
  const { host, pod } = links;
  const hasV6 = spec.ips.some(v6);
  const hasV4 = spec.ips.some((ip) => !v6(ip));
  if (hasV6) for (const [key, value] of hostSysctls6(hostIfname)) step(`set sysctl ${key}`, () => setSysctl(key, value));
  if (hasV6) {
    // Without DAD the pod's addresses are usable at once (no 1–2 s tentative phase).
    step(`set sysctl accept_dad in ${netns}`, () => withNetns(netns, () => {
      setSysctl(`net/ipv6/conf/${ifname}/accept_dad`, '0');
      setSysctl(`net/ipv6/conf/${ifname}/accept_ra`, '0');
    }));
  }
  const podMsgs: [string, NetlinkRequest, boolean?][] = [];
  for (const ip of spec.ips) {
    const cidr = `${ip}/${v6(ip) ? 128 : 32}`;
    podMsgs.push([`add address ${cidr} dev ${ifname}`, { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeAddrRequest(pod.index, cidr, v6(ip) ? { nodad: true } : {}) }]);
  }
  podMsgs.push([`set link ${ifname} up`, { type: RTM_NEWLINK, flags: 0, body: encodeLinkUpRequest(pod.index) }]);
  for (const r of podRoutes(pod.index, hasV4, hasV6)) podMsgs.push(routeMsg(r, `add route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${ifname}`));
  series(nlPod, podMsgs);
  series(nlHost, hostRoutes(host.index, spec.ips).map((r) => routeMsg(r, `add route ${r.dst} dev ${hostIfname}`)));
  return {
    hostIf: { name: hostIfname, mac: HOST_MAC, index: host.index },
    podIf: { name: ifname, mac: pod.mac, index: pod.index, mtu: pod.mtu },
  };
}

/** A route to add, where one already there is fine (ensureRoute's rule). */
function routeMsg(r: Route, what: string): [string, NetlinkRequest, boolean] {
  return [what, { type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeRouteRequest(r) }, true];
}

/** Sends steps in one round trip; throws the first failure in order (as a 101 naming its step). */
function series(nl: NetlinkSocket, steps: [string, NetlinkRequest, boolean?][]): void {
  const errors = nl.requestSeries(steps.map((s) => s[0]), steps.map((s) => s[1]));
  errors.forEach((err, i) => {
    if (err && !(steps[i][2] && err.exists)) throw dataplaneError(err, steps[i][0]);
  });
}

function podRoutes(index: number, hasV4: boolean, hasV6: boolean): Route[] {
  const out: Route[] = [];
  if (hasV4) {
    out.push({ family: 4, dst: `${GATEWAY4}/32`, oif: index, scope: 'link' });
    out.push({ family: 4, dst: '0.0.0.0/0', gateway: GATEWAY4, oif: index });
  }
  if (hasV6) out.push({ family: 6, dst: '::/0', gateway: GATEWAY6, oif: index });
  return out;
}

function hostRoutes(index: number, ips: string[]): Route[] {
  return ips.map((ip) => v6(ip)
    ? { family: 6 as const, dst: `${ip}/128`, oif: index }
    : { family: 4 as const, dst: `${ip}/32`, oif: index, scope: 'link' as const });
}

/**
 * Removes the pod's veth: the host side by name (its peer goes with it), else the pod side
 * when the namespace is still there. Already gone is success.
 */
export function teardownPod(nlHost: NetlinkSocket, hostIfname: string, pod?: { netns: string; ifname: string }): boolean {
  const gone = (err: unknown) => err instanceof NetlinkError && err.notFound;
  try {
    const host = getLink(nlHost, hostIfname);
    if (host) {
      delLink(nlHost, host.index);
      return true;
    }
  } catch (err) {
    if (!gone(err)) throw dataplaneError(err, `delete link ${hostIfname}`);
  }
  if (!pod?.netns) return false;
  let nlPod: NetlinkSocket | undefined;
  try {
    nlPod = openNetlinkIn(pod.netns);
  } catch {
    return false; // the namespace is gone, and the veth with it
  }
  try {
    const link = getLink(nlPod, pod.ifname);
    // Only a veth whose peer faced this host name is ours to delete.
    if (link && link.kind === 'veth') { delLink(nlPod, link.index); return true; }
  } catch (err) {
    if (!gone(err)) throw dataplaneError(err, `delete link ${pod.ifname} in ${pod.netns}`);
  } finally {
    nlPod.close();
  }
  return false;
}

/** What CHECK compares against: the attachment as ADD built it. */
export interface PodExpect extends PodSpec { podMac?: string }

function fail(piece: string, details?: string): never {
  throw new CniError(ERR_CHECK_FAILED, piece, details);
}

/** Verifies every piece of the wiring; throws CniError 102 naming the first missing or altered piece. */
export function checkPod(nlHost: NetlinkSocket, nlPod: NetlinkSocket, want: PodExpect): void {
  const { hostIfname, ifname, netns } = want;
  const hasV6 = want.ips.some(v6);
  const hasV4 = want.ips.some((ip) => !v6(ip));

  const pod: Link | undefined = getLink(nlPod, ifname);
  if (!pod) fail(`interface ${ifname} not found in netns ${netns}`);
  if (!pod.up) fail(`interface ${ifname} in netns ${netns} is down`);
  if (want.podMac && pod.mac.toLowerCase() !== want.podMac.toLowerCase()) {
    fail(`interface ${ifname} in netns ${netns} has mac ${pod.mac}, want ${want.podMac}`);
  }
  if (want.mtu && pod.mtu !== want.mtu) fail(`interface ${ifname} in netns ${netns} has mtu ${pod.mtu}, want ${want.mtu}`);
  const addrs = listAddrs(nlPod, { index: pod.index });
  for (const ip of want.ips) {
    const len = v6(ip) ? 128 : 32;
    const have = addrs.some((a) => a.address === ip && a.prefixLen === len);
    if (!have) fail(`address ${ip}/${len} missing on ${ifname} in netns ${netns}`);
  }
  const podRts = [...(hasV4 ? listRoutes(nlPod, { family: 4, oif: pod.index }) : []), ...(hasV6 ? listRoutes(nlPod, { family: 6, oif: pod.index }) : [])];
  for (const r of podRoutes(pod.index, hasV4, hasV6)) {
    const have = podRts.some((x) => x.dst === r.dst && (x.gateway ?? '') === (r.gateway ?? '') && (x.oif === pod.index || x.oif === undefined));
    if (!have) fail(`route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${ifname} missing in netns ${netns}`);
  }

  const host = getLink(nlHost, hostIfname);
  if (!host) fail(`host veth ${hostIfname} not found`);
  if (host.kind && host.kind !== 'veth') fail(`host link ${hostIfname} is a ${host.kind}, not a veth`);
  if (!host.up) fail(`host veth ${hostIfname} is down`);
  if (host.mac.toLowerCase() !== HOST_MAC) fail(`host veth ${hostIfname} has mac ${host.mac}, want ${HOST_MAC}`);
  // One FIB lookup per address (`ip route get fibmatch`): the node's table may hold 100k routes.
  for (const r of hostRoutes(host.index, want.ips)) {
    let got: Route | undefined;
    try { got = getRoute(nlHost, r.dst, { fibmatch: true }); } catch { got = undefined; }
    if (!got || got.dst !== r.dst || got.oif !== host.index) fail(`host route ${r.dst} dev ${hostIfname} missing`);
  }
  for (const [key, value] of hostSysctls(hostIfname, hasV6)) {
    let have: string;
    try { have = getSysctl(key).trim(); } catch { have = '(unreadable)'; }
    if (have !== value) fail(`sysctl ${key.replace(/\//g, '.')} is ${have}, want ${value}`);
  }
}

/** Opens sockets for both namespaces, runs fn, closes them. */
export function withPodSockets<T>(netns: string, fn: (nlHost: NetlinkSocket, nlPod: NetlinkSocket) => T): T {
  const nlHost = NetlinkSocket.open();
  try {
    let nlPod: NetlinkSocket;
    try {
      nlPod = openNetlinkIn(netns);
    } catch (err) {
      throw new CniError(ERR_INVALID_ENV, `netns ${netns}: cannot enter`, err instanceof Error ? err.message : undefined);
    }
    try {
      return fn(nlHost, nlPod);
    } finally {
      nlPod.close();
    }
  } finally {
    nlHost.close();
  }
}
