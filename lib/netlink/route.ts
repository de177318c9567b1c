// Routes (RTM_NEWROUTE/DELROUTE/GETROUTE): unicast via a gateway or a device, scope link,
// onlink, blackhole/unreachable, multipath (RTA_MULTIPATH), protocol and table; batched
// replace/delete for the BGP agent's bulk installs.
import {
  AF_INET, AF_INET6, AF_UNSPEC, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
  RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_SITE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RT_TABLE_UNSPEC,
  RTA_DST, RTA_GATEWAY, RTA_MULTIPATH, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE,
  RTM_DELROUTE, RTM_F_CLONED, RTM_F_FIB_MATCH, RTM_GETROUTE, RTM_NEWROUTE, RTN_ANYCAST, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL,
  RTN_MULTICAST, RTN_PROHIBIT, RTN_THROW, RTN_UNICAST, RTN_UNREACHABLE, RTN_UNSPEC, RTNH_F_ONLINK, RTPROT_BOOT,
} from './constants';
import {
  NlWriter, RTMSG_LEN, attrU32, beginNextHop, decodeAttrs, decodeNextHops, decodeRtMsg, endNextHop, ipText, writeIp4,
} from './codec';
import { NetlinkError } from './errors';
import type { NetlinkSocket, BatchOptions } from './socket';

export type RouteScope = 'universe' | 'site' | 'link' | 'host' | 'nowhere';
export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'local' | 'prohibit' | 'throw' | 'broadcast' | 'anycast' | 'multicast' | 'unspec';

/** One next hop of a multipath route. */
export interface NextHop { gateway?: string; oif: number; onlink?: boolean; weight?: number }

/** A route as `ip route` shows it. */
export interface Route {
  family: 4 | 6;
  /** 'a/len'; the default route is '0.0.0.0/0' / '::/0'. */
  dst: string;
  gateway?: string;
  oif?: number;
  scope?: RouteScope;
  type?: RouteType;
  /** RTPROT_*; RTPROT_BOOT (3) when adding without one, like ip. */
  protocol?: number;
  /** Routing table; main (254) when absent. */
  table?: number;
  onlink?: boolean;
  priority?: number;
  /** Preferred source address (RTA_PREFSRC). */
  src?: string;
  multipath?: NextHop[];
}

const SCOPE_NUM: Record<RouteScope, number> = { universe: RT_SCOPE_UNIVERSE, site: RT_SCOPE_SITE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST, nowhere: RT_SCOPE_NOWHERE };
const TYPE_NUM: Record<RouteType, number> = {
  unspec: RTN_UNSPEC, unicast: RTN_UNICAST, local: RTN_LOCAL, broadcast: RTN_BROADCAST, anycast: RTN_ANYCAST,
  multicast: RTN_MULTICAST, blackhole: RTN_BLACKHOLE, unreachable: RTN_UNREACHABLE, prohibit: RTN_PROHIBIT, throw: RTN_THROW,
};
const TYPE_NAME: RouteType[] = [];
for (const [k, v] of Object.entries(TYPE_NUM)) TYPE_NAME[v] = k as RouteType;

function scopeName(n: number): RouteScope {
  switch (n) {
    case RT_SCOPE_UNIVERSE: return 'universe';
    case RT_SCOPE_LINK: return 'link';
    case RT_SCOPE_HOST: return 'host';
    case RT_SCOPE_NOWHERE: return 'nowhere';
    default: return 'site';
  }
}

/**
 * Writes rtmsg + attributes of a route into w (the body after nlmsghdr). `del` applies the
 * wildcards of `ip route del`: protocol, type and scope match anything unless given.
 */
