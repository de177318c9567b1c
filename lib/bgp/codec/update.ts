// UPDATE encode/decode (RFC 4271 §4.3) with path attributes, AS4 handling (RFC 6793),
// communities (1997), route reflection (4456), MP_REACH/MP_UNREACH (4760) and the RFC 7606
// error handling: session-reset errors are thrown; treat-as-withdraw and attribute-discard
// are applied here and reported in `errors`, so a caller sees exactly what to keep.
import {
  BgpError, UPDATE_MESSAGE_ERROR, MALFORMED_ATTRIBUTE_LIST, UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
  MISSING_WELL_KNOWN_ATTRIBUTE, ATTRIBUTE_FLAGS_ERROR, ATTRIBUTE_LENGTH_ERROR, INVALID_ORIGIN_ATTRIBUTE,
  INVALID_NEXT_HOP_ATTRIBUTE, OPTIONAL_ATTRIBUTE_ERROR, MALFORMED_AS_PATH, type ErrorHandling,
} from '../errors';
import { ipv4ToText, writeIpv4, writeHeader } from './message';
import { readPrefixes, writePrefix, prefixSize, AFI_IPV4, AFI_IPV6, SAFI_UNICAST } from './prefix';
import { ipBytesToText, ipTextToBytes } from '../../ip';
import {
  MSG_UPDATE, MAX_MESSAGE_LEN, AS_TRANS, AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET,
  ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_MULTI_EXIT_DISC, ATTR_LOCAL_PREF, ATTR_ATOMIC_AGGREGATE,
  ATTR_AGGREGATOR, ATTR_COMMUNITIES, ATTR_ORIGINATOR_ID, ATTR_CLUSTER_LIST, ATTR_MP_REACH_NLRI,
  ATTR_MP_UNREACH_NLRI, ATTR_AS4_PATH, ATTR_AS4_AGGREGATOR, FLAG_OPTIONAL, FLAG_TRANSITIVE, FLAG_PARTIAL,
  FLAG_EXTENDED_LENGTH, type AsPathSegment, type CodecContext, type PathAttributes, type UpdateMessage,
} from './types';

export interface DecodedUpdate extends UpdateMessage {
  /** Non-fatal errors applied (treat-as-withdraw turned every NLRI into a withdrawal). */
  errors: BgpError[];
  treatAsWithdraw: boolean;
}

const WELL_KNOWN = FLAG_TRANSITIVE;               // optional=0, transitive=1
const OPT_NON_TRANSITIVE = FLAG_OPTIONAL;          // optional=1, transitive=0
const OPT_TRANSITIVE = FLAG_OPTIONAL | FLAG_TRANSITIVE;
const EXPECTED_FLAGS: Record<number, number> = {
  [ATTR_ORIGIN]: WELL_KNOWN, [ATTR_AS_PATH]: WELL_KNOWN, [ATTR_NEXT_HOP]: WELL_KNOWN,
  [ATTR_MULTI_EXIT_DISC]: OPT_NON_TRANSITIVE, [ATTR_LOCAL_PREF]: WELL_KNOWN, [ATTR_ATOMIC_AGGREGATE]: WELL_KNOWN,
  [ATTR_AGGREGATOR]: OPT_TRANSITIVE, [ATTR_COMMUNITIES]: OPT_TRANSITIVE, [ATTR_ORIGINATOR_ID]: OPT_NON_TRANSITIVE,
  [ATTR_CLUSTER_LIST]: OPT_NON_TRANSITIVE, [ATTR_MP_REACH_NLRI]: OPT_NON_TRANSITIVE,
  [ATTR_MP_UNREACH_NLRI]: OPT_NON_TRANSITIVE, [ATTR_AS4_PATH]: OPT_TRANSITIVE, [ATTR_AS4_AGGREGATOR]: OPT_TRANSITIVE,
};
/** RFC 7606 §7 handling per attribute (AS4_* per RFC 6793 §6). */
const HANDLING: Record<number, ErrorHandling> = {
  [ATTR_ORIGIN]: 'treat-as-withdraw', [ATTR_AS_PATH]: 'treat-as-withdraw', [ATTR_NEXT_HOP]: 'treat-as-withdraw',
  [ATTR_MULTI_EXIT_DISC]: 'treat-as-withdraw', [ATTR_LOCAL_PREF]: 'treat-as-withdraw',
  [ATTR_ATOMIC_AGGREGATE]: 'attribute-discard', [ATTR_AGGREGATOR]: 'attribute-discard',
  [ATTR_COMMUNITIES]: 'treat-as-withdraw', [ATTR_ORIGINATOR_ID]: 'treat-as-withdraw',
  [ATTR_CLUSTER_LIST]: 'treat-as-withdraw', [ATTR_MP_REACH_NLRI]: 'session-reset',
  [ATTR_MP_UNREACH_NLRI]: 'session-reset', [ATTR_AS4_PATH]: 'attribute-discard', [ATTR_AS4_AGGREGATOR]: 'attribute-discard',
};

