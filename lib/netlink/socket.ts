// The rtnetlink transport: one NETLINK_ROUTE socket, synchronous request/ACK with sequence
// and port-id checks, multi-part dumps (NLM_F_MULTI ... NLMSG_DONE, NLM_F_DUMP_INTR retried),
// and pipelined batches: many messages per send, only errors and one final ACK read back.
import * as libc from '../native/libc';
import { NlWriter, decodeError, type NlError } from './codec';
import {
  AF_NETLINK, EAGAIN, EINTR, ENOBUFS, ETIMEDOUT, MSG_TRUNC, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE,
  NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
  NLMSG_NOOP, NLMSG_OVERRUN, SO_RCVBUF, SO_RCVBUFFORCE, SO_RCVTIMEO, SO_SNDBUF, SO_SNDBUFFORCE,
  SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK, SOL_SOCKET,
} from './constants';
import { NetlinkDecodeError, NetlinkError } from './errors';

/** One message of a batch: type, NLM_F_* flags (REQUEST/ACK are added) and the body after nlmsghdr. */
export interface NetlinkRequest { type: number; flags: number; body: Uint8Array }

/** Options for batches. */
export interface BatchOptions {
  /** Bytes of messages per send (bounded by the socket's send buffer); default 1 MiB. */
  chunkBytes?: number;
}

const RECV_SIZE = 65536; // kernel dump skbs are at most 32 KiB
const RECV_TIMEOUT_S = 30;
const BATCH_SNDBUF = 4 << 20;
const BATCH_RCVBUF = 32 << 20;
const DUMP_RETRIES = 5;
// requestSeries' limit: well inside the default socket buffers (no SO_SNDBUF/SO_RCVBUF needed).
const SERIES_MAX = 16384;

/** A synchronous NETLINK_ROUTE socket bound to the network namespace it was opened in. */
export class NetlinkSocket {
  private seq = 1;
  private readonly w = new NlWriter(4096);
  private readonly rbuf = new Uint8Array(RECV_SIZE);
  private readonly rdv = new DataView(this.rbuf.buffer);
  private batchReady = false;
  private batchChunk = 0;
  private closed = false;

  private constructor(readonly fd: number, readonly pid: number) {}

