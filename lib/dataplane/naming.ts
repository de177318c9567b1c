// Names of the host side of a pod's veth: "bri" + 11 hex chars of sha1("<namespace>.<pod>"),
// so a re-created sandbox of the same pod gets the same name (Calico's "cali" scheme).
// SHA-1 is computed here in plain JS: node:crypto would pull ~40 internal modules (crypto
// and the whole streams stack) into every plugin start for one 20-byte hash.

export const HOST_VETH_PREFIX = 'bri';

/** Host-side veth name for a pod (or for a bare container when there is no pod). */
export function hostVethName(opts: { namespace?: string; pod?: string; containerId: string; ifname?: string }): string {
  let key = opts.namespace && opts.pod ? `${opts.namespace}.${opts.pod}` : opts.containerId;
  // A second interface of the same pod (another network) must not collide with eth0's.
  if (opts.ifname && opts.ifname !== 'eth0') key += `.${opts.ifname}`;
  return HOST_VETH_PREFIX + sha1Hex(key).slice(0, 11);
}

/** SHA-1 (FIPS 180-4) of the UTF-8 bytes of `text`, as lowercase hex. */
export function sha1Hex(text: string): string {
  // ASCII (pod and namespace names, container IDs) is its own UTF-8: no encoder on the ADD path.
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  const msg = ascii ? Uint8Array.from(text, (c) => c.charCodeAt(0)) : new TextEncoder().encode(text);
  const len = msg.length;
  const blocks = ((len + 8) >> 6) + 1;
  const w = new Uint32Array(blocks * 16);
  for (let i = 0; i < len; i++) w[i >> 2] |= msg[i] << (24 - (i & 3) * 8);
  w[len >> 2] |= 0x80 << (24 - (len & 3) * 8);
  w[blocks * 16 - 1] = len * 8; // messages here are far below 2^29 bytes
  w[blocks * 16 - 2] = Math.floor(len / 0x20000000);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const x = new Uint32Array(80);
  for (let b = 0; b < blocks; b++) {
    for (let t = 0; t < 16; t++) x[t] = w[b * 16 + t];
    for (let t = 16; t < 80; t++) { const v = x[t - 3] ^ x[t - 8] ^ x[t - 14] ^ x[t - 16]; x[t] = (v << 1) | (v >>> 31); }
    let a = h0, bb = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number, k: number;
      if (t < 20) { f = (bb & c) | (~bb & d); k = 0x5a827999; }
      else if (t < 40) { f = bb ^ c ^ d; k = 0x6ed9eba1; }
      else if (t < 60) { f = (bb & c) | (bb & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = bb ^ c ^ d; k = 0xca62c1d6; }
      const tmp = (((a << 5) | (a >>> 27)) + f + e + k + x[t]) >>> 0;
      e = d; d = c; c = (bb << 30) | (bb >>> 2); bb = a; a = tmp;
    }
    h0 = (h0 + a) >>> 0; h1 = (h1 + bb) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
  }
  return [h0, h1, h2, h3, h4].map((h) => (h >>> 0).toString(16).padStart(8, '0')).join('');
}
