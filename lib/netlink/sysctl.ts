// sysctls of the calling thread's network namespace through /proc/sys (net/* entries resolve
// against the opener's namespace, so call inside withNetns for another one).
import fs = require('node:fs');
import { NetlinkError } from './errors';
import { FileError, closeFd, nativeFilesReady, openFile, readTextFile, writeAllFd } from '../native/files';

/** `/proc/sys/<key>` for 'net/ipv4/conf/eth0/proxy_arp' (slash form: interface names may hold dots). */
export function sysctlPath(key: string): string {
  if (key.startsWith('/proc/sys/')) return key;
  if (key.includes('..') || key.startsWith('/')) throw new TypeError(`invalid sysctl key "${key}"`);
  return `/proc/sys/${key}`;
}

/** Reads a sysctl, without the trailing newline. Equivalent to `sysctl -n <key>`. */
export function getSysctl(key: string): string {
  try {
    // With koffi loaded (a plugin, the agent): libc, no fs function to compile on a first call.
    if (nativeFilesReady()) {
      const text = readTextFile(sysctlPath(key));
      if (text === undefined) throw new NetlinkError(`get sysctl ${key}`, 2);
      return text.replace(/\n$/, '');
    }
    return fs.readFileSync(sysctlPath(key), 'utf8').replace(/\n$/, '');
  } catch (err) {
    throw fsError(`get sysctl ${key}`, err);
  }
}

/** Writes a sysctl. Equivalent to `sysctl -w <key>=<value>`. */
export function setSysctl(key: string, value: string): void {
  try {
    if (nativeFilesReady()) {
      const fd = openFile(sysctlPath(key), 1 /* O_WRONLY */);
      try { writeAllFd(fd, value, key); } finally { closeFd(fd); }
      return;
    }
    fs.writeFileSync(sysctlPath(key), value);
  } catch (err) {
    throw fsError(`set sysctl ${key}`, err);
  }
}

function fsError(op: string, err: unknown): unknown {
  if (err instanceof NetlinkError) return err;
  if (err instanceof FileError) return new NetlinkError(op, err.errno);
  const errno = (err as NodeJS.ErrnoException).errno;
  return typeof errno === 'number' ? new NetlinkError(op, Math.abs(errno)) : err;
}
