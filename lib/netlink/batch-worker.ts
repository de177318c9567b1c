// Pipelined netlink batches sent from a worker thread: the main thread encodes messages
// (nlmsghdr with sequence numbers, no NLM_F_ACK) into a buffer it transfers; the worker owns
// its own NETLINK_ROUTE socket (same network namespace: every thread of the process shares it),
// sends the buffer in chunks with an ACK on each chunk's last message, and posts back the
// errors per message. The kernel's route insertion (done inside sendmsg) then runs on another
// core while the main thread keeps decoding BGP. Batches are sent in submission order.
import type { Worker } from 'node:worker_threads';
import { decodeError } from './codec';
import { ENOBUFS } from './constants';
import { NetlinkError } from './errors';

// Self-contained (the single executable's workers cannot require files): koffi is dlopened
// from the path passed in workerData.
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const mod = { exports: {} };
process.dlopen(mod, workerData.koffi, require('node:os').constants.dlopen.RTLD_NOW);
const koffi = mod.exports;
const lib = koffi.load('libc.so.6');
const socket = lib.func('int socket(int domain, int type, int protocol)');
const bind = lib.func('int bind(int fd, const void *addr, uint32_t addrlen)');
const getsockname = lib.func('int getsockname(int fd, void *addr, int *addrlen)');
const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, int *len)');
const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const EINTR = 4, EAGAIN = 11, ETIMEDOUT = 110, ENOBUFS = 105;
const int32 = (v) => { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, v, true); return b; };
const ioctl = lib.func('int ioctl(int fd, unsigned long req)');
const setns = lib.func('int setns(int fd, int nstype)');
const close = lib.func('int close(int fd)');
let fd = -1, pid = 0, chunk = 1 << 20;
function open() {
  // Enter the namespace of the caller's socket (SIOCGSKNS), whatever this thread started in.
  const ns = ioctl(workerData.nsOf, 0x894c);
  if (ns < 0) throw koffi.errno();
  const rc = setns(ns, 0x40000000);
  const e = koffi.errno();
  close(ns);
  if (rc < 0) throw e;
  fd = socket(16, 3 | 0x80000, 0);
  if (fd < 0) throw koffi.errno();
  setsockopt(fd, 270, 11, int32(1), 4); // NETLINK_EXT_ACK
  setsockopt(fd, 270, 10, int32(1), 4); // NETLINK_CAP_ACK
  const tv = new Uint8Array(16); new DataView(tv.buffer).setBigInt64(0, 30n, true);
  setsockopt(fd, 1, 20, tv, 16); // SO_RCVTIMEO
  if (setsockopt(fd, 1, 32, int32(4 << 20), 4) < 0) setsockopt(fd, 1, 7, int32(4 << 20), 4);
  if (setsockopt(fd, 1, 33, int32(32 << 20), 4) < 0) setsockopt(fd, 1, 8, int32(32 << 20), 4);
  const sa = new Uint8Array(12); sa[0] = 16;
  if (bind(fd, sa, 12) < 0) throw koffi.errno();
  if (getsockname(fd, sa, new Int32Array([12])) < 0) throw koffi.errno();
  pid = new DataView(sa.buffer).getUint32(4, true);
  const v = new Uint8Array(4);
  let sndbuf = 212992;
  if (getsockopt(fd, 1, 7, v, new Int32Array([4])) === 0) sndbuf = new DataView(v.buffer).getInt32(0, true);
  chunk = Math.max(4096, Math.min(1 << 20, sndbuf - 4096));
}
const rbuf = new Uint8Array(65536), rdv = new DataView(rbuf.buffer);
function run(m) {
  const buf = new Uint8Array(m.buf, 0, m.len), dv = new DataView(m.buf);
  const errs = []; // [index, flags, payload bytes] of failed messages
  let off = 0, i = 0;
  while (off < m.len) {
    const first = i, start = off;
    let last = off;
    while (off < m.len && (off === start || off - start + dv.getUint32(off, true) <= chunk)) {
      last = off; off += (dv.getUint32(off, true) + 3) & ~3; i++;
    }
    dv.setUint16(last + 6, dv.getUint16(last + 6, true) | 4, true); // NLM_F_ACK
    const lastSeq = dv.getUint32(last + 8, true);
    for (;;) {
      const n = send(fd, buf.subarray(start), off - start, 0);
      if (n >= 0) break;
      const e = koffi.errno();
      if (e !== EINTR) return { fatal: e };
    }
    let done = false;
    while (!done) {
      const n = recv(fd, rbuf, 65536, 0x20);
      if (n < 0) {
        const e = koffi.errno();
        if (e === EINTR) continue;
        if (e === ENOBUFS) { errs.push([-1, first, i]); break; }
        return { fatal: e === EAGAIN ? ETIMEDOUT : e };
      }
      let p = 0;
      while (p + 16 <= n) {
        const len = rdv.getUint32(p, true);
        if (len < 16 || p + len > n) break;
        const type = rdv.getUint16(p + 4, true), flags = rdv.getUint16(p + 6, true);
        const seq = rdv.getUint32(p + 8, true), mpid = rdv.getUint32(p + 12, true);
        if (type === 2 && (mpid === pid || mpid === 0)) {
          const idx = (seq - m.base) >>> 0;
          if (idx >= first && idx < i) {
            if (rdv.getInt32(p + 16, true) !== 0) errs.push([idx, flags, rbuf.slice(p + 16, p + len)]);
            if (seq === lastSeq) done = true;
          }
        }
        p += (len + 3) & ~3;
      }
    }
  }
  return { errs };
}
try { open(); } catch (e) { if (fd >= 0) close(fd); fd = -1; pid = e; }
parentPort.on('message', (m) => {
  let r;
  if (fd < 0) r = { fatal: typeof pid === 'number' ? pid : 5 };
  else { try { r = run(m); } catch (e) { r = { fatal: 5 }; } }
  r.id = m.id;
  parentPort.postMessage(r, r.fatal ? [] : undefined);
});
`;

type Done = (errs: (NetlinkError | undefined)[] | NetlinkError) => void;
interface Job { count: number; op: (i: number) => string; done: Done }

/** A worker thread with its own NETLINK_ROUTE socket that sends pre-encoded batches. */
export class BatchWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private seq = 1;
  private dead?: Error;

  /** `nsOf`: a socket whose network namespace the worker's socket is opened in. */
  constructor(koffiPath: string, nsOf: number) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { koffi: koffiPath, nsOf } });
    this.worker.unref();
    this.worker.on('message', (r: { id: number; fatal?: number; errs?: [number, number, Uint8Array | number][] }) => this.onResult(r));
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const [id, j] of this.jobs) { this.jobs.delete(id); j.done(new NetlinkError(j.op(0), 5, err.message)); }
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('netlink batch worker exited')));
  }

  /** True once the worker failed; callers fall back to the main thread's socket. */
  get failed(): boolean { return this.dead !== undefined; }

  /** Jobs sent and not yet answered. */
  get inFlight(): number { return this.jobs.size; }

  /** Sequence numbers for `count` messages (written by the caller into its nlmsghdrs). */
  reserve(count: number): number {
    const base = this.seq;
    this.seq = (this.seq + count) >>> 0 || 1;
    return base;
  }

  /**
   * Sends `len` bytes of `count` messages numbered from `base` (from reserve); `buf`'s
   * ArrayBuffer is transferred. `done` gets the per-message errors, or one error when the
   * socket failed as a whole.
   */
  submit(buf: ArrayBuffer, len: number, count: number, base: number, op: (i: number) => string, done: Done): void {
    if (this.dead) { done(new NetlinkError(op(0), 5, this.dead.message)); return; }
    const id = this.nextId++;
    this.jobs.set(id, { count, op, done });
    if (this.jobs.size === 1) this.worker.ref();
    this.worker.postMessage({ id, buf, len, base }, [buf]);
  }

  private onResult(r: { id: number; fatal?: number; errs?: [number, number, Uint8Array | number][] }): void {
    const j = this.jobs.get(r.id);
    if (!j) return;
    this.jobs.delete(r.id);
    if (this.jobs.size === 0) this.worker.unref();
    if (r.fatal !== undefined) { j.done(new NetlinkError(j.op(0), r.fatal)); return; }
    const out: (NetlinkError | undefined)[] = new Array(j.count).fill(undefined);
    for (const [idx, flags, payload] of r.errs ?? []) {
      if (idx === -1) {
        // ENOBUFS: answers were dropped, so the outcome of messages [flags, payload) is unknown.
        for (let k = flags; k < (payload as number); k++) out[k] ??= new NetlinkError(j.op(k), ENOBUFS, 'batch answers lost');
        continue;
      }
      const p = payload as Uint8Array;
      let e: { errno: number; extack?: string };
      try { e = decodeError(p, flags); } catch { e = { errno: -new DataView(p.buffer, p.byteOffset, 4).getInt32(0, true) }; }
      if (e.errno !== 0) out[idx] = new NetlinkError(j.op(idx), e.errno, e.extack);
    }
    j.done(out);
  }

  close(): void { void this.worker.terminate(); }
}
