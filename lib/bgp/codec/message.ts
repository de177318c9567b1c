// Header, OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH encode/decode (RFC 4271 §4,
// RFC 5492 capabilities, RFC 2918/7313 route refresh). Pure functions over Uint8Array.
import {
  BgpError, MESSAGE_HEADER_ERROR, BAD_MESSAGE_LENGTH, BAD_MESSAGE_TYPE, CONNECTION_NOT_SYNCHRONIZED,
  OPEN_MESSAGE_ERROR, UNSUPPORTED_VERSION_NUMBER, BAD_BGP_IDENTIFIER, UNSUPPORTED_OPTIONAL_PARAMETER,
  UNACCEPTABLE_HOLD_TIME, ROUTE_REFRESH_MESSAGE_ERROR,
} from '../errors';
import {
  HEADER_LEN, MAX_MESSAGE_LEN, MSG_OPEN, MSG_NOTIFICATION, MSG_KEEPALIVE, MSG_ROUTE_REFRESH, MSG_UPDATE, AS_TRANS,
  CAP_MULTIPROTOCOL, CAP_ROUTE_REFRESH, CAP_GRACEFUL_RESTART, CAP_FOUR_OCTET_AS,
  type Capability, type OpenMessage, type NotificationMessage, type RouteRefreshMessage,
} from './types';

/** Writes the 19-octet header (all-ones marker, length, type) at the start of `msg`. */
export function writeHeader(msg: Uint8Array, type: number): Uint8Array {
  msg.fill(0xff, 0, 16);
  msg[16] = msg.length >> 8;
  msg[17] = msg.length & 0xff;
  msg[18] = type;
  return msg;
}

/** Checks a header (RFC 4271 §6.1); returns [length, type] or throws a Message Header Error. */
export function checkHeader(buf: Uint8Array, off = 0): [number, number] {
  for (let i = 0; i < 16; i++) {
    if (buf[off + i] !== 0xff) throw new BgpError(MESSAGE_HEADER_ERROR, CONNECTION_NOT_SYNCHRONIZED, undefined, 'session-reset', 'marker');
  }
  const len = (buf[off + 16] << 8) | buf[off + 17];
  const type = buf[off + 18];
  const lenData = new Uint8Array([buf[off + 16], buf[off + 17]]);
  if (len < HEADER_LEN || len > MAX_MESSAGE_LEN) throw new BgpError(MESSAGE_HEADER_ERROR, BAD_MESSAGE_LENGTH, lenData, 'session-reset', `length ${len}`);
  if (type < MSG_OPEN || type > MSG_ROUTE_REFRESH) throw new BgpError(MESSAGE_HEADER_ERROR, BAD_MESSAGE_TYPE, new Uint8Array([type]), 'session-reset', `type ${type}`);
  const min = type === MSG_OPEN ? 29 : type === MSG_UPDATE ? 23 : type === MSG_NOTIFICATION ? 21 : type === MSG_ROUTE_REFRESH ? 23 : 19;
  if (len < min || (type === MSG_KEEPALIVE && len !== 19)) {
    throw new BgpError(MESSAGE_HEADER_ERROR, BAD_MESSAGE_LENGTH, lenData, 'session-reset', `length ${len} for type ${type}`);
  }
  return [len, type];
}