export function encodeRoute(w: NlWriter, r: Route, del = false): void {
  const dst = r.dst;
  const slash = dst.indexOf('/');
  let len = 0;
  for (let i = slash + 1; i < dst.length && slash > 0; i++) {
    const c = dst.charCodeAt(i) - 48;
    if (c < 0 || c > 9) { len = -1; break; }
    len = len * 10 + c;
  }
  if (slash <= 0 || slash === dst.length - 1 || len < 0) throw new TypeError(`invalid route destination "${dst}"`);
  const start = w.off;
  const table = r.table ?? RT_TABLE_MAIN;
  const type = r.type !== undefined ? TYPE_NUM[r.type] : del ? RTN_UNSPEC : RTN_UNICAST;
  let scope: number;
  if (r.scope !== undefined) scope = SCOPE_NUM[r.scope];
  else if (del) scope = RT_SCOPE_NOWHERE;
  else if (type === RTN_LOCAL) scope = RT_SCOPE_HOST;
  // Like iproute2: a unicast route without any gateway is on the link.
  else if (type === RTN_UNICAST && !r.gateway && !r.multipath?.length) scope = RT_SCOPE_LINK;
  else scope = RT_SCOPE_UNIVERSE;
  w.ensure(RTMSG_LEN + 128);
  const b = w.buf;
  b[start] = 0; // family, patched below
  b[start + 1] = len;
  b[start + 2] = 0;
  b[start + 3] = 0;
  b[start + 4] = table < 256 ? table : RT_TABLE_UNSPEC;
  b[start + 5] = r.protocol ?? (del ? 0 : RTPROT_BOOT);
  b[start + 6] = scope;
  b[start + 7] = type;
  w.dv.setUint32(start + 8, r.onlink ? RTNH_F_ONLINK : 0, true);
  w.off += RTMSG_LEN;
  let family: 4 | 6;
  if (len > 0) {
    family = w.attrIp(RTA_DST, dst.slice(0, slash));
  } else {
    family = writeIp4(b, w.off, dst.slice(0, slash)) ? 4 : 6;
  }
  if (len > (family === 4 ? 32 : 128)) throw new TypeError(`invalid route destination "${dst}"`);
  w.buf[start] = family === 4 ? AF_INET : AF_INET6;
  if (table >= 256) w.attrU32(RTA_TABLE, table);
  if (r.gateway) w.attrIp(RTA_GATEWAY, r.gateway);
  if (r.oif !== undefined) w.attrU32(RTA_OIF, r.oif);
  if (r.priority !== undefined) w.attrU32(RTA_PRIORITY, r.priority);
  if (r.src) w.attrIp(RTA_PREFSRC, r.src);
  if (r.multipath?.length) {
    const mp = w.beginNested(RTA_MULTIPATH);
    for (const nh of r.multipath) {
      const at = beginNextHop(w, nh.onlink ? RTNH_F_ONLINK : 0, Math.max(0, (nh.weight ?? 1) - 1), nh.oif);
      if (nh.gateway) w.attrIp(RTA_GATEWAY, nh.gateway);
      endNextHop(w, at);
    }
    w.endNested(mp);
  }
}

/** The body of a route request as bytes (tests, one-off requests). */
export function encodeRouteRequest(r: Route, del = false): Uint8Array {
  const w = new NlWriter(128);
  encodeRoute(w, r, del);
  return w.take();
}

function describe(r: Route): string {
  let s = r.type && r.type !== 'unicast' ? `${r.type} ${r.dst}` : r.dst;
  if (r.gateway) s += ` via ${r.gateway}`;
  if (r.oif !== undefined) s += ` dev ${r.oif}`;
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) s += ` table ${r.table}`;
  return s;
}

/** Equivalent to `ip route add DST [via GW] [dev X] ...` (EEXIST when present). */
export function addRoute(nl: NetlinkSocket, r: Route): void {
  nl.request(`add route ${describe(r)}`, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, encodeRouteRequest(r));
}

/** Like addRoute, but a route already present for the destination is success (ADD may be retried). */
export function ensureRoute(nl: NetlinkSocket, r: Route): void {
  try {
    addRoute(nl, r);
  } catch (err) {
    if (!(err instanceof NetlinkError && err.exists)) throw err;
  }
}

/** Equivalent to `ip route replace DST ...`. */
export function replaceRoute(nl: NetlinkSocket, r: Route): void {
  nl.request(`replace route ${describe(r)}`, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, encodeRouteRequest(r));
}

/** Equivalent to `ip route del DST [via GW] [dev X] [proto P] [table T]` (ESRCH, i.e. notFound, when absent). */
export function delRoute(nl: NetlinkSocket, r: Route): void {
  nl.request(`delete route ${describe(r)}`, RTM_DELROUTE, 0, encodeRouteRequest(r, true));
}

