// Pod wiring (DESIGN.md "Dataplane"): the veth pair with its peer created directly in the
// pod's namespace, the pod's /32 and /128 with routes via 169.254.1.1 (IPv6: the host
// side's link-local), the host side's fixed MAC, sysctls and host routes; its removal;
// and the CHECK of all of it. One netlink socket per namespace: the pod's socket is opened
// inside the pod namespace and keeps it, so only the pod's sysctls need setns.
import { CniError, ERR_CHECK_FAILED, ERR_DATAPLANE, ERR_INVALID_ENV } from '../cni/errors';
import { NetlinkError } from '../netlink/errors';
import { NetlinkSocket } from '../netlink/socket';
import { closeFd, openNetns, withNetns } from '../netlink/netns';
import { addVeth, delLink, getLink, getLinkByIndex, setLinkUp, type Link } from '../netlink/link';
import { addAddr, listAddrs } from '../netlink/addr';
import { ensureRoute, getRoute, listRoutes, type Route } from '../netlink/route';
import { getSysctl, setSysctl } from '../netlink/sysctl';

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
function hostSysctls(ifname: string, hasV6: boolean): [string, string][] {
  const s: [string, string][] = [
    [`net/ipv4/conf/${ifname}/proxy_arp`, '1'],
    [`net/ipv4/neigh/${ifname}/proxy_delay`, '0'],
    [`net/ipv4/conf/${ifname}/forwarding`, '1'],
  ];
  if (hasV6) {
    s.push([`net/ipv6/conf/${ifname}/accept_ra`, '0'], [`net/ipv6/conf/${ifname}/proxy_ndp`, '1'],
      [`net/ipv6/conf/${ifname}/forwarding`, '1']);
  }
  return s;
}

/** The two ends of a pod's veth right after creation (see createPodLinks). */
export interface PodLinks { host: Link; pod: Link }

function step<T>(what: string, fn: () => T): T {
  try { return fn(); } catch (err) { throw dataplaneError(err, what); }
}

/**
 * First half of a pod's wiring, which needs no address: the veth pair (the slow part in the
 * kernel), both ends looked up. The plugin runs it while a delegated IPAM plugin is working.
 */
export function createPodLinks(nlHost: NetlinkSocket, nlPod: NetlinkSocket, spec: Omit<PodSpec, 'ips'>): PodLinks {
  const { hostIfname, ifname, netns, mtu } = spec;
  // The peer is created directly in the pod namespace (IFLA_NET_NS_FD): no move, no rename.
  const fd = step(`open netns ${netns}`, () => openNetns(netns));
  try {
    addVeth(nlHost, { name: hostIfname, peerName: ifname, peerNetnsFd: fd, mtu, mac: HOST_MAC });
  } catch (err) {
    // Nothing was made: a name already taken (on either side) is the caller's to diagnose.
    if (err instanceof NetlinkError && err.exists) throw new VethExistsError(hostIfname, ifname, netns);
    throw dataplaneError(err, `add veth ${hostIfname} peer ${ifname}`);
  } finally {
    closeFd(fd);
  }
  try {
    const host = step(`get link ${hostIfname}`, () => getLink(nlHost, hostIfname));
    if (!host) throw new CniError(ERR_DATAPLANE, `link ${hostIfname} vanished after creation`);
    const pod = step(`get link ${ifname} in ${netns}`, () => getLink(nlPod, ifname));
    if (!pod) throw new CniError(ERR_DATAPLANE, `link ${ifname} not found in netns ${netns} after creation`);
    return { host, pod };
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

/** Second half of a pod's wiring (after createPodLinks): sysctls, links up, the addresses and the routes. */
export function configurePod(nlHost: NetlinkSocket, nlPod: NetlinkSocket, links: PodLinks, spec: PodSpec): PodWiring {
  const { hostIfname, ifname, netns } = spec;
  const { host, pod } = links;
  const hasV6 = spec.ips.some(v6);
  const hasV4 = spec.ips.some((ip) => !v6(ip));
  // Sysctls before up: accept_ra=0 and no DAD must hold before IPv6 configures the link.
  for (const [key, value] of hostSysctls(hostIfname, hasV6)) step(`set sysctl ${key}`, () => setSysctl(key, value));
  if (hasV6) step(`set sysctl net/ipv6/conf/${hostIfname}/accept_dad`, () => setSysctl(`net/ipv6/conf/${hostIfname}/accept_dad`, '0'));
  step(`set link ${hostIfname} up`, () => setLinkUp(nlHost, host.index));

  if (hasV6) {
    // Without DAD the pod's addresses are usable at once (no 1–2 s tentative phase).
    step(`set sysctl accept_dad in ${netns}`, () => withNetns(netns, () => {
      setSysctl(`net/ipv6/conf/${ifname}/accept_dad`, '0');
      setSysctl(`net/ipv6/conf/${ifname}/accept_ra`, '0');
    }));
  }
  for (const ip of spec.ips) {
    const cidr = `${ip}/${v6(ip) ? 128 : 32}`;
    step(`add address ${cidr} dev ${ifname}`, () => addAddr(nlPod, pod.index, cidr, v6(ip) ? { nodad: true } : {}));
  }
  step(`set link ${ifname} up`, () => setLinkUp(nlPod, pod.index));
  for (const r of podRoutes(pod.index, hasV4, hasV6)) {
    step(`add route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${ifname}`, () => ensureRoute(nlPod, r));
  }
  for (const r of hostRoutes(host.index, spec.ips)) {
    step(`add route ${r.dst} dev ${hostIfname}`, () => ensureRoute(nlHost, r));
  }
  return {
    hostIf: { name: hostIfname, mac: HOST_MAC, index: host.index },
    podIf: { name: ifname, mac: pod.mac, index: pod.index, mtu: pod.mtu },
  };
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