export function ipv4ToText(b: Uint8Array, off: number): string { return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`; }

export function writeIpv4(out: Uint8Array, off: number, text: string): void {
  const p = text.split('.');
  if (p.length !== 4) throw new TypeError(`invalid IPv4 address "${text}"`);
  for (let i = 0; i < 4; i++) {
    const n = Number(p[i]);
    if (!(n >= 0 && n <= 255) || p[i] === '') throw new TypeError(`invalid IPv4 address "${text}"`);
    out[off + i] = n;
  }
}

/** Router ID text as an unsigned 32-bit number (for §6.8 collision comparison). */
export function routerIdToNumber(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

function encodeCapability(c: Capability): Uint8Array {
  switch (c.kind) {
    case 'multiprotocol': return new Uint8Array([CAP_MULTIPROTOCOL, 4, c.afi >> 8, c.afi & 255, 0, c.safi]);
    case 'routeRefresh': return new Uint8Array([CAP_ROUTE_REFRESH, 0]);
    case 'fourOctetAs': return new Uint8Array([CAP_FOUR_OCTET_AS, 4, c.asn >>> 24, (c.asn >> 16) & 255, (c.asn >> 8) & 255, c.asn & 255]);
    case 'gracefulRestart': {
      const b = new Uint8Array(4 + 4 * c.families.length);
      b[0] = CAP_GRACEFUL_RESTART; b[1] = 2 + 4 * c.families.length;
      b[2] = ((c.flags & 0xf) << 4) | ((c.restartTime >> 8) & 0xf); b[3] = c.restartTime & 255;
      c.families.forEach((f, i) => { b.set([f.afi >> 8, f.afi & 255, f.safi, f.forwarding ? 0x80 : 0], 4 + 4 * i); });
      return b;
    }
    case 'unknown': { const b = new Uint8Array(2 + c.value.length); b[0] = c.code; b[1] = c.value.length; b.set(c.value, 2); return b; }
  }
}

function decodeCapability(code: number, v: Uint8Array): Capability {
  // A known capability with a wrong length is kept as unknown: RFC 5492 §3 lets us ignore it.
  if (code === CAP_MULTIPROTOCOL && v.length === 4) return { kind: 'multiprotocol', afi: (v[0] << 8) | v[1], safi: v[3] };
  if (code === CAP_ROUTE_REFRESH && v.length === 0) return { kind: 'routeRefresh' };
  if (code === CAP_FOUR_OCTET_AS && v.length === 4) return { kind: 'fourOctetAs', asn: ((v[0] << 24) >>> 0) + (v[1] << 16) + (v[2] << 8) + v[3] };
  if (code === CAP_GRACEFUL_RESTART && v.length >= 2 && (v.length - 2) % 4 === 0) {
    const families = [];
    for (let i = 2; i < v.length; i += 4) families.push({ afi: (v[i] << 8) | v[i + 1], safi: v[i + 2], forwarding: (v[i + 3] & 0x80) !== 0 });
    return { kind: 'gracefulRestart', flags: v[0] >> 4, restartTime: ((v[0] & 0xf) << 8) | v[1], families };
  }
  return { kind: 'unknown', code, value: v.slice() };
}

/** Encodes an OPEN; all capabilities go into one optional parameter (RFC 5492 allows either). */
export function encodeOpen(m: OpenMessage): Uint8Array {
  const caps = m.capabilities.map(encodeCapability);
  const capLen = caps.reduce((n, c) => n + c.length, 0);
  const optLen = caps.length ? capLen + 2 : 0;
  if (optLen > 255) throw new RangeError('open: optional parameters exceed 255 octets');
  const msg = new Uint8Array(29 + optLen);
  writeHeader(msg, MSG_OPEN);
  msg[19] = m.version;
  const as2 = m.asn > 0xffff ? AS_TRANS : m.asn;
  msg[20] = as2 >> 8; msg[21] = as2 & 255;
  msg[22] = m.holdTime >> 8; msg[23] = m.holdTime & 255;
  writeIpv4(msg, 24, m.routerId);
  msg[28] = optLen;
  if (optLen) {
    msg[29] = 2; msg[30] = capLen;
    let o = 31;
    for (const c of caps) { msg.set(c, o); o += c.length; }
  }
  return msg;
}

/** Decodes an OPEN (whole message, header included); throws OPEN Message Errors (§6.2). */
export function decodeOpen(buf: Uint8Array): OpenMessage {
  const version = buf[19];
  if (version !== 4) throw new BgpError(OPEN_MESSAGE_ERROR, UNSUPPORTED_VERSION_NUMBER, new Uint8Array([0, 4]), 'session-reset', `version ${version}`);
  const as2 = (buf[20] << 8) | buf[21];
  const holdTime = (buf[22] << 8) | buf[23];
  if (holdTime === 1 || holdTime === 2) throw new BgpError(OPEN_MESSAGE_ERROR, UNACCEPTABLE_HOLD_TIME, undefined, 'session-reset', `hold time ${holdTime}`);
  const routerId = ipv4ToText(buf, 24);
  if (routerId === '0.0.0.0') throw new BgpError(OPEN_MESSAGE_ERROR, BAD_BGP_IDENTIFIER, undefined, 'session-reset', 'router id 0.0.0.0');
  const optLen = buf[28];
  if (29 + optLen !== buf.length) throw new BgpError(MESSAGE_HEADER_ERROR, BAD_MESSAGE_LENGTH, new Uint8Array([buf.length >> 8, buf.length & 255]), 'session-reset', 'open optional parameters length');
  const capabilities: Capability[] = [];
  let o = 29;
  while (o < buf.length) {
    if (o + 2 > buf.length) throw new BgpError(OPEN_MESSAGE_ERROR, 0, undefined, 'session-reset', 'truncated optional parameter');
    const ptype = buf[o], plen = buf[o + 1];
    const pend = o + 2 + plen;
    if (pend > buf.length) throw new BgpError(OPEN_MESSAGE_ERROR, 0, undefined, 'session-reset', 'optional parameter overruns');
    if (ptype !== 2) throw new BgpError(OPEN_MESSAGE_ERROR, UNSUPPORTED_OPTIONAL_PARAMETER, undefined, 'session-reset', `optional parameter ${ptype}`);
    let c = o + 2;
    while (c < pend) {
      if (c + 2 > pend || c + 2 + buf[c + 1] > pend) throw new BgpError(OPEN_MESSAGE_ERROR, 0, undefined, 'session-reset', 'capability overruns');
      capabilities.push(decodeCapability(buf[c], buf.subarray(c + 2, c + 2 + buf[c + 1])));
      c += 2 + buf[c + 1];
    }
    o = pend;
  }
  const four = capabilities.find((c) => c.kind === 'fourOctetAs') as { asn: number } | undefined;
  return { type: 'open', version, asn: four ? four.asn : as2, holdTime, routerId, capabilities };
}

export function encodeKeepalive(): Uint8Array { return writeHeader(new Uint8Array(19), MSG_KEEPALIVE); }

export function encodeNotification(m: { code: number; subcode: number; data?: Uint8Array }): Uint8Array {
  const data = m.data ?? new Uint8Array(0);
  const msg = new Uint8Array(21 + data.length);
  writeHeader(msg, MSG_NOTIFICATION);
  msg[19] = m.code; msg[20] = m.subcode; msg.set(data, 21);
  return msg;
}

export function decodeNotification(buf: Uint8Array): NotificationMessage {
  return { type: 'notification', code: buf[19], subcode: buf[20], data: buf.slice(21) };
}

export function encodeRouteRefresh(m: { afi: number; safi: number; subtype?: number }): Uint8Array {
  const msg = new Uint8Array(23);
  writeHeader(msg, MSG_ROUTE_REFRESH);
  msg[19] = m.afi >> 8; msg[20] = m.afi & 255; msg[21] = m.subtype ?? 0; msg[22] = m.safi;
  return msg;
}

export function decodeRouteRefresh(buf: Uint8Array): RouteRefreshMessage {
  if (buf.length !== 23) throw new BgpError(ROUTE_REFRESH_MESSAGE_ERROR, 1, buf.slice(0, Math.min(buf.length, 4096)), 'session-reset', 'route refresh length');
  return { type: 'routeRefresh', afi: (buf[19] << 8) | buf[20], subtype: buf[21], safi: buf[22] };
}