  /** Opens NETLINK_ROUTE in the calling thread's current network namespace. */
  static open(): NetlinkSocket {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new NetlinkError('open netlink socket', libc.errno());
    try {
      const one = int32(1);
      // Extended ACK text and capped ACKs (no echo of our request in errors); best effort on old kernels.
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
      const tv = new Uint8Array(16);
      new DataView(tv.buffer).setBigInt64(0, BigInt(RECV_TIMEOUT_S), true);
      libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
      const sa = new Uint8Array(12);
      sa[0] = AF_NETLINK; // sockaddr_nl { nl_family, nl_pad, nl_pid = 0 (kernel assigns), nl_groups = 0 }
      if (libc.bind(fd, sa, 12) < 0) throw new NetlinkError('bind netlink socket', libc.errno());
      const len = new Int32Array([12]);
      if (libc.getsockname(fd, sa, len) < 0) throw new NetlinkError('getsockname netlink socket', libc.errno());
      const pid = new DataView(sa.buffer).getUint32(4, true);
      return new NetlinkSocket(fd, pid);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  /** Closes the socket; further use throws EBADF. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  /**
   * Sends one request with NLM_F_ACK and returns the payloads (bytes after nlmsghdr, copied)
   * of every reply message until the ACK or NLMSG_DONE; throws NetlinkError on a kernel error.
   */
  request(op: string, type: number, flags: number, body: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.requestEach(op, type, flags, body, (_t, payload) => { out.push(payload.slice()); });
    return out;
  }

  /**
   * Like request, but hands each reply's type and payload (a view valid only during the
   * call) to `fn`. Returns true when a dump was marked inconsistent (NLM_F_DUMP_INTR).
   */
  requestEach(op: string, type: number, flags: number, body: Uint8Array, fn?: (type: number, payload: Uint8Array) => void): boolean {
    const w = this.w;
    w.reset();
    const seq = this.nextSeq();
    const start = w.beginMessage(type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0);
    w.bytes(body);
    w.endMessage(start);
    this.sendAll(op, w.buf, w.off);
    return this.receive(op, seq, fn);
  }

  /** A dump (NLM_F_DUMP) decoded message by message; retried when the kernel marks it interrupted. */
  dump<T>(op: string, type: number, body: Uint8Array, decode: (type: number, payload: Uint8Array) => T | undefined): T[] {
    for (let attempt = 0; ; attempt++) {
      const out: T[] = [];
      const intr = this.requestEach(op, type, NLM_F_DUMP, body, (t, p) => {
        const v = decode(t, p);
        if (v !== undefined) out.push(v);
      });
      if (!intr) return out;
      if (attempt >= DUMP_RETRIES) throw new NetlinkError(op, EINTR, 'dump interrupted repeatedly');
    }
  }

  /**
   * Pipelined batch: writes many messages per send and returns, per message, its
   * NetlinkError or undefined. Only failures are answered individually (the kernel reports
   * errors even without NLM_F_ACK), and the last message of each send asks for an ACK, which
   * proves everything before it was processed.
   */
  requestMany(op: string | ((i: number) => string), msgs: NetlinkRequest[], opts: BatchOptions = {}): (NetlinkError | undefined)[] {
    return this.batch(op, msgs.length, (w, i, seq) => {
      const m = msgs[i];
      const start = w.beginMessage(m.type, m.flags | NLM_F_REQUEST, seq, 0);
      w.bytes(m.body);
      w.endMessage(start);
    }, opts);
  }

  /**
   * A few requests (a few KiB in all) in one send, each with its own ACK, read back together:
   * one round trip instead of one per request, with no socket buffer sizing (see requestMany
   * for large batches). Returns per request its NetlinkError or undefined. The kernel handles
   * them in order and goes on after a failure, so report the first error in order.
   */
  requestSeries(ops: string[], msgs: NetlinkRequest[]): (NetlinkError | undefined)[] {
    const count = msgs.length;
    const errors: (NetlinkError | undefined)[] = new Array(count).fill(undefined);
    if (count === 0) return errors;
    const w = this.w;
    w.reset();
    const base = this.seq;
    this.seq = (this.seq + count) >>> 0 || 1;
    for (let i = 0; i < count; i++) {
      const m = msgs[i];
      const start = w.beginMessage(m.type, m.flags | NLM_F_REQUEST | NLM_F_ACK, (base + i) >>> 0, 0);
      w.bytes(m.body);
      w.endMessage(start);
    }
    if (w.off > SERIES_MAX) throw new RangeError(`requestSeries: ${w.off} bytes (at most ${SERIES_MAX}; use requestMany)`);
    const op = (i: number) => ops[i] ?? ops[0] ?? 'netlink request';
    this.sendAll(op(0), w.buf, w.off);
    this.receiveBatch(op, base, 0, count, (base + count - 1) >>> 0, errors);
    return errors;
  }

  /**
   * The batch engine: `write(w, i, seq)` appends message i (a full nlmsghdr + body, flags
   * including NLM_F_REQUEST, without NLM_F_ACK) to `w` with the given sequence number.
   */
  batch(op: string | ((i: number) => string), count: number, write: (w: NlWriter, i: number, seq: number) => void, opts: BatchOptions = {}): (NetlinkError | undefined)[] {
    const errors: (NetlinkError | undefined)[] = new Array(count).fill(undefined);
    if (count === 0) return errors;
    this.prepareBatch();
    const chunkBytes = Math.min(opts.chunkBytes ?? (1 << 20), this.batchChunk);
    const w = this.w;
    const base = this.seq;
    this.seq = (this.seq + count) >>> 0 || 1;
    let i = 0;
    while (i < count) {
      w.reset();
      const first = i;
      let last = w.off;
      while (i < count && (i === first || w.off < chunkBytes)) {
        last = w.off;
        write(w, i, (base + i) >>> 0);
        i++;
      }
      // Last message of the chunk: ask for an ACK so we know when the kernel is done with it.
      w.dv.setUint16(last + 6, w.dv.getUint16(last + 6, true) | NLM_F_ACK, true);
      const opName = typeof op === 'string' ? () => op : op;
      this.sendAll(typeof op === 'string' ? op : op(first), w.buf, w.off);
      const lastSeq = (base + i - 1) >>> 0;
      this.receiveBatch(opName, base, first, i, lastSeq, errors);
    }
    return errors;
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    return s;
  }

  private sendAll(op: string, buf: Uint8Array, len: number): void {
    for (;;) {
      const n = libc.send(this.fd, buf, len, 0);
      if (n >= 0) return;
      const e = libc.errno();
      if (e !== EINTR) throw new NetlinkError(op, e);
    }
  }

  private recvOnce(op: string): number {
    for (;;) {
      const n = libc.recv(this.fd, this.rbuf, RECV_SIZE, MSG_TRUNC);
      if (n >= 0) {
        if (n > RECV_SIZE) throw new NetlinkDecodeError('truncated-message', RECV_SIZE, `${op} reply of ${n} bytes`);
        return n;
      }
      const e = libc.errno();
      if (e === EINTR) continue;
      throw new NetlinkError(op, e === EAGAIN ? ETIMEDOUT : e);
    }
  }

  /**
   * Calls `fn` on each message of the `n` bytes just received, skipping other senders',
   * until it returns true; returns whether one did. Bad framing throws NetlinkDecodeError.
   */
  private eachMessage(n: number, op: string, fn: (type: number, flags: number, seq: number, payload: Uint8Array) => boolean): boolean {
    const b = this.rbuf, dv = this.rdv;
    let off = 0;
    while (off < n) {
      if (n - off < NLMSG_HDRLEN) throw new NetlinkDecodeError('truncated-header', off, `${op} reply`);
      const len = dv.getUint32(off, true);
      if (len < NLMSG_HDRLEN || off + len > n) throw new NetlinkDecodeError('bad-length', off, `${op} reply`);
      const type = dv.getUint16(off + 4, true);
      const flags = dv.getUint16(off + 6, true);
      const mseq = dv.getUint32(off + 8, true);
      const mpid = dv.getUint32(off + 12, true);
      const payload = b.subarray(off + NLMSG_HDRLEN, off + len);
      off += (len + 3) & ~3;
      if (mpid !== this.pid && mpid !== 0) continue;
      if (fn(type, flags, mseq, payload)) return true;
    }
    return false;
  }

  /** Reads replies to `seq` until its ACK/error or NLMSG_DONE. */
  private receive(op: string, seq: number, fn?: (type: number, payload: Uint8Array) => void): boolean {
    let intr = false;
    const onMessage = (type: number, flags: number, mseq: number, payload: Uint8Array): boolean => {
      // Stale replies (an earlier request's leftovers) are skipped.
      if (mseq !== seq) return false;
      if (flags & NLM_F_DUMP_INTR) intr = true;
      if (type === NLMSG_ERROR) {
        const e = decodeError(payload, flags);
        if (e.errno !== 0) throw new NetlinkError(op, e.errno, e.extack);
        return true;
      }
      if (type === NLMSG_DONE) {
        // A dump that failed part way carries a negative errno in its DONE payload.
        if (payload.length >= 4) {
          const err = -new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0, true);
          if (err > 0) throw new NetlinkError(op, err);
        }
        return true;
      }
      if (type !== NLMSG_NOOP && type !== NLMSG_OVERRUN) fn?.(type, payload);
      return false;
    };
    while (!this.eachMessage(this.recvOnce(op), op, onMessage));
    return intr;
  }

  /** Reads the answers of batch messages [first, end) until the one for lastSeq. */
  private receiveBatch(op: (i: number) => string, base: number, first: number, end: number, lastSeq: number, errors: (NetlinkError | undefined)[]): void {
    const onMessage = (type: number, flags: number, mseq: number, payload: Uint8Array): boolean => {
      if (type !== NLMSG_ERROR) return false;
      const idx = ((mseq - base) >>> 0);
      if (idx < first || idx >= end) return false;
      const e: NlError = decodeError(payload, flags);
      if (e.errno !== 0) errors[idx] = new NetlinkError(op(idx), e.errno, e.extack);
      return mseq === lastSeq;
    };
    for (;;) {
      let n: number;
      try {
        n = this.recvOnce(op(first));
      } catch (err) {
        // ENOBUFS: answers were dropped, so the outcome of this chunk is unknown.
        if (err instanceof NetlinkError && err.errno === ENOBUFS) {
          for (let k = first; k < end; k++) errors[k] ??= new NetlinkError(op(k), ENOBUFS, 'batch answers lost');
          return;
        }
        throw err;
      }
      if (this.eachMessage(n, 'batch', onMessage)) return;
    }
  }

  /** Large buffers for batches, set once: root may exceed net.core.[rw]mem_max (…BUFFORCE). */
  private prepareBatch(): void {
    if (this.batchReady) return;
    this.batchReady = true;
    const snd = int32(BATCH_SNDBUF), rcv = int32(BATCH_RCVBUF);
    if (libc.setsockopt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, snd, 4) < 0) libc.setsockopt(this.fd, SOL_SOCKET, SO_SNDBUF, snd, 4);
    if (libc.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, rcv, 4) < 0) libc.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, rcv, 4);
    const v = new Uint8Array(4), len = new Int32Array([4]);
    let sndbuf = 212992;
    if (libc.getsockopt(this.fd, SOL_SOCKET, SO_SNDBUF, v, len) === 0) sndbuf = new DataView(v.buffer).getInt32(0, true);
    // netlink_sendmsg refuses a datagram longer than sk_sndbuf - 32; keep a margin.
    this.batchChunk = Math.max(4096, Math.min(1 << 20, sndbuf - 4096));
  }
}

function int32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}