const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];

function parseAsPath(v: Uint8Array, width: 2 | 4): AsPathSegment[] | undefined {
  const segs: AsPathSegment[] = [];
  let o = 0;
  while (o < v.length) {
    if (o + 2 > v.length) return undefined;
    const type = v[o], n = v[o + 1];
    if (type < AS_SET || type > AS_CONFED_SET || n === 0 || o + 2 + n * width > v.length) return undefined;
    const asns = new Array<number>(n);
    for (let i = 0; i < n; i++) asns[i] = width === 4 ? u32(v, o + 2 + 4 * i) : (v[o + 2 + 2 * i] << 8) | v[o + 3 + 2 * i];
    segs.push({ type, asns });
    o += 2 + n * width;
  }
  return segs;
}

/** AS path length for best-path selection and RFC 6793 merging: AS_SET counts 1, confederation segments 0. */
export function asPathLength(path: AsPathSegment[] | undefined): number {
  let n = 0;
  for (const s of path ?? []) n += s.type === AS_SEQUENCE ? s.asns.length : s.type === AS_SET ? 1 : 0;
  return n;
}

/** RFC 6793 §4.2.3: the leading part of AS_PATH that AS4_PATH does not cover, then AS4_PATH. */
function mergeAs4Path(asPath: AsPathSegment[], as4: AsPathSegment[]): AsPathSegment[] {
  const n = asPathLength(asPath), n4 = asPathLength(as4);
  if (n < n4) return asPath;
  let keep = n - n4;
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0) break;
    if (s.type === AS_CONFED_SEQUENCE || s.type === AS_CONFED_SET) { out.push(s); continue; }
    if (s.type === AS_SET) { out.push(s); keep--; continue; }
    const take = Math.min(keep, s.asns.length);
    out.push({ type: s.type, asns: s.asns.slice(0, take) });
    keep -= take;
  }
  for (const s of as4) {
    const last = out[out.length - 1];
    if (last && last.type === AS_SEQUENCE && s.type === AS_SEQUENCE && last.asns.length + s.asns.length <= 255) last.asns = last.asns.concat(s.asns);
    else out.push({ type: s.type, asns: s.asns.slice() });
  }
  return out;
}

function parseMpNextHops(v: Uint8Array, afi: number): string[] | undefined {
  if (afi === AFI_IPV6 || v.length === 16 || v.length === 32) {
    if (v.length === 16) return [ipBytesToText(v)];
    if (v.length === 32) return [ipBytesToText(v.subarray(0, 16)), ipBytesToText(v.subarray(16, 32))];
    return undefined;
  }
  if (v.length === 4) return [ipv4ToText(v, 0)];
  return undefined;
}

