// Interface addresses (RTM_NEWADDR/DELADDR/GETADDR), IPv4 and IPv6.
import {
  AF_INET, AF_INET6, AF_UNSPEC, IFA_ADDRESS, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_FLAGS, IFA_LABEL, IFA_LOCAL,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_SITE, RT_SCOPE_UNIVERSE,
  RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR,
} from './constants';
import {
  IFADDRMSG_LEN, NlWriter, attrString, attrU32, decodeAttrs, decodeIfAddrMsg, encodeIfAddrMsg, ipText,
} from './codec';
import { NetlinkError } from './errors';
import type { NetlinkSocket } from './socket';

/** An interface address as `ip addr show` reports it. */
export interface Addr {
  index: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
  /** RT_SCOPE_* number (0 universe, 253 link, 254 host). */
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present: it carries the bits above 8). */
  flags: number;
  label?: string;
}

export type ScopeName = 'universe' | 'site' | 'link' | 'host';

export interface AddrOptions {
  scope?: ScopeName | number;
  /** IFA_F_NODAD: IPv6 address usable at once, no duplicate address detection. */
  nodad?: boolean;
  /** IFA_F_NOPREFIXROUTE: no automatic prefix route. */
  noprefixroute?: boolean;
}

const SCOPES: Record<ScopeName, number> = { universe: RT_SCOPE_UNIVERSE, site: RT_SCOPE_SITE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST };

/** Scope name or number to RT_SCOPE_*. */
export function scopeNumber(s: ScopeName | number | undefined): number {
  if (s === undefined) return RT_SCOPE_UNIVERSE;
  return typeof s === 'number' ? s : SCOPES[s];
}

function splitCidr(cidr: string): [string, number] {
  const slash = cidr.indexOf('/');
  const len = slash < 0 ? NaN : Number(cidr.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > 128 || cidr.slice(slash + 1) === '') throw new TypeError(`invalid address "${cidr}"`);
  return [cidr.slice(0, slash), len];
}

/** Body of `ip addr add|del ADDR/LEN dev IDX [scope S] [nodad] [noprefixroute]`. */
export function encodeAddrRequest(index: number, cidr: string, opts: AddrOptions = {}): Uint8Array {
  const [ip, len] = splitCidr(cidr);
  const flags = (opts.nodad ? IFA_F_NODAD : 0) | (opts.noprefixroute ? IFA_F_NOPREFIXROUTE : 0);
  const w = new NlWriter(64);
  encodeIfAddrMsg(w, { family: AF_UNSPEC, prefixLen: len, flags: flags & 0xff, scope: scopeNumber(opts.scope), index });
  // iproute2 sends IFA_LOCAL and IFA_ADDRESS (equal for a non point-to-point address).
  const family = w.attrIp(IFA_LOCAL, ip);
  w.attrIp(IFA_ADDRESS, ip);
  if (flags) w.attrU32(IFA_FLAGS, flags);
  w.buf[0] = family === 4 ? AF_INET : AF_INET6;
  if (len > (family === 4 ? 32 : 128)) throw new TypeError(`invalid address "${cidr}"`);
  return w.take();
}

/** Equivalent to `ip addr add ADDR/LEN dev X` (EEXIST when present). */
export function addAddr(nl: NetlinkSocket, index: number, cidr: string, opts?: AddrOptions): void {
  nl.request(`add address ${cidr} dev ${index}`, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, encodeAddrRequest(index, cidr, opts));
}

/** Like addAddr, but an address already present is success. */
export function ensureAddr(nl: NetlinkSocket, index: number, cidr: string, opts?: AddrOptions): void {
  try {
    addAddr(nl, index, cidr, opts);
  } catch (err) {
    if (!(err instanceof NetlinkError && err.exists)) throw err;
  }
}

/** Equivalent to `ip addr replace ADDR/LEN dev X`. */
export function replaceAddr(nl: NetlinkSocket, index: number, cidr: string, opts?: AddrOptions): void {
  nl.request(`replace address ${cidr} dev ${index}`, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, encodeAddrRequest(index, cidr, opts));
}

/** Equivalent to `ip addr del ADDR/LEN dev X` (EADDRNOTAVAIL, i.e. notFound, when absent). */
export function delAddr(nl: NetlinkSocket, index: number, cidr: string): void {
  nl.request(`delete address ${cidr} dev ${index}`, RTM_DELADDR, 0, encodeAddrRequest(index, cidr));
}

/** Decodes an RTM_NEWADDR payload. */
export function decodeAddr(payload: Uint8Array): Addr {
  const m = decodeIfAddrMsg(payload);
  const a = decodeAttrs(payload, IFADDRMSG_LEN);
  const raw = a[IFA_LOCAL] ?? a[IFA_ADDRESS];
  const addr: Addr = {
    index: m.index,
    family: m.family === AF_INET6 ? 6 : 4,
    address: raw ? ipText(raw) : '',
    prefixLen: m.prefixLen,
    scope: m.scope,
    flags: a[IFA_FLAGS] ? attrU32(a[IFA_FLAGS]!) : m.flags,
  };
  if (a[IFA_LABEL]) addr.label = attrString(a[IFA_LABEL]!);
  return addr;
}

/** Addresses, optionally of one link and family. Equivalent to `ip [-4|-6] addr show [dev X]`. */
export function listAddrs(nl: NetlinkSocket, filter: { index?: number; family?: 4 | 6 } = {}): Addr[] {
  const w = new NlWriter(16);
  const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
  encodeIfAddrMsg(w, { family, prefixLen: 0, flags: 0, scope: 0, index: 0 });
  return nl.dump('list addresses', RTM_GETADDR, w.view(), (t, p) => {
    if (t !== RTM_NEWADDR) return undefined;
    const addr = decodeAddr(p);
    if (filter.index !== undefined && addr.index !== filter.index) return undefined;
    if (filter.family !== undefined && addr.family !== filter.family) return undefined;
    return addr;
  });
}