/** Decodes an RTM_NEWROUTE payload. */
export function decodeRoute(payload: Uint8Array): Route {
  const m = decodeRtMsg(payload);
  const a = decodeAttrs(payload, RTMSG_LEN);
  const family: 4 | 6 = m.family === AF_INET6 ? 6 : 4;
  const r: Route = {
    family,
    dst: a[RTA_DST] ? `${ipText(a[RTA_DST]!)}/${m.dstLen}` : family === 4 ? `0.0.0.0/${m.dstLen}` : `::/${m.dstLen}`,
    scope: scopeName(m.scope),
    type: TYPE_NAME[m.type] ?? 'unspec',
    protocol: m.protocol,
    table: a[RTA_TABLE] ? attrU32(a[RTA_TABLE]!) : m.table,
  };
  if (a[RTA_GATEWAY]) r.gateway = ipText(a[RTA_GATEWAY]!);
  if (a[RTA_OIF]) r.oif = attrU32(a[RTA_OIF]!);
  if (a[RTA_PRIORITY]) r.priority = attrU32(a[RTA_PRIORITY]!);
  if (a[RTA_PREFSRC]) r.src = ipText(a[RTA_PREFSRC]!);
  if (m.flags & RTNH_F_ONLINK) r.onlink = true;
  if (a[RTA_MULTIPATH]) {
    r.multipath = decodeNextHops(a[RTA_MULTIPATH]!).map((nh) => {
      const hop: NextHop = { oif: nh.index, weight: nh.hops + 1 };
      if (nh.attrs[RTA_GATEWAY]) hop.gateway = ipText(nh.attrs[RTA_GATEWAY]!);
      if (nh.flags & RTNH_F_ONLINK) hop.onlink = true;
      return hop;
    });
  }
  return r;
}

export interface RouteFilter {
  family?: 4 | 6;
  /** Table to list; main (254) when absent, 0 for every table. */
  table?: number;
  protocol?: number;
  oif?: number;
}

/** Routes matching the filter. Equivalent to `ip [-4|-6] route show [table T] [proto P] [dev X]`. */
export function listRoutes(nl: NetlinkSocket, f: RouteFilter = {}): Route[] {
  const w = new NlWriter(16);
  w.ensure(RTMSG_LEN);
  w.buf.fill(0, 0, RTMSG_LEN);
  w.buf[0] = f.family === 4 ? AF_INET : f.family === 6 ? AF_INET6 : AF_UNSPEC;
  w.off = RTMSG_LEN;
  const table = f.table ?? RT_TABLE_MAIN;
  return nl.dump('list routes', RTM_GETROUTE, w.view(), (t, p) => {
    if (t !== RTM_NEWROUTE || p.length < RTMSG_LEN) return undefined;
    // Cheap rejections on the fixed header before decoding attributes.
    if (f.protocol !== undefined && p[5] !== f.protocol) return undefined;
    if (new DataView(p.buffer, p.byteOffset + 8, 4).getUint32(0, true) & RTM_F_CLONED) return undefined;
    const r = decodeRoute(p);
    if (table !== 0 && r.table !== table) return undefined;
    if (f.family !== undefined && r.family !== f.family) return undefined;
    if (f.oif !== undefined && r.oif !== f.oif && !r.multipath?.some((nh) => nh.oif === f.oif)) return undefined;
    return r;
  });
}

/**
 * The route the kernel would use for an address. Equivalent to `ip route get ADDR`; with
 * `fibmatch`, the matching FIB entry itself (its prefix and next hops), as `ip route get
 * fibmatch ADDR`: one lookup instead of a dump of a table that may hold 100k routes.
 */
export function getRoute(nl: NetlinkSocket, dst: string, opts: { fibmatch?: boolean } = {}): Route {
  const addr = dst.includes('/') ? dst.slice(0, dst.indexOf('/')) : dst;
  const w = new NlWriter(64);
  w.ensure(RTMSG_LEN);
  w.buf.fill(0, 0, RTMSG_LEN);
  w.off = RTMSG_LEN;
  const family = w.attrIp(RTA_DST, addr);
  w.buf[0] = family === 4 ? AF_INET : AF_INET6;
  w.buf[1] = family === 4 ? 32 : 128;
  if (opts.fibmatch) w.dv.setUint32(8, RTM_F_FIB_MATCH, true); // rtm_flags
  let route: Route | undefined;
  nl.requestEach(`get route ${addr}`, RTM_GETROUTE, 0, w.view(), (t, p) => {
    if (t === RTM_NEWROUTE) route = decodeRoute(p);
  });
  if (!route) throw new NetlinkError(`get route ${addr}`, 101 /* ENETUNREACH */);
  return route;
}

interface RouteTemplate { r: Route; bytes: Uint8Array }