/** Decodes an UPDATE (whole message, header included). Throws BgpError for session-reset cases. */
export function decodeUpdate(buf: Uint8Array, ctx: CodecContext): DecodedUpdate {
  const end = buf.length;
  const wlen = (buf[19] << 8) | buf[20];
  if (21 + wlen + 2 > end) throw new BgpError(UPDATE_MESSAGE_ERROR, MALFORMED_ATTRIBUTE_LIST, undefined, 'session-reset', 'withdrawn routes length');
  const alenAt = 21 + wlen;
  const alen = (buf[alenAt] << 8) | buf[alenAt + 1];
  const attrStart = alenAt + 2, attrEnd = attrStart + alen;
  if (attrEnd > end) throw new BgpError(UPDATE_MESSAGE_ERROR, MALFORMED_ATTRIBUTE_LIST, undefined, 'session-reset', 'total path attribute length');
  const withdrawn = readPrefixes(buf, 21, alenAt, 4);
  const nlri = readPrefixes(buf, attrEnd, end, 4);

  const attrs: PathAttributes = {};
  const errors: BgpError[] = [];
  let taw = false;
  let as4Path: AsPathSegment[] | undefined;
  let as4Agg: { asn: number; address: string } | undefined;
  const seen = new Set<number>();
  const fail = (code: number, subcode: number, data: Uint8Array, detail: string, handling = HANDLING[code] ?? 'treat-as-withdraw') => {
    const err = new BgpError(UPDATE_MESSAGE_ERROR, subcode, data.slice(), handling, detail);
    if (handling === 'session-reset') throw err;
    if (handling === 'treat-as-withdraw') taw = true;
    errors.push(err);
  };

  let o = attrStart;
  while (o < attrEnd) {
    const start = o;
    if (o + 3 > attrEnd) { fail(0, MALFORMED_ATTRIBUTE_LIST, new Uint8Array(0), 'truncated attribute header', 'treat-as-withdraw'); break; }
    const flags = buf[o], code = buf[o + 1];
    const ext = (flags & FLAG_EXTENDED_LENGTH) !== 0;
    if (ext && o + 4 > attrEnd) { fail(0, MALFORMED_ATTRIBUTE_LIST, new Uint8Array(0), 'truncated attribute header', 'treat-as-withdraw'); break; }
    const len = ext ? (buf[o + 2] << 8) | buf[o + 3] : buf[o + 2];
    const vStart = o + (ext ? 4 : 3);
    if (vStart + len > attrEnd) {
      // RFC 7606 §4: an attribute overrunning the attribute area (the NLRI is still locatable).
      if (code === ATTR_MP_REACH_NLRI || code === ATTR_MP_UNREACH_NLRI) fail(code, MALFORMED_ATTRIBUTE_LIST, buf.subarray(start, attrEnd), 'mp attribute overruns', 'session-reset');
      fail(code, ATTRIBUTE_LENGTH_ERROR, buf.subarray(start, attrEnd), `attribute ${code} overruns`, 'treat-as-withdraw');
      break;
    }
    const v = buf.subarray(vStart, vStart + len);
    const whole = buf.subarray(start, vStart + len);
    o = vStart + len;
    if (seen.has(code)) {
      // RFC 7606 §3.g: keep the first; duplicated MP_(UN)REACH_NLRI resets the session.
      if (code === ATTR_MP_REACH_NLRI || code === ATTR_MP_UNREACH_NLRI) fail(code, MALFORMED_ATTRIBUTE_LIST, whole, `duplicate attribute ${code}`, 'session-reset');
      continue;
    }
    seen.add(code);
    const expected = EXPECTED_FLAGS[code];
    if (expected === undefined) {
      if (!(flags & FLAG_OPTIONAL)) fail(code, UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, whole, `unrecognized well-known attribute ${code}`, 'session-reset');
      if (flags & FLAG_TRANSITIVE) (attrs.unknown ??= []).push({ flags: flags | FLAG_PARTIAL, code, value: v.slice() });
      continue;
    }
    if ((flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE)) !== expected) { fail(code, ATTRIBUTE_FLAGS_ERROR, whole, `attribute ${code} flags 0x${flags.toString(16)}`); continue; }
    switch (code) {
      case ATTR_ORIGIN:
        if (len !== 1) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'origin length');
        else if (v[0] > 2) fail(code, INVALID_ORIGIN_ATTRIBUTE, whole, `origin ${v[0]}`);
        else attrs.origin = v[0];
        break;
      case ATTR_AS_PATH: {
        const p = parseAsPath(v, ctx.fourOctetAs ? 4 : 2);
        if (!p) fail(code, MALFORMED_AS_PATH, new Uint8Array(0), 'as path');
        else attrs.asPath = p;
        break;
      }
      case ATTR_NEXT_HOP:
        if (len !== 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'next hop length');
        else if (v[0] === 0 || v[0] >= 224) fail(code, INVALID_NEXT_HOP_ATTRIBUTE, whole, `next hop ${ipv4ToText(v, 0)}`);
        else attrs.nextHop = ipv4ToText(v, 0);
        break;
      case ATTR_MULTI_EXIT_DISC:
        if (len !== 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'med length');
        else attrs.med = u32(v, 0);
        break;
      case ATTR_LOCAL_PREF:
        if (ctx.ebgp) break; // RFC 7606 §7.5: discarded when received from an external peer
        if (len !== 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'local pref length');
        else attrs.localPref = u32(v, 0);
        break;
      case ATTR_ATOMIC_AGGREGATE:
        if (len !== 0) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'atomic aggregate length');
        else attrs.atomicAggregate = true;
        break;
      case ATTR_AGGREGATOR: {
        const want = ctx.fourOctetAs ? 8 : 6;
        if (len !== want) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'aggregator length');
        else attrs.aggregator = want === 8 ? { asn: u32(v, 0), address: ipv4ToText(v, 4) } : { asn: (v[0] << 8) | v[1], address: ipv4ToText(v, 2) };
        break;
      }
      case ATTR_COMMUNITIES:
        if (len === 0 || len % 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'communities length');
        else { const c: number[] = []; for (let i = 0; i < len; i += 4) c.push(u32(v, i)); attrs.communities = c; }
        break;
      case ATTR_ORIGINATOR_ID:
        if (len !== 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'originator id length');
        else attrs.originatorId = ipv4ToText(v, 0);
        break;
      case ATTR_CLUSTER_LIST:
        if (len === 0 || len % 4) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'cluster list length');
        else { const c: string[] = []; for (let i = 0; i < len; i += 4) c.push(ipv4ToText(v, i)); attrs.clusterList = c; }
        break;
      case ATTR_MP_REACH_NLRI: {
        if (len < 5) fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, 'mp reach length');
        const afi = (v[0] << 8) | v[1], safi = v[2], nhLen = v[3];
        if (5 + nhLen > len) fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, 'mp reach next hop length');
        if ((afi === AFI_IPV4 || afi === AFI_IPV6) && safi === SAFI_UNICAST) {
          const nextHops = parseMpNextHops(v.subarray(4, 4 + nhLen), afi);
          if (!nextHops) fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, `mp reach next hop length ${nhLen}`);
          let prefixes: string[] = [];
          try { prefixes = readPrefixes(v, 5 + nhLen, len, afi === AFI_IPV4 ? 4 : 6); } catch { fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, 'mp reach nlri'); }
          attrs.mpReach = { afi, safi, nextHops: nextHops!, nlri: prefixes };
        } else {
          attrs.mpReach = { afi, safi, nextHops: [], nlri: [] }; // not negotiated by us: ignored
        }
        break;
      }
      case ATTR_MP_UNREACH_NLRI: {
        if (len < 3) fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, 'mp unreach length');
        const afi = (v[0] << 8) | v[1], safi = v[2];
        let prefixes: string[] = [];
        if ((afi === AFI_IPV4 || afi === AFI_IPV6) && safi === SAFI_UNICAST) {
          try { prefixes = readPrefixes(v, 3, len, afi === AFI_IPV4 ? 4 : 6); } catch { fail(code, OPTIONAL_ATTRIBUTE_ERROR, whole, 'mp unreach nlri'); }
        }
        attrs.mpUnreach = { afi, safi, withdrawn: prefixes };
        break;
      }
      case ATTR_AS4_PATH: {
        if (ctx.fourOctetAs) break; // RFC 6793 §4.1: not expected from a NEW speaker; ignored
        const p = parseAsPath(v, 4);
        if (!p || p.some((s) => s.type === AS_CONFED_SEQUENCE || s.type === AS_CONFED_SET)) fail(code, MALFORMED_AS_PATH, whole, 'as4 path');
        else as4Path = p;
        break;
      }
      case ATTR_AS4_AGGREGATOR:
        if (ctx.fourOctetAs) break;
        if (len !== 8) fail(code, ATTRIBUTE_LENGTH_ERROR, whole, 'as4 aggregator length');
        else as4Agg = { asn: u32(v, 0), address: ipv4ToText(v, 4) };
        break;
    }
  }

  // RFC 6793 §4.2.3: AS4 attributes apply only when AGGREGATOR (if any) carries AS_TRANS.
  if (!ctx.fourOctetAs && attrs.aggregator && attrs.aggregator.asn !== AS_TRANS) { as4Path = undefined; as4Agg = undefined; }
  if (as4Agg && attrs.aggregator) attrs.aggregator = as4Agg;
  if (as4Path && attrs.asPath) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);

  const reach = nlri.length > 0 || (attrs.mpReach?.nlri.length ?? 0) > 0;
  if (reach && !taw) {
    // RFC 7606 §3.d: a missing well-known mandatory attribute is treat-as-withdraw.
    const missing = attrs.origin === undefined ? ATTR_ORIGIN : attrs.asPath === undefined ? ATTR_AS_PATH
      : nlri.length > 0 && attrs.nextHop === undefined ? ATTR_NEXT_HOP : 0;
    if (missing) fail(missing, MISSING_WELL_KNOWN_ATTRIBUTE, new Uint8Array([missing]), `missing attribute ${missing}`, 'treat-as-withdraw');
  }
  const msg: DecodedUpdate = { type: 'update', withdrawn, attrs, nlri, errors, treatAsWithdraw: taw };
  if (taw) {
    msg.withdrawn = withdrawn.concat(nlri);
    msg.nlri = [];
    const mp = attrs.mpReach;
    msg.attrs = {};
    if (attrs.mpUnreach) msg.attrs.mpUnreach = attrs.mpUnreach;
    if (mp && mp.nlri.length) {
      if (mp.afi === AFI_IPV4) msg.withdrawn = msg.withdrawn.concat(mp.nlri);
      else if (msg.attrs.mpUnreach && msg.attrs.mpUnreach.afi === mp.afi) msg.attrs.mpUnreach = { ...msg.attrs.mpUnreach, withdrawn: msg.attrs.mpUnreach.withdrawn.concat(mp.nlri) };
      else msg.attrs.mpUnreach = { afi: mp.afi, safi: mp.safi, withdrawn: mp.nlri };
    }
  }
  return msg;
}

