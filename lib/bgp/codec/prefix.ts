// NLRI prefix encoding (RFC 4271 §4.3, RFC 4760 §5): length octet + the minimum number of
// address octets. Prefixes are 'a/len' text throughout the speaker; IPv4 has a fast path.
import { ipTextToBytes, ipBytesToText } from '../../ip';
import { BgpError, UPDATE_MESSAGE_ERROR, INVALID_NETWORK_FIELD } from '../errors';

export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;

/** Writes one prefix at `off`; returns the new offset. Throws TypeError on bad text. */
export function writePrefix(out: Uint8Array, off: number, prefix: string): number {
  const slash = prefix.indexOf('/');
  if (slash < 0) throw new TypeError(`invalid prefix "${prefix}"`);
  const len = Number(prefix.slice(slash + 1));
  const addr = prefix.slice(0, slash);
  const n = (len + 7) >> 3;
  out[off++] = len;
  if (!addr.includes(':')) {
    const p = addr.split('.');
    if (p.length !== 4 || !(len >= 0 && len <= 32)) throw new TypeError(`invalid prefix "${prefix}"`);
    for (let i = 0; i < n; i++) out[off + i] = Number(p[i]);
  } else {
    if (!(len >= 0 && len <= 128)) throw new TypeError(`invalid prefix "${prefix}"`);
    const b = ipTextToBytes(addr);
    for (let i = 0; i < n; i++) out[off + i] = b[i];
  }
  // Mask host bits of the last octet.
  if (len & 7) out[off + n - 1] &= (0xff << (8 - (len & 7))) & 0xff;
  return off + n;
}

/** Encoded size of a prefix. */
export function prefixSize(prefix: string): number {
  const slash = prefix.lastIndexOf('/');
  return 1 + ((Number(prefix.slice(slash + 1)) + 7) >> 3);
}

const v6buf = new Uint8Array(16);

// IPv4 prefix text built as bytes and read as one flat string: a template literal makes seven
// intermediate strings and a rope per prefix (100,000 prefixes: garbage, then a flatten on the
// first map lookup).
const text = Buffer.alloc(20);
function digits(o: number, v: number): number {
  if (v >= 100) { text[o++] = 48 + ((v / 100) | 0); v %= 100; text[o++] = 48 + ((v / 10) | 0); text[o++] = 48 + (v % 10); }
  else if (v >= 10) { text[o++] = 48 + ((v / 10) | 0); text[o++] = 48 + (v % 10); }
  else text[o++] = 48 + v;
  return o;
}
function v4Text(a: number, b: number, c: number, d: number, len: number): string {
  let o = digits(0, a); text[o++] = 46;
  o = digits(o, b); text[o++] = 46;
  o = digits(o, c); text[o++] = 46;
  o = digits(o, d); text[o++] = 47;
  o = digits(o, len);
  return text.toString('latin1', 0, o);
}

/** Reads prefixes from buf[off..end); throws BgpError 3/10 when one is malformed. */
export function readPrefixes(buf: Uint8Array, off: number, end: number, family: 4 | 6): string[] {
  const out: string[] = [];
  const max = family === 4 ? 32 : 128;
  while (off < end) {
    const len = buf[off++];
    const n = (len + 7) >> 3;
    if (len > max || off + n > end) {
      throw new BgpError(UPDATE_MESSAGE_ERROR, INVALID_NETWORK_FIELD, new Uint8Array(0), 'session-reset', `prefix length ${len} at offset ${off - 1}`);
    }
    if (family === 4) {
      const a = n > 0 ? buf[off] : 0, b = n > 1 ? buf[off + 1] : 0, c = n > 2 ? buf[off + 2] : 0;
      let d = n > 3 ? buf[off + 3] : 0;
      // Host bits set in the last octet are cleared (RFC 4271 §4.3: trailing bits irrelevant).
      let a2 = a, b2 = b, c2 = c;
      if (len & 7) {
        const m = (0xff << (8 - (len & 7))) & 0xff;
        if (n === 1) a2 &= m; else if (n === 2) b2 &= m; else if (n === 3) c2 &= m; else d &= m;
      }
      out.push(v4Text(a2, b2, c2, d, len));
    } else {
      v6buf.fill(0);
      for (let i = 0; i < n; i++) v6buf[i] = buf[off + i];
      if (len & 7) v6buf[n - 1] &= (0xff << (8 - (len & 7))) & 0xff;
      out.push(`${ipBytesToText(v6buf)}/${len}`);
    }
    off += n;
  }
  return out;
}

/** Family of prefix text. */
export function prefixFamily(prefix: string): 4 | 6 { return prefix.includes(':') ? 6 : 4; }
