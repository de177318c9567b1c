// IP addresses and prefixes as text, bytes and bigints: the one module every layer uses
// (netlink, BGP, IPAM, CNI) so that parsing rules live in one place. Pure; no I/O.

export type Family = 4 | 6;

/** An address: its family and its value as an unsigned bigint (32 or 128 bits). */
export interface Ip { family: Family; value: bigint }

/** A prefix: network address (host bits zero unless `loose`) and length. */
export interface Cidr { family: Family; value: bigint; len: number }

const BITS = { 4: 32, 6: 128 } as const;

/** Number of bits in an address of this family. */
export function bits(family: Family): number { return BITS[family]; }

/** Parses dotted-quad or RFC 4291 text (with `::` and embedded IPv4); throws TypeError. */
export function parseIp(text: string): Ip {
  const ip = tryParseIp(text);
  if (!ip) throw new TypeError(`invalid IP address "${text}"`);
  return ip;
}

/** Like parseIp but returns undefined instead of throwing. */
export function tryParseIp(text: string): Ip | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) return parse6(text);
  const v = parse4(text);
  return v === undefined ? undefined : { family: 4, value: v };
}

function parse4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parse6(text: string): Ip | undefined {
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tail4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail4 = parse4(text.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1].split(':')) : [];
  const groups = halves.length === 2 ? head.length + rest.length : head.length;
  if (halves.length === 2 ? groups > 7 : groups !== 8) return undefined;
  const all = halves.length === 2 ? [...head, ...Array(8 - groups).fill('0'), ...rest] : head;
  let v = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return { family: 6, value: v };
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as `::`). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** Address to network-order bytes (4 or 16). */
export function ipToBytes(ip: Ip): Uint8Array {
  const n = ip.family === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

/** Network-order bytes (4 or 16) to an address; throws RangeError on another length. */
export function ipFromBytes(b: Uint8Array): Ip {
  if (b.length !== 4 && b.length !== 16) throw new RangeError(`address of ${b.length} bytes`);
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return { family: b.length === 4 ? 4 : 6, value: v };
}

/** Text address to bytes. */
export function ipTextToBytes(text: string): Uint8Array { return ipToBytes(parseIp(text)); }

/** Bytes to text address. */
export function ipBytesToText(b: Uint8Array): string { return formatIp(ipFromBytes(b)); }

/** Netmask of a prefix length as a bigint. */
export function maskOf(family: Family, len: number): bigint {
  const b = BigInt(bits(family));
  return len === 0 ? 0n : ((1n << b) - 1n) ^ ((1n << (b - BigInt(len))) - 1n);
}

/**
 * Parses "addr/len". With `loose`, host bits may be set (as in an interface address
 * "10.0.0.5/24") and are kept; otherwise they are an error.
 */
export function parseCidr(text: string, opts: { loose?: boolean } = {}): Cidr {
  const c = tryParseCidr(text, opts);
  if (!c) throw new TypeError(`invalid CIDR "${text}"`);
  return c;
}

/** Like parseCidr but returns undefined instead of throwing. */
export function tryParseCidr(text: string, opts: { loose?: boolean } = {}): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = tryParseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > bits(ip.family)) return undefined;
  if (!opts.loose && (ip.value & ~maskOf(ip.family, len)) !== 0n) return undefined;
  return { family: ip.family, value: ip.value, len };
}

/** "addr/len" text. */
export function formatCidr(c: Cidr): string { return `${formatIp(c)}/${c.len}`; }

/** The prefix with host bits cleared. */
export function networkOf(c: Cidr): Cidr {
  return { family: c.family, value: c.value & maskOf(c.family, c.len), len: c.len };
}

/** Number of addresses in the prefix. */
export function sizeOf(c: Cidr): bigint { return 1n << BigInt(bits(c.family) - c.len); }

/** True when `ip` lies inside `c`. */
export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && (ip.value & maskOf(c.family, c.len)) === (c.value & maskOf(c.family, c.len));
}

/** True when the two prefixes share any address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = maskOf(a.family, len);
  return (a.value & m) === (b.value & m);
}

/** The address `offset` places after the start of the prefix. */
export function nthIp(c: Cidr, offset: bigint): Ip {
  return { family: c.family, value: (c.value & maskOf(c.family, c.len)) + offset };
}

/** Family of a text address or prefix, or undefined if it is neither. */
export function familyOf(text: string): Family | undefined {
  const t = text.split('/')[0];
  return tryParseIp(t)?.family;
}