/** The family of an End-of-RIB marker (RFC 4724 §2), or undefined when this is not one. */
export function endOfRib(m: UpdateMessage): { afi: number; safi: number } | undefined {
  if (m.withdrawn.length || m.nlri.length) return undefined;
  const keys = Object.keys(m.attrs).filter((k) => (m.attrs as any)[k] !== undefined);
  if (keys.length === 0) return { afi: AFI_IPV4, safi: SAFI_UNICAST };
  if (keys.length === 1 && m.attrs.mpUnreach && m.attrs.mpUnreach.withdrawn.length === 0) return { afi: m.attrs.mpUnreach.afi, safi: m.attrs.mpUnreach.safi };
  return undefined;
}

// ---- encoding -------------------------------------------------------------------------

class Writer {
  buf = new Uint8Array(256);
  len = 0;
  ensure(n: number) { if (this.len + n > this.buf.length) { const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n)); b.set(this.buf.subarray(0, this.len)); this.buf = b; } }
  u8(x: number) { this.ensure(1); this.buf[this.len++] = x; }
  u16(x: number) { this.ensure(2); this.buf[this.len++] = x >> 8; this.buf[this.len++] = x & 255; }
  u32(x: number) { this.ensure(4); this.buf[this.len++] = x >>> 24; this.buf[this.len++] = (x >> 16) & 255; this.buf[this.len++] = (x >> 8) & 255; this.buf[this.len++] = x & 255; }
  bytes(b: Uint8Array) { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  ipv4(t: string) { this.ensure(4); writeIpv4(this.buf, this.len, t); this.len += 4; }
  done() { return this.buf.slice(0, this.len); }
}

