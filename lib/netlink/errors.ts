// Netlink errors: NetlinkError carries the kernel's errno (and extended ACK text) of a failed
// request or syscall; NetlinkDecodeError names what was malformed in bytes from the kernel.
import {
  EADDRNOTAVAIL, EEXIST, ENODEV, ENOENT, ESRCH,
} from './constants';

const STRERROR: Record<number, string> = {
  1: 'operation not permitted', 2: 'no such file or directory', 3: 'no such process',
  4: 'interrupted system call', 9: 'bad file descriptor', 11: 'resource temporarily unavailable',
  12: 'cannot allocate memory', 13: 'permission denied', 16: 'device or resource busy',
  17: 'file exists', 19: 'no such device', 22: 'invalid argument', 23: 'too many open files in system',
  24: 'too many open files', 34: 'numerical result out of range', 36: 'file name too long',
  90: 'message too long', 93: 'protocol not supported', 95: 'operation not supported',
  97: 'address family not supported by protocol', 98: 'address already in use',
  99: 'cannot assign requested address', 100: 'network is down', 101: 'network is unreachable',
  105: 'no buffer space available', 110: 'connection timed out', 113: 'no route to host',
};

/** Lowercase text for an errno, as strerror(3) says it. */
export function strerror(errno: number): string {
  return STRERROR[errno] ?? `errno ${errno}`;
}

/** A failed netlink request or syscall; `errno` is positive (EEXIST = 17). */
export class NetlinkError extends Error {
  override name = 'NetlinkError';
  constructor(readonly op: string, readonly errno: number, readonly extack?: string) {
    super(`${op}: ${strerror(errno)}${extack ? ` (${extack})` : ''}`);
  }

  /** The object already exists (EEXIST). */
  get exists(): boolean { return this.errno === EEXIST; }

  /** The object (or the device/namespace it names) does not exist. */
  get notFound(): boolean {
    const e = this.errno;
    return e === ENOENT || e === ENODEV || e === ESRCH || e === EADDRNOTAVAIL;
  }
}

export type NetlinkDecodeCode =
  | 'truncated-header' // fewer bytes than a header needs
  | 'bad-length' // a length field smaller than its header or past the end of the buffer
  | 'truncated-body' // a fixed struct (ifinfomsg, rtmsg...) cut short
  | 'bad-attribute' // an attribute value of the wrong size for its type
  | 'truncated-message'; // a recv returned more than the buffer held (MSG_TRUNC)

/** Malformed bytes from the kernel (or a test vector); `offset` points at the bad field. */
export class NetlinkDecodeError extends Error {
  override name = 'NetlinkDecodeError';
  constructor(readonly code: NetlinkDecodeCode, readonly offset: number, what: string) {
    super(`decode ${what}: ${code} at offset ${offset}`);
  }
}
