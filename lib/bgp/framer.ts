// Framing (RFC 4271 §4.1): turns a TCP byte stream split anywhere into whole messages,
// checking marker and length on each header; errors are Message Header Errors (BgpError).
import { checkHeader } from './codec/message';
import { HEADER_LEN } from './codec/types';

export class Framer {
  private buf = new Uint8Array(0);
  private len = 0;

  /** Adds bytes and returns the complete messages now available (each a fresh copy). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.len + chunk.length > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + chunk.length, 8192));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    const out: Uint8Array[] = [];
    let off = 0;
    while (this.len - off >= HEADER_LEN) {
      const [msgLen] = checkHeader(this.buf, off);
      if (this.len - off < msgLen) break;
      out.push(this.buf.slice(off, off + msgLen));
      off += msgLen;
    }
    if (off > 0) { this.buf.copyWithin(0, off, this.len); this.len -= off; }
    return out;
  }

  /** Bytes held that do not yet form a message. */
  get pending(): number { return this.len; }
}