function attr(w: Writer, flags: number, code: number, value: Uint8Array) {
  if (value.length > 255) { w.u8(flags | FLAG_EXTENDED_LENGTH); w.u8(code); w.u16(value.length); }
  else { w.u8(flags & ~FLAG_EXTENDED_LENGTH); w.u8(code); w.u8(value.length); }
  w.bytes(value);
}

function asPathBytes(path: AsPathSegment[], width: 2 | 4): Uint8Array {
  const w = new Writer();
  for (const s of path) {
    for (let i = 0; i < s.asns.length || i === 0; i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (!chunk.length) break;
      w.u8(s.type); w.u8(chunk.length);
      for (const a of chunk) if (width === 4) w.u32(a); else w.u16(a > 0xffff ? AS_TRANS : a);
    }
  }
  return w.done();
}

function mpReachBytes(afi: number, safi: number, nextHops: string[], prefixes: string[]): Uint8Array {
  const nh = nextHops.map((n) => afi === AFI_IPV4 && !n.includes(':') ? new Uint8Array(n.split('.').map(Number)) : ipTextToBytes(n));
  const nhLen = nh.reduce((s, b) => s + b.length, 0);
  let size = 5 + nhLen;
  for (const p of prefixes) size += prefixSize(p);
  const out = new Uint8Array(size);
  out[0] = afi >> 8; out[1] = afi & 255; out[2] = safi; out[3] = nhLen;
  let o = 4;
  for (const b of nh) { out.set(b, o); o += b.length; }
  out[o++] = 0;
  for (const p of prefixes) o = writePrefix(out, o, p);
  return out;
}

