// libc functions used through koffi, each declared once on first use (declaring costs ~20 µs,
// so a process pays only for what it calls). Callers check for -1 and read errno().
import { koffi, libcLib } from './koffi';

type Fn = (...args: any[]) => any;
const fns = new Map<string, Fn>();

/** A libc function by its C prototype, declared once per process script (shared by every caller here). */
export function libcFunc(proto: string): Fn {
  let f = fns.get(proto);
  if (!f) {
    f = libcLib().func(proto) as Fn;
    fns.set(proto, f);
  }
  return f;
}

/** errno of the last libc call on this thread. */
export function errno(): number { return koffi().errno(); }

export function socket(domain: number, type: number, protocol: number): number {
  return libcFunc('int socket(int domain, int type, int protocol)')(domain, type, protocol);
}

export function bind(fd: number, addr: Uint8Array, addrlen: number): number {
  return libcFunc('int bind(int fd, const void *addr, uint32_t addrlen)')(fd, addr, addrlen);
}

export function getsockname(fd: number, addr: Uint8Array, addrlen: Int32Array): number {
  return libcFunc('int getsockname(int fd, void *addr, int *addrlen)')(fd, addr, addrlen);
}

export function setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number {
  return libcFunc('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)')(fd, level, name, value, len);
}

export function getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Int32Array): number {
  return libcFunc('int getsockopt(int fd, int level, int name, void *value, int *len)')(fd, level, name, value, len);
}

export function send(fd: number, buf: Uint8Array, len: number, flags: number): number {
  return libcFunc('intptr_t send(int fd, const void *buf, size_t len, int flags)')(fd, buf, len, flags);
}

export function sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, addrlen: number): number {
  return libcFunc('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)')(fd, buf, len, flags, addr, addrlen);
}

export function recv(fd: number, buf: Uint8Array, len: number, flags: number): number {
  return libcFunc('intptr_t recv(int fd, void *buf, size_t len, int flags)')(fd, buf, len, flags);
}

export function recvfrom(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, addrlen: Int32Array | null): number {
  return libcFunc('intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, int *addrlen)')(fd, buf, len, flags, addr, addrlen);
}

export function setns(fd: number, nstype: number): number {
  return libcFunc('int setns(int fd, int nstype)')(fd, nstype);
}

/** open(2); `mode` only with O_CREAT (passed as the variadic argument it is). */
export function open(path: string, flags: number, mode?: number): number {
  const f = libcFunc('int open(const char *path, int flags, ...)');
  return mode === undefined ? f(path, flags) : f(path, flags, 'uint32_t', mode);
}

export function close(fd: number): number {
  return libcFunc('int close(int fd)')(fd);
}

export function flock(fd: number, operation: number): number {
  return libcFunc('int flock(int fd, int operation)')(fd, operation);
}

/** flock(2) on a koffi worker thread, so a blocking LOCK_EX does not stall the event loop. */
export function flockAsync(fd: number, operation: number): Promise<{ rc: number; errno: number }> {
  const f = libcFunc('int flock(int fd, int operation)') as Fn & { async: Fn };
  // errno of a worker-thread call is not visible to errno() here; report EWOULDBLOCK-free failures as -1.
  return new Promise((resolve, reject) => {
    f.async(fd, operation, (err: unknown, rc: number) => (err ? reject(err) : resolve({ rc, errno: rc < 0 ? -1 : 0 })));
  });
}