/** Offsets in a route message: rtm_dst_len, and RTA_DST's IPv4 address when it is the first attribute. */
const DST_LEN_AT = 16 + 1, DST_AT = 16 + RTMSG_LEN + 4;

/**
 * Writes whole RTM_NEWROUTE/RTM_DELROUTE messages for batches. An IPv4 route equal to a recent
 * one in every field but its destination is that message's bytes copied, with the sequence
 * number, prefix length and address patched: 100,000 routes via one peer are one template.
 */
export class RouteMessageWriter {
  private readonly templates: RouteTemplate[] = [];

  constructor(private readonly type: number, private readonly flags: number, private readonly del = false) {}

  write(w: NlWriter, r: Route, seq: number): void {
    const t = this.find(r);
    if (t && this.patch(w, t.bytes, r.dst, seq)) return;
    const start = w.beginMessage(this.type, this.flags | NLM_F_REQUEST, seq, 0);
    encodeRoute(w, r, this.del);
    w.endMessage(start);
    if (!t && r.family === 4 && w.off - start >= DST_AT + 4 && w.buf[start + 16] === AF_INET && w.buf[start + DST_LEN_AT] > 0) {
      if (this.templates.length >= 8) this.templates.shift();
      this.templates.push({ r: { ...r, dst: '' }, bytes: w.buf.slice(start, w.off) });
    }
  }

  private find(r: Route): RouteTemplate | undefined {
    if (r.family !== 4) return undefined;
    for (let i = this.templates.length - 1; i >= 0; i--) {
      const t = this.templates[i], o = t.r;
      if (o.gateway === r.gateway && o.oif === r.oif && o.scope === r.scope && o.type === r.type && o.protocol === r.protocol
        && o.table === r.table && !o.onlink === !r.onlink && o.priority === r.priority && o.src === r.src && o.multipath === r.multipath) return t;
    }
    return undefined;
  }

  /** Copies the template and writes `dst` ('a.b.c.d/len') into it; false when dst is not plain IPv4. */
  private patch(w: NlWriter, tpl: Uint8Array, dst: string, seq: number): boolean {
    w.ensure(tpl.length);
    const b = w.buf, at = w.off;
    let part = 0, value = 0, digits = 0, i = 0;
    const n = dst.length;
    for (; i < n; i++) {
      const c = dst.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        if (digits > 0 && value === 0) return false; // no leading zeros
        value = value * 10 + c - 48;
        if (++digits > 3 || value > 255) return false;
      } else if (c === 46 || c === 47) {
        if (digits === 0 || part > 3) return false;
        b[at + DST_AT + part++] = value;
        value = 0; digits = 0;
        if (c === 47) break;
      } else {
        return false;
      }
    }
    if (part !== 4 || i >= n - 1) return false;
    let len = 0;
    for (i++; i < n; i++) {
      const c = dst.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return false;
      len = len * 10 + c;
    }
    if (len < 1 || len > 32) return false;
    // The address went straight to its place; the template goes around it.
    b.set(tpl.subarray(0, DST_AT), at);
    b.set(tpl.subarray(DST_AT + 4), at + DST_AT + 4);
    b[at + DST_LEN_AT] = len;
    w.dv.setUint32(at + 8, seq >>> 0, true);
    w.off = at + tpl.length;
    return true;
  }
}

function routeBatch(nl: NetlinkSocket, verb: string, type: number, flags: number, del: boolean, routes: Route[], opts?: BatchOptions): (NetlinkError | undefined)[] {
  const mw = new RouteMessageWriter(type, flags, del);
  return nl.batch((i) => `${verb} route ${describe(routes[i])}`, routes.length, (w, i, seq) => mw.write(w, routes[i], seq), opts);
}

/**
 * Replaces many routes in pipelined batches (like `ip -batch` of `route replace`); returns
 * per-route errors (undefined = done) and never stops at the first failure.
 */
export function replaceRoutes(nl: NetlinkSocket, routes: Route[], opts?: BatchOptions): (NetlinkError | undefined)[] {
  return routeBatch(nl, 'replace', RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, false, routes, opts);
}

/** Deletes many routes in pipelined batches (like `ip -batch` of `route del`); per-route errors. */
export function delRoutes(nl: NetlinkSocket, routes: Route[], opts?: BatchOptions): (NetlinkError | undefined)[] {
  return routeBatch(nl, 'delete', RTM_DELROUTE, 0, true, routes, opts);
}