function mpUnreachBytes(afi: number, safi: number, prefixes: string[]): Uint8Array {
  let size = 3;
  for (const p of prefixes) size += prefixSize(p);
  const out = new Uint8Array(size);
  out[0] = afi >> 8; out[1] = afi & 255; out[2] = safi;
  let o = 3;
  for (const p of prefixes) o = writePrefix(out, o, p);
  return out;
}

/** Encodes the path attributes (type order) for a session of the given AS width. */
export function encodeAttributes(a: PathAttributes, ctx: CodecContext): Uint8Array {
  const w = new Writer();
  if (a.origin !== undefined) attr(w, WELL_KNOWN, ATTR_ORIGIN, new Uint8Array([a.origin]));
  if (a.asPath !== undefined) attr(w, WELL_KNOWN, ATTR_AS_PATH, asPathBytes(a.asPath, ctx.fourOctetAs ? 4 : 2));
  if (a.nextHop !== undefined) { const v = new Uint8Array(4); writeIpv4(v, 0, a.nextHop); attr(w, WELL_KNOWN, ATTR_NEXT_HOP, v); }
  if (a.med !== undefined) { const x = new Writer(); x.u32(a.med); attr(w, OPT_NON_TRANSITIVE, ATTR_MULTI_EXIT_DISC, x.done()); }
  if (a.localPref !== undefined) { const x = new Writer(); x.u32(a.localPref); attr(w, WELL_KNOWN, ATTR_LOCAL_PREF, x.done()); }
  if (a.atomicAggregate) attr(w, WELL_KNOWN, ATTR_ATOMIC_AGGREGATE, new Uint8Array(0));
  const as4Agg = !ctx.fourOctetAs && a.aggregator && a.aggregator.asn > 0xffff;
  if (a.aggregator) {
    const x = new Writer();
    if (ctx.fourOctetAs) x.u32(a.aggregator.asn); else x.u16(a.aggregator.asn > 0xffff ? AS_TRANS : a.aggregator.asn);
    x.ipv4(a.aggregator.address);
    attr(w, OPT_TRANSITIVE, ATTR_AGGREGATOR, x.done());
  }
  if (a.communities?.length) { const x = new Writer(); for (const c of a.communities) x.u32(c); attr(w, OPT_TRANSITIVE, ATTR_COMMUNITIES, x.done()); }
  if (a.originatorId !== undefined) { const x = new Writer(); x.ipv4(a.originatorId); attr(w, OPT_NON_TRANSITIVE, ATTR_ORIGINATOR_ID, x.done()); }
  if (a.clusterList?.length) { const x = new Writer(); for (const c of a.clusterList) x.ipv4(c); attr(w, OPT_NON_TRANSITIVE, ATTR_CLUSTER_LIST, x.done()); }
  if (a.mpReach) attr(w, OPT_NON_TRANSITIVE, ATTR_MP_REACH_NLRI, mpReachBytes(a.mpReach.afi, a.mpReach.safi, a.mpReach.nextHops, a.mpReach.nlri));
  if (a.mpUnreach) attr(w, OPT_NON_TRANSITIVE, ATTR_MP_UNREACH_NLRI, mpUnreachBytes(a.mpUnreach.afi, a.mpUnreach.safi, a.mpUnreach.withdrawn));
  // RFC 6793 §4.2.2: toward an OLD speaker, 4-octet ASes travel in AS4_PATH/AS4_AGGREGATOR.
  if (!ctx.fourOctetAs && a.asPath && a.asPath.some((s) => s.asns.some((x) => x > 0xffff))) {
    attr(w, OPT_TRANSITIVE, ATTR_AS4_PATH, asPathBytes(a.asPath.filter((s) => s.type === AS_SEQUENCE || s.type === AS_SET), 4));
  }
  if (as4Agg) { const x = new Writer(); x.u32(a.aggregator!.asn); x.ipv4(a.aggregator!.address); attr(w, OPT_TRANSITIVE, ATTR_AS4_AGGREGATOR, x.done()); }
  for (const u of a.unknown ?? []) attr(w, u.flags, u.code, u.value);
  return w.done();
}

