// Network namespaces for synchronous sections: withNetns moves Node's main thread into a
// namespace with setns(2), runs fn, and always moves it back. Sockets opened inside stay
// bound to that namespace afterwards, which is how a pod's namespace is driven from outside.
import * as libc from '../native/libc';
import { CLONE_NEWNET, O_CLOEXEC, O_RDONLY } from './constants';
import { NetlinkError } from './errors';

/** Switching back to the original namespace failed: the process must not go on. */
export class NetnsRestoreError extends Error {
  override name = 'NetnsRestoreError';
  readonly fatal = true;
  constructor(readonly errno: number) {
    super(`restore original netns: errno ${errno}; process is in the wrong network namespace`);
  }
}

let originalFd: number | undefined; // the thread's namespace before the first switch, kept open
let depth = 0;
let poisoned: NetnsRestoreError | undefined;

/** `/var/run/netns/<name>` for a bare name; a path (containing '/') is returned as is. */
export function netnsPath(nameOrPath: string): string {
  return nameOrPath.includes('/') ? nameOrPath : `/var/run/netns/${nameOrPath}`;
}

/** Opens a namespace file (O_RDONLY|O_CLOEXEC); NetlinkError with notFound when it is gone. */
export function openNetns(path: string): number {
  const fd = libc.open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw new NetlinkError(`open netns ${path}`, libc.errno());
  return fd;
}

/** Closes a file descriptor from openNetns (errors ignored: nothing to undo). */
export function closeFd(fd: number): void {
  libc.close(fd);
}

/**
 * Runs fn with the calling (main) thread inside the namespace at nsPath, like
 * `ip netns exec`, but only for this synchronous section. fn must not be async.
 */
export function withNetns<T>(nsPath: string, fn: () => T): T {
  if (poisoned) throw poisoned;
  const target = openNetns(nsPath);
  let back: number | undefined;
  let ownBack = false;
  try {
    // Nested sections return to the enclosing namespace, the outermost to the original.
    if (depth === 0) {
      back = originalFd ??= openNetns('/proc/thread-self/ns/net');
    } else {
      back = openNetns('/proc/thread-self/ns/net');
      ownBack = true;
    }
    if (libc.setns(target, CLONE_NEWNET) < 0) throw new NetlinkError(`enter netns ${nsPath}`, libc.errno());
    depth++;
    let result: T;
    try {
      result = fn();
    } finally {
      depth--;
      if (libc.setns(back, CLONE_NEWNET) < 0) {
        poisoned = new NetnsRestoreError(libc.errno());
        throw poisoned; // eslint-disable-line no-unsafe-finally
      }
    }
    if (result && typeof (result as { then?: unknown }).then === 'function') {
      (result as unknown as Promise<unknown>).catch(() => undefined);
      throw new TypeError(`withNetns ${nsPath}: callback must be synchronous`);
    }
    return result;
  } finally {
    libc.close(target);
    if (ownBack && back !== undefined) libc.close(back);
  }
}
