// The rtnetlink wire format, pure: a writer for nlmsghdr + structs + (nested) attributes,
// readers for message streams, attributes and NLMSG_ERROR (with extended ACK), and the fixed
// structs ifinfomsg / ifaddrmsg / rtmsg / ndmsg / rtnexthop. No sockets, no logging.
import { ipBytesToText, ipTextToBytes } from '../ip';
import {
  NLA_HDRLEN, NLA_TYPE_MASK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
} from './constants';
import { NetlinkDecodeError } from './errors';

// Netlink is host byte order; Node runs little-endian on every platform we ship (x86_64, arm64).
const LE = true;

export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;
export const RTNEXTHOP_LEN = 8;

/** Rounds up to the 4-byte netlink alignment (NLMSG_ALIGN / NLA_ALIGN). */
export function align4(n: number): number { return (n + 3) & ~3; }

/** Appends netlink messages into one growable buffer; reused across requests to avoid allocation. */
export class NlWriter {
  buf: Uint8Array;
  dv: DataView;
  off = 0;

  constructor(size = 4096) {
    this.buf = new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer);
  }

  reset(): void { this.off = 0; }

  /** Makes room for n more bytes (doubling). */
  ensure(n: number): void {
    const need = this.off + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.off));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }

  u8(v: number): void { this.ensure(1); this.buf[this.off++] = v; }
  u16(v: number): void { this.ensure(2); this.dv.setUint16(this.off, v, LE); this.off += 2; }
  u32(v: number): void { this.ensure(4); this.dv.setUint32(this.off, v >>> 0, LE); this.off += 4; }
  i32(v: number): void { this.ensure(4); this.dv.setInt32(this.off, v | 0, LE); this.off += 4; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.off); this.off += b.length; }
  /** Pads with zeros to the 4-byte alignment. */
  pad(): void {
    if ((this.off & 3) === 0) return;
    const to = align4(this.off);
    this.ensure(to - this.off);
    this.buf.fill(0, this.off, to);
    this.off = to;
  }

  /** Starts a message; returns its offset for endMessage. */
  beginMessage(type: number, flags: number, seq: number, pid: number): number {
    const start = this.off;
    this.ensure(NLMSG_HDRLEN);
    const dv = this.dv;
    dv.setUint32(start, 0, LE);
    dv.setUint16(start + 4, type, LE);
    dv.setUint16(start + 6, flags, LE);
    dv.setUint32(start + 8, seq >>> 0, LE);
    dv.setUint32(start + 12, pid >>> 0, LE);
    this.off += NLMSG_HDRLEN;
    return start;
  }

  /** Fills nlmsg_len of the message begun at `start` and aligns. */
  endMessage(start: number): void {
    this.pad();
    this.dv.setUint32(start, this.off - start, LE);
  }

  /** An attribute with raw payload. */
  attr(type: number, value: Uint8Array): void {
    const len = NLA_HDRLEN + value.length;
    this.ensure(align4(len));
    this.dv.setUint16(this.off, len, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    this.buf.set(value, this.off + NLA_HDRLEN);
    this.off += len;
    this.pad();
  }

  attrU8(type: number, v: number): void {
    this.ensure(8);
    this.dv.setUint16(this.off, 5, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    this.dv.setUint32(this.off + 4, 0, LE);
    this.buf[this.off + 4] = v;
    this.off += 8;
  }

  attrU16(type: number, v: number): void {
    this.ensure(8);
    this.dv.setUint16(this.off, 6, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    this.dv.setUint32(this.off + 4, v & 0xffff, LE);
    this.off += 8;
  }

  /** A 16-bit value in network byte order (IFLA_VXLAN_PORT). */
  attrBe16(type: number, v: number): void {
    this.ensure(8);
    this.dv.setUint16(this.off, 6, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    this.dv.setUint32(this.off + 4, 0, LE);
    this.dv.setUint16(this.off + 4, v, false);
    this.off += 8;
  }

  attrU32(type: number, v: number): void {
    this.ensure(8);
    this.dv.setUint16(this.off, 8, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    this.dv.setUint32(this.off + 4, v >>> 0, LE);
    this.off += 8;
  }

  /** A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND). */
  attrString(type: number, s: string): void {
    const ascii = isAscii(s);
    const n = ascii ? s.length : Buffer.byteLength(s);
    const len = NLA_HDRLEN + n + 1;
    this.ensure(align4(len) + 4);
    this.dv.setUint16(this.off, len, LE);
    this.dv.setUint16(this.off + 2, type, LE);
    const at = this.off + NLA_HDRLEN;
    // Names and kinds are ASCII: copied by hand, which spares a short-lived plugin the first-call
    // cost of Buffer's encoders. Anything else: Buffer.write on a view of our buffer.
    if (ascii) for (let i = 0; i < n; i++) this.buf[at + i] = s.charCodeAt(i);
    else Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.length).write(s, at, 'utf8');
    this.buf[at + n] = 0;
    this.off += len;
    this.pad();
  }

  /** An address attribute from text (4 or 16 bytes); returns the family. */
  attrIp(type: number, text: string): 4 | 6 {
    this.ensure(20);
    const v4 = writeIp4(this.buf, this.off + NLA_HDRLEN, text);
    if (v4) {
      this.dv.setUint16(this.off, 8, LE);
      this.dv.setUint16(this.off + 2, type, LE);
      this.off += 8;
      return 4;
    }
    const b = ipTextToBytes(text);
    this.attr(type, b);
    return b.length === 4 ? 4 : 6;
  }

  /** Starts a nested attribute; returns its offset for endNested. */
  beginNested(type: number): number {
    const start = this.off;
    this.ensure(NLA_HDRLEN);
    this.dv.setUint16(start + 2, type, LE);
    this.off += NLA_HDRLEN;
    return start;
  }

  endNested(start: number): void {
    this.pad();
    this.dv.setUint16(start, this.off - start, LE);
  }

  /** A view of what was written (valid until the next write). */
  view(): Uint8Array { return this.buf.subarray(0, this.off); }

  /** A copy of what was written. */
  take(): Uint8Array { return this.buf.slice(0, this.off); }
}

/**
 * Writes a dotted-quad IPv4 address as 4 bytes at `off`; false when `text` is not one.
 * A hand-rolled parser because batches of 100k routes must not pay for bigint parsing;
 * it accepts exactly what lib/ip parseIp accepts for IPv4 (no leading zeros, 0..255).
 */
export function writeIp4(buf: Uint8Array, off: number, text: string): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  let part = 0, digits = 0, value = 0, lead0 = false;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      buf[off + part++] = value;
      value = 0; digits = 0; lead0 = false;
    } else if (c >= 48 && c <= 57) {
      if (lead0) return false;
      if (digits === 0 && c === 48) lead0 = true;
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Address bytes (4 or 16) to text; throws NetlinkDecodeError on another size. */
export function ipText(b: Uint8Array, offset = 0): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new NetlinkDecodeError('bad-attribute', offset, `address of ${b.length} bytes`);
  return ipBytesToText(b);
}

/** "aa:bb:cc:dd:ee:ff" to 6 bytes; throws TypeError. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new TypeError(`invalid MAC address "${text}"`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** Link-layer address bytes to lowercase colon text. */
export function formatMac(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i ? ':' : '') + (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

/** One decoded message header with a view of its payload. */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Bytes after the nlmsghdr, a view into the input. */
  payload: Uint8Array;
}

/** Splits a datagram into messages (views, no copies); throws NetlinkDecodeError. */
export function decodeMessages(buf: Uint8Array): NlMsg[] {
  const out: NlMsg[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError('truncated-header', off, 'nlmsghdr');
    const len = dv.getUint32(off, LE);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new NetlinkDecodeError('bad-length', off, 'nlmsghdr');
    out.push({
      type: dv.getUint16(off + 4, LE),
      flags: dv.getUint16(off + 6, LE),
      seq: dv.getUint32(off + 8, LE),
      pid: dv.getUint32(off + 12, LE),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += Math.min(align4(len), buf.length - off);
  }
  return out;
}

/** Attributes by type (flags masked off); a repeated type keeps the last. Values are views. */
export type Attrs = (Uint8Array | undefined)[];

/** Decodes the attributes in b[start, end); throws NetlinkDecodeError on bad lengths. */
export function decodeAttrs(b: Uint8Array, start = 0, end = b.length): Attrs {
  const out: Attrs = [];
  let off = start;
  while (off < end) {
    if (end - off < NLA_HDRLEN) throw new NetlinkDecodeError('truncated-header', off, 'nlattr');
    // Little-endian u16s read by hand: dumps of 100k routes decode millions of attributes.
    const len = b[off] | (b[off + 1] << 8);
    if (len < NLA_HDRLEN || off + len > end) throw new NetlinkDecodeError('bad-length', off, 'nlattr');
    out[(b[off + 2] | (b[off + 3] << 8)) & NLA_TYPE_MASK] = b.subarray(off + NLA_HDRLEN, off + len);
    off += align4(len);
  }
  return out;
}

/** Decodes attributes as an ordered list (for RTA_MULTIPATH-like repeated entries). */
export function decodeAttrList(b: Uint8Array, start = 0, end = b.length): { type: number; value: Uint8Array }[] {
  const out: { type: number; value: Uint8Array }[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = start;
  while (off < end) {
    if (end - off < NLA_HDRLEN) throw new NetlinkDecodeError('truncated-header', off, 'nlattr');
    const len = dv.getUint16(off, LE);
    if (len < NLA_HDRLEN || off + len > end) throw new NetlinkDecodeError('bad-length', off, 'nlattr');
    out.push({ type: dv.getUint16(off + 2, LE) & NLA_TYPE_MASK, value: b.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

function view(b: Uint8Array): DataView { return new DataView(b.buffer, b.byteOffset, b.byteLength); }

/** A u8 attribute value; throws NetlinkDecodeError when the size is wrong. */
export function attrU8(v: Uint8Array): number {
  if (v.length < 1) throw new NetlinkDecodeError('bad-attribute', 0, 'u8 attribute');
  return v[0];
}

/** A u16 attribute value (host order). */
export function attrU16(v: Uint8Array): number {
  if (v.length < 2) throw new NetlinkDecodeError('bad-attribute', 0, 'u16 attribute');
  return view(v).getUint16(0, LE);
}

/** A u16 attribute value in network order. */
export function attrBe16(v: Uint8Array): number {
  if (v.length < 2) throw new NetlinkDecodeError('bad-attribute', 0, 'be16 attribute');
  return view(v).getUint16(0, false);
}

/** A u32 attribute value (host order). */
export function attrU32(v: Uint8Array): number {
  if (v.length < 4) throw new NetlinkDecodeError('bad-attribute', 0, 'u32 attribute');
  return (v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24)) >>> 0;
}

/** A string attribute value, up to the first NUL. */
export function attrString(v: Uint8Array): string {
  const nul = v.indexOf(0);
  const n = nul < 0 ? v.length : nul;
  // ASCII (interface names, kinds) without Buffer's decoder; UTF-8 otherwise.
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = v[i];
    if (c >= 0x80) return Buffer.from(v.buffer, v.byteOffset, n).toString('utf8');
    s += String.fromCharCode(c);
  }
  return s;
}

/** True when every UTF-16 unit of `s` is 7-bit (so its UTF-8 bytes are its char codes). */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** A decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NlError {
  /** Positive errno (the kernel sends it negated); 0 for an ACK. */
  errno: number;
  /** The sequence number of the request it answers (from the embedded header). */
  seq: number;
  /** NLMSGERR_ATTR_MSG: the kernel's extended ACK text. */
  extack?: string;
  /** NLMSGERR_ATTR_OFFS: offset of the offending attribute in the request. */
  extackOffset?: number;
}

/** Decodes the payload of an NLMSG_ERROR message (struct nlmsgerr + extended ACK TLVs). */
export function decodeError(payload: Uint8Array, msgFlags: number): NlError {
  if (payload.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError('truncated-body', 0, 'nlmsgerr');
  const dv = view(payload);
  const errno = -dv.getInt32(0, LE);
  const origLen = dv.getUint32(4, LE);
  const seq = dv.getUint32(12, LE);
  const out: NlError = { errno, seq };
  if (msgFlags & NLM_F_ACK_TLVS) {
    // The original request follows the errno: only its header when NLM_F_CAPPED (or an ACK).
    const capped = (msgFlags & NLM_F_CAPPED) || errno === 0;
    if (!capped && (origLen < NLMSG_HDRLEN || 4 + origLen > payload.length)) throw new NetlinkDecodeError('bad-length', 4, 'nlmsgerr');
    const start = 4 + (capped ? NLMSG_HDRLEN : Math.min(align4(origLen), payload.length - 4));
    const attrs = decodeAttrs(payload, start);
    if (attrs[NLMSGERR_ATTR_MSG]) out.extack = attrString(attrs[NLMSGERR_ATTR_MSG]!);
    if (attrs[NLMSGERR_ATTR_OFFS]) out.extackOffset = attrU32(attrs[NLMSGERR_ATTR_OFFS]!);
  }
  return out;
}

/** Writes an NLMSG_ERROR payload (for tests and fakes): errno, embedded header, extack. */
export function encodeError(w: NlWriter, e: { errno: number; request: { len: number; type: number; flags: number; seq: number; pid: number }; extack?: string }): void {
  w.i32(-e.errno);
  w.u32(e.request.len); w.u16(e.request.type); w.u16(e.request.flags); w.u32(e.request.seq); w.u32(e.request.pid);
  if (e.extack !== undefined) w.attrString(NLMSGERR_ATTR_MSG, e.extack);
}

/** struct ifinfomsg */
export interface IfInfoMsg { family: number; type: number; index: number; flags: number; change: number }

export function encodeIfInfoMsg(w: NlWriter, m: IfInfoMsg): void {
  w.u8(m.family); w.u8(0); w.u16(m.type); w.i32(m.index); w.u32(m.flags); w.u32(m.change);
}

export function decodeIfInfoMsg(b: Uint8Array): IfInfoMsg {
  if (b.length < IFINFOMSG_LEN) throw new NetlinkDecodeError('truncated-body', 0, 'ifinfomsg');
  const dv = view(b);
  return { family: b[0], type: dv.getUint16(2, LE), index: dv.getInt32(4, LE), flags: dv.getUint32(8, LE), change: dv.getUint32(12, LE) };
}

/** struct ifaddrmsg */
export interface IfAddrMsg { family: number; prefixLen: number; flags: number; scope: number; index: number }

export function encodeIfAddrMsg(w: NlWriter, m: IfAddrMsg): void {
  w.u8(m.family); w.u8(m.prefixLen); w.u8(m.flags & 0xff); w.u8(m.scope); w.u32(m.index);
}

export function decodeIfAddrMsg(b: Uint8Array): IfAddrMsg {
  if (b.length < IFADDRMSG_LEN) throw new NetlinkDecodeError('truncated-body', 0, 'ifaddrmsg');
  return { family: b[0], prefixLen: b[1], flags: b[2], scope: b[3], index: view(b).getUint32(4, LE) };
}

/** struct rtmsg */
export interface RtMsg {
  family: number; dstLen: number; srcLen: number; tos: number;
  table: number; protocol: number; scope: number; type: number; flags: number;
}

export function encodeRtMsg(w: NlWriter, m: RtMsg): void {
  w.ensure(RTMSG_LEN);
  const b = w.buf, o = w.off;
  b[o] = m.family; b[o + 1] = m.dstLen; b[o + 2] = m.srcLen; b[o + 3] = m.tos;
  b[o + 4] = m.table; b[o + 5] = m.protocol; b[o + 6] = m.scope; b[o + 7] = m.type;
  w.dv.setUint32(o + 8, m.flags >>> 0, LE);
  w.off += RTMSG_LEN;
}

export function decodeRtMsg(b: Uint8Array): RtMsg {
  if (b.length < RTMSG_LEN) throw new NetlinkDecodeError('truncated-body', 0, 'rtmsg');
  return {
    family: b[0], dstLen: b[1], srcLen: b[2], tos: b[3], table: b[4], protocol: b[5], scope: b[6], type: b[7],
    flags: view(b).getUint32(8, LE),
  };
}

/** struct ndmsg */
export interface NdMsg { family: number; index: number; state: number; flags: number; type: number }

export function encodeNdMsg(w: NlWriter, m: NdMsg): void {
  w.u8(m.family); w.u8(0); w.u16(0); w.i32(m.index); w.u16(m.state); w.u8(m.flags); w.u8(m.type);
}

export function decodeNdMsg(b: Uint8Array): NdMsg {
  if (b.length < NDMSG_LEN) throw new NetlinkDecodeError('truncated-body', 0, 'ndmsg');
  const dv = view(b);
  return { family: b[0], index: dv.getInt32(4, LE), state: dv.getUint16(8, LE), flags: b[10], type: b[11] };
}

/** struct rtnexthop, followed by its attributes (RTA_GATEWAY). */
export interface RtNextHop { flags: number; hops: number; index: number; attrs: Attrs }

/** Starts an rtnexthop; returns its offset for endNextHop. */
export function beginNextHop(w: NlWriter, flags: number, hops: number, index: number): number {
  const start = w.off;
  w.u16(0); w.u8(flags); w.u8(hops); w.i32(index);
  return start;
}

export function endNextHop(w: NlWriter, start: number): void {
  w.pad();
  w.dv.setUint16(start, w.off - start, LE);
}

/** Decodes the rtnexthop list inside RTA_MULTIPATH. */
export function decodeNextHops(b: Uint8Array): RtNextHop[] {
  const out: RtNextHop[] = [];
  const dv = view(b);
  let off = 0;
  while (off < b.length) {
    if (b.length - off < RTNEXTHOP_LEN) throw new NetlinkDecodeError('truncated-header', off, 'rtnexthop');
    const len = dv.getUint16(off, LE);
    if (len < RTNEXTHOP_LEN || off + len > b.length) throw new NetlinkDecodeError('bad-length', off, 'rtnexthop');
    out.push({ flags: b[off + 2], hops: b[off + 3], index: dv.getInt32(off + 4, LE), attrs: decodeAttrs(b, off + RTNEXTHOP_LEN, off + len) });
    off += align4(len);
  }
  return out;
}