function assemble(withdrawn: string[], attrBytes: Uint8Array, nlri: string[]): Uint8Array {
  let wlen = 0, nlen = 0;
  for (const p of withdrawn) wlen += prefixSize(p);
  for (const p of nlri) nlen += prefixSize(p);
  const total = 23 + wlen + attrBytes.length + nlen;
  if (total > MAX_MESSAGE_LEN) throw new RangeError(`update of ${total} octets exceeds ${MAX_MESSAGE_LEN}`);
  const msg = new Uint8Array(total);
  writeHeader(msg, MSG_UPDATE);
  msg[19] = wlen >> 8; msg[20] = wlen & 255;
  let o = 21;
  for (const p of withdrawn) o = writePrefix(msg, o, p);
  msg[o++] = attrBytes.length >> 8; msg[o++] = attrBytes.length & 255;
  msg.set(attrBytes, o); o += attrBytes.length;
  for (const p of nlri) o = writePrefix(msg, o, p);
  return msg;
}

/** Encodes one UPDATE; throws RangeError when it would exceed 4096 octets. */
export function encodeUpdate(m: UpdateMessage, ctx: CodecContext): Uint8Array {
  return assemble(m.withdrawn, encodeAttributes(m.attrs, ctx), m.nlri);
}

/** End-of-RIB marker for a family (RFC 4724 §2). */
export function encodeEndOfRib(afi: number, safi = SAFI_UNICAST): Uint8Array {
  if (afi === AFI_IPV4) return assemble([], new Uint8Array(0), []);
  return encodeUpdate({ type: 'update', withdrawn: [], attrs: { mpUnreach: { afi, safi, withdrawn: [] } }, nlri: [] }, { fourOctetAs: true });
}

/** Splits prefixes into runs whose encoded size fits `room` octets. */
function chunk(prefixes: string[], room: number): string[][] {
  const out: string[][] = [];
  let cur: string[] = [], size = 0;
  for (const p of prefixes) {
    const s = prefixSize(p);
    if (size + s > room && cur.length) { out.push(cur); cur = []; size = 0; }
    cur.push(p); size += s;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Packs announcements sharing `attrs` into as few UPDATEs as fit 4096 octets: IPv4 prefixes
 * as NLRI (attrs.nextHop required), IPv6 prefixes in MP_REACH_NLRI with `nextHops6`.
 */
export function packAnnouncements(attrs: PathAttributes, prefixes4: string[], prefixes6: string[], nextHops6: string[], ctx: CodecContext): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (prefixes4.length) {
    const a = encodeAttributes(attrs, ctx);
    for (const c of chunk(prefixes4, MAX_MESSAGE_LEN - 23 - a.length)) out.push(assemble([], a, c));
  }
  if (prefixes6.length) {
    const base = encodeAttributes({ ...attrs, nextHop: undefined }, ctx);
    const mpOverhead = 4 + 5 + 16 * nextHops6.length;
    for (const c of chunk(prefixes6, MAX_MESSAGE_LEN - 23 - base.length - mpOverhead)) {
      const mp = new Writer();
      attr(mp, OPT_NON_TRANSITIVE | FLAG_EXTENDED_LENGTH, ATTR_MP_REACH_NLRI, mpReachBytes(AFI_IPV6, SAFI_UNICAST, nextHops6, c));
      // MP_REACH_NLRI goes in type order among the attributes; placing it last is also valid (RFC 4271 §5 allows any order).
      const all = new Uint8Array(base.length + mp.len);
      all.set(base); all.set(mp.done(), base.length);
      out.push(assemble([], all, []));
    }
  }
  return out;
}

/** Packs withdrawals: IPv4 in the Withdrawn Routes field, IPv6 in MP_UNREACH_NLRI. */
export function packWithdrawals(prefixes4: string[], prefixes6: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunk(prefixes4, MAX_MESSAGE_LEN - 23)) out.push(assemble(c, new Uint8Array(0), []));
  for (const c of chunk(prefixes6, MAX_MESSAGE_LEN - 23 - 7)) {
    const w = new Writer();
    attr(w, OPT_NON_TRANSITIVE | FLAG_EXTENDED_LENGTH, ATTR_MP_UNREACH_NLRI, mpUnreachBytes(AFI_IPV6, SAFI_UNICAST, c));
    out.push(assemble([], w.done(), []));
  }
  return out;
}
