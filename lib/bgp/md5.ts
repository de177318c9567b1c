// TCP sockets made through FFI so they can carry a TCP MD5 signature key (RFC 2385,
// setsockopt TCP_MD5SIG) and be created inside another network namespace, then handed to
// Node as net.Socket / net.Server. Node's `net` can do neither.
import net = require('node:net');
import { koffi, libcLib } from '../native/koffi';
import { ipTextToBytes } from '../ip';

const AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM = 1, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4;
const IPPROTO_TCP = 6, TCP_MD5SIG = 14;
const IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;
const EINPROGRESS = 115;
const POLLOUT = 4;
const CLONE_NEWNET = 0x40000000;
const O_RDONLY = 0, O_CLOEXEC = 0o2000000;
/** sizeof(struct tcp_md5sig): sockaddr_storage(128) + flags, prefixlen, keylen, ifindex + key[80]. */
const TCP_MD5SIG_SIZE = 216;
export const TCP_MD5SIG_MAXKEYLEN = 80;

/** A socket-level failure from libc, with its errno. */
export class SocketError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: errno ${errno}`);
    this.name = 'SocketError';
  }
}

interface Libc {
  socket(d: number, t: number, p: number): number;
  setsockopt(fd: number, level: number, name: number, val: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Uint8Array, len: Uint8Array): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  connect(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  close(fd: number): number;
  poll(fds: Uint8Array, n: number, timeout: number): number;
  open(path: string, flags: number): number;
  setns(fd: number, type: number): number;
}
let libc: Libc | undefined;
function c(): Libc {
  if (libc) return libc;
  const l = libcLib();
  libc = {
    socket: l.func('int socket(int, int, int)'),
    setsockopt: l.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    getsockopt: l.func('int getsockopt(int, int, int, _Inout_ void *, _Inout_ void *)'),
    bind: l.func('int bind(int, const void *, uint32_t)'),
    connect: l.func('int connect(int, const void *, uint32_t)'),
    listen: l.func('int listen(int, int)'),
    close: l.func('int close(int)'),
    poll: l.func('int poll(_Inout_ void *, uint64_t, int)'),
    open: l.func('int open(const char *, int)'),
    setns: l.func('int setns(int, int)'),
  } as unknown as Libc;
  return libc;
}
const errno = (): number => (koffi() as any).errno();

function check(op: string, rc: number): number {
  if (rc < 0) throw new SocketError(op, errno());
  return rc;
}

function sockaddr(address: string, port: number): Uint8Array {
  const b = ipTextToBytes(address);
  if (b.length === 4) {
    const sa = new Uint8Array(16);
    sa[0] = AF_INET; sa[2] = port >> 8; sa[3] = port & 255; sa.set(b, 4);
    return sa;
  }
  const sa = new Uint8Array(28);
  sa[0] = AF_INET6; sa[2] = port >> 8; sa[3] = port & 255; sa.set(b, 8);
  return sa;
}

/** struct tcp_md5sig for one peer; an empty key deletes it. */
function md5sig(peer: string, key: string): Uint8Array {
  const k = Buffer.from(key, 'utf8');
  if (k.length > TCP_MD5SIG_MAXKEYLEN) throw new RangeError(`tcp md5 key of ${k.length} bytes exceeds ${TCP_MD5SIG_MAXKEYLEN}`);
  const s = new Uint8Array(TCP_MD5SIG_SIZE);
  s.set(sockaddr(peer, 0), 0);
  s[130] = k.length & 255; s[131] = k.length >> 8; // keylen, host (little-endian) order
  s.set(k, 136);
  return s;
}

/** Sets (or with an empty/undefined password, removes) the MD5 key for `peer` on a socket fd. */
export function setMd5Key(fd: number, peer: string, password: string | undefined): void {
  const sig = md5sig(peer, password ?? '');
  const rc = c().setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, sig, TCP_MD5SIG_SIZE);
  // Removing a key that is not there is ENOENT: already the wanted state.
  if (rc < 0 && !(password === undefined || password === '')) throw new SocketError(`setsockopt TCP_MD5SIG ${peer}`, errno());
}

/** Runs fn with the calling thread inside the namespace at `nsPath` (synchronous; always switches back). */
export function inNetns<T>(nsPath: string | undefined, fn: () => T): T {
  if (!nsPath) return fn();
  const l = c();
  const self = check('open /proc/thread-self/ns/net', l.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC));
  let target = -1;
  try {
    target = check(`open ${nsPath}`, l.open(nsPath, O_RDONLY | O_CLOEXEC));
    check(`setns ${nsPath}`, l.setns(target, CLONE_NEWNET));
    try { return fn(); } finally { check('setns back', l.setns(self, CLONE_NEWNET)); }
  } finally {
    if (target >= 0) l.close(target);
    l.close(self);
  }
}

function newSocket(family: number, netns?: string): number {
  return inNetns(netns, () => check('socket', c().socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)));
}

export interface ConnectOptions {
  address: string;
  port: number;
  localAddress?: string;
  password?: string;
  /** Network namespace path (e.g. /var/run/netns/x) to make the socket in. */
  netns?: string;
  timeoutMs?: number;
}

/** Opens a TCP connection (MD5-signed when `password` is set) and resolves with a connected net.Socket. */
export async function connectTcp(o: ConnectOptions): Promise<net.Socket> {
  const l = c();
  const v6 = o.address.includes(':');
  const fd = newSocket(v6 ? AF_INET6 : AF_INET, o.netns);
  try {
    if (o.password) setMd5Key(fd, o.address, o.password);
    if (o.localAddress) { const sa = sockaddr(o.localAddress, 0); check(`bind ${o.localAddress}`, l.bind(fd, sa, sa.length)); }
    const sa = sockaddr(o.address, o.port);
    const rc = l.connect(fd, sa, sa.length);
    if (rc < 0) {
      const e = errno();
      if (e !== EINPROGRESS) throw new SocketError(`connect ${o.address}:${o.port}`, e);
      await waitWritable(fd, o.timeoutMs ?? 10_000, `${o.address}:${o.port}`);
    }
  } catch (err) {
    l.close(fd);
    throw err;
  }
  // With `fd` given, Node treats the socket as already connected; it is by now.
  return new net.Socket({ fd, readable: true, writable: true });
}

async function waitWritable(fd: number, timeoutMs: number, what: string): Promise<void> {
  const l = c();
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    dv.setInt32(0, fd, true); dv.setInt16(4, POLLOUT, true); dv.setInt16(6, 0, true);
    const n = l.poll(pfd, 1, 0);
    if (n > 0) {
      const val = new Uint8Array(4), len = new Uint8Array(4);
      len[0] = 4;
      check('getsockopt SO_ERROR', l.getsockopt(fd, SOL_SOCKET, SO_ERROR, val, len));
      const soErr = new DataView(val.buffer).getInt32(0, true);
      if (soErr) throw new SocketError(`connect ${what}`, soErr);
      return;
    }
    if (Date.now() >= deadline) throw new SocketError(`connect ${what}`, 110 /* ETIMEDOUT */);
    await new Promise((r) => setTimeout(r, delay));
  }
}

export interface Listener {
  server: net.Server;
  fd: number;
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on address:port (inside `netns` when given) through an FFI socket whose fd can take MD5 keys. */
export async function listenTcp(o: { address: string; port: number; netns?: string; backlog?: number }, onConnection: (s: net.Socket) => void): Promise<Listener> {
  const l = c();
  const v6 = o.address.includes(':');
  const fd = newSocket(v6 ? AF_INET6 : AF_INET, o.netns);
  const one = new Uint8Array([1, 0, 0, 0]);
  try {
    check('setsockopt SO_REUSEADDR', l.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4));
    if (v6) check('setsockopt IPV6_V6ONLY', l.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4));
    const sa = sockaddr(o.address, o.port);
    check(`bind ${o.address}:${o.port}`, l.bind(fd, sa, sa.length));
    check('listen', l.listen(fd, o.backlog ?? 64));
  } catch (err) {
    l.close(fd);
    throw err;
  }
  const server = net.createServer({ pauseOnConnect: false }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => { server.off('error', reject); resolve(); });
  });
  server.on('error', () => { /* accept errors (EMFILE…) must not crash the process */ });
  return {
    server, fd, address: o.address, port: o.port,
    // server.close() stops listening at once; its callback would wait for accepted sockets, which sessions own.
    close: async () => { server.close(); },
  };
}
