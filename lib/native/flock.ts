// Advisory whole-file locks with flock(2): one exclusive holder across processes (plugin
// invocations running in parallel), released when fn settles or the process dies.
import * as libc from './libc';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const O_RDWR = 2;
const O_CREAT = 0x40;
const O_CLOEXEC = 0x80000;
const EINTR = 4;

/** The lock stayed held by someone else for the whole wait. */
export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
  constructor(readonly path: string, readonly timeoutMs: number) {
    super(`lock ${path}: still held after ${timeoutMs} ms`);
  }
}

/** A failed open/flock syscall on the lock file. */
export class LockError extends Error {
  override name = 'LockError';
  constructor(readonly path: string, readonly errno: number) {
    super(`lock ${path}: errno ${errno}`);
  }
}

export interface LockOptions {
  /** Give up after this long with LockTimeoutError (LOCK_NB polling); absent: wait as long as it takes. */
  timeoutMs?: number;
  /** Longest pause between polls (default 50 ms; polls start at 1 ms and double). */
  maxPollMs?: number;
  /** Called once when the lock is taken by another holder and the wait starts. */
  onWait?: () => void;
}

function openLockFile(path: string): number {
  const fd = libc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600);
  if (fd < 0) throw new LockError(path, libc.errno());
  return fd;
}

/**
 * Tries LOCK_EX|LOCK_NB once: true when taken, false otherwise. Any failure but EINTR counts as
 * "not yet": besides EWOULDBLOCK, flock(2) fails transiently with ENOLCK under memory pressure,
 * and the errno read after the call was seen to be another call's (ENOMEM with 200 processes).
 * The caller's wait (a blocking flock, or polling to a deadline) reports what persists.
 */
function tryLock(fd: number): boolean {
  for (;;) {
    if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    if (libc.errno() !== EINTR) return false;
  }
}

/**
 * Runs fn holding an exclusive flock(2) on `path` (created if missing). Without a timeout the
 * wait blocks on a koffi worker thread, leaving the event loop free; with one, LOCK_NB polling
 * gives up with LockTimeoutError.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const fd = openLockFile(path);
  try {
    if (!tryLock(fd)) {
      opts.onWait?.();
      if (opts.timeoutMs === undefined) {
        const { rc } = await libc.flockAsync(fd, LOCK_EX);
        if (rc !== 0) throw new LockError(path, -1);
      } else {
        await pollLock(path, fd, opts.timeoutMs, opts.maxPollMs ?? 50);
      }
    }
    try {
      return await fn();
    } finally {
      libc.flock(fd, LOCK_UN);
    }
  } finally {
    libc.close(fd);
  }
}

async function pollLock(path: string, fd: number, timeoutMs: number, maxPollMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 1;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new LockTimeoutError(path, timeoutMs);
    await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    if (tryLock(fd)) return;
    pause = Math.min(pause * 2, maxPollMs);
  }
}
