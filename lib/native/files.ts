// File and descriptor operations straight through libc (koffi), for the per-pod path of the
// plugin once koffi is loaded. Node's fs functions are JavaScript that V8 compiles on their
// first call in every new process (readSync with its argument checks, writeFileSync, statSync
// with the Stats class: 50–300 µs each, measured), while a koffi function is declared once
// (~20 µs) and runs no JavaScript. Errors are FileError with the errno and Node's code name.
import { isAddonLoaded } from './addon';
import { close, errno, libcFunc, open } from './libc';

/** A failed file operation: `op` and `path` name it, errno/code say why. */
export class FileError extends Error {
  override name = 'FileError';
  readonly code: string;
  constructor(readonly op: string, readonly path: string, readonly errno: number) {
    super(`${op} ${path}: ${errnoCode(errno)}`);
    this.code = errnoCode(errno);
  }
}

const CODES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 5: 'EIO', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 17: 'EEXIST',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 28: 'ENOSPC', 30: 'EROFS', 32: 'EPIPE', 36: 'ENAMETOOLONG', 40: 'ELOOP',
};
/** Node's name for an errno (ENOENT...), `errno N` for others. */
export function errnoCode(errno: number): string { return CODES[errno] ?? `errno ${errno}`; }

const O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0o100, O_TRUNC = 0o1000, O_APPEND = 0o2000, O_CLOEXEC = 0o2000000;
const F_OK = 0;
const EINTR = 4, EAGAIN = 11;
// struct stat on x86_64 glibc (the only platform the executable carries koffi for): st_mode at
// 24 (u32), st_uid at 28, st_size at 48 (i64); 144 bytes.
const STAT_SIZE = 144, ST_MODE = 24, ST_UID = 28, ST_SIZE = 48;
const S_IFMT = 0o170000, S_IFREG = 0o100000;

const access = (path: string, mode: number): number => libcFunc('int access(const char *path, int mode)')(path, mode);
const stat = (path: string, buf: Uint8Array): number => libcFunc('int stat(const char *path, _Out_ void *buf)')(path, buf);
const read = (fd: number, buf: Uint8Array, n: number): number => libcFunc('intptr_t read(int fd, _Out_ void *buf, size_t count)')(fd, buf, n);
const writeBytes = (fd: number, buf: Uint8Array, n: number): number => libcFunc('intptr_t write(int fd, const void *buf, size_t count)')(fd, buf, n);
// The same write(2) taking a JS string: koffi passes its UTF-8 copy (no Buffer).
const writeString = (fd: number, s: string, n: number): number => libcFunc('intptr_t write(int fd, const char *buf, size_t count)')(fd, s, n);
const rename = (from: string, to: string): number => libcFunc('int rename(const char *from, const char *to)')(from, to);
const unlink = (path: string): number => libcFunc('int unlink(const char *path)')(path);

/** True when koffi is already loaded in this process (the plugin's ADD/DEL/CHECK paths): then these are the cheap way. */
export function nativeFilesReady(): boolean {
  return isAddonLoaded('koffi');
}

/** access(F_OK): the path exists (following links). */
export function exists(path: string): boolean {
  return access(path, F_OK) === 0;
}

/** stat(2): mode, owner and size, or undefined when the path does not exist. */
export function statPath(path: string): { mode: number; uid: number; size: number; isFile: boolean } | undefined {
  const b = new Uint8Array(STAT_SIZE);
  if (stat(path, b) !== 0) {
    const e = errno();
    if (e === 2 || e === 20) return undefined;
    throw new FileError('stat', path, e);
  }
  const dv = new DataView(b.buffer);
  const mode = dv.getUint32(ST_MODE, true);
  return { mode, uid: dv.getUint32(ST_UID, true), size: Number(dv.getBigInt64(ST_SIZE, true)), isFile: (mode & S_IFMT) === S_IFREG };
}

/** A regular file with an execute bit (for root, any x bit makes it executable). */
export function isExecutableFile(path: string): boolean {
  const st = statPath(path);
  return !!st && st.isFile && (st.mode & 0o111) !== 0;
}

/** open(2) with O_CLOEXEC; `mode` for O_CREAT. */
export function openFile(path: string, flags: number, mode?: number): number {
  for (;;) {
    const fd = open(path, flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    const e = errno();
    if (e !== EINTR) throw new FileError('open', path, e);
  }
}

export function closeFd(fd: number): void {
  close(fd);
}

/** Reads to end of file (or of the pipe). */
export function readAllFd(fd: number, max = 16 << 20): Uint8Array {
  let b = new Uint8Array(16384);
  let total = 0;
  for (;;) {
    if (total === b.length) {
      if (total >= max) throw new FileError('read', `fd ${fd}`, 27 /* EFBIG */);
      const bigger = new Uint8Array(b.length * 2);
      bigger.set(b);
      b = bigger;
    }
    const n = read(fd, b.subarray(total), b.length - total);
    if (n < 0) {
      const e = errno();
      if (e === EINTR || e === EAGAIN) continue;
      throw new FileError('read', `fd ${fd}`, e);
    }
    if (n === 0) break;
    total += n;
  }
  return b.subarray(0, total);
}

/**
 * Writes all of `data`. A string goes to the kernel as koffi's UTF-8 copy of it (no Buffer);
 * a short write (a pipe reader that went away part way, a full disk) continues from bytes.
 */
export function writeAllFd(fd: number, data: string | Uint8Array, what = `fd ${fd}`): void {
  let bytes: Uint8Array | undefined = typeof data === 'string' ? undefined : data;
  let off = 0;
  if (typeof data === 'string') {
    const len = asciiOnly(data) ? data.length : -1;
    if (len >= 0) {
      const n = retry(() => writeString(fd, data, len), 'write', what);
      if (n === len) return;
      off = n;
    }
    bytes = new TextEncoder().encode(data);
  }
  const b = bytes!;
  while (off < b.length) off += retry(() => writeBytes(fd, b.subarray(off), b.length - off), 'write', what);
}

function retry(call: () => number, op: string, what: string): number {
  for (;;) {
    const n = call();
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR && e !== EAGAIN) throw new FileError(op, what, e);
  }
}

function asciiOnly(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The file's text (UTF-8), or undefined when it does not exist. */
export function readTextFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openFile(path, O_RDONLY);
  } catch (err) {
    if (err instanceof FileError && err.errno === 2) return undefined;
    throw err;
  }
  try {
    return utf8Text(readAllFd(fd));
  } finally {
    closeFd(fd);
  }
}

/**
 * Writes a whole file atomically: a private temp name, then rename over `path`. Throws
 * FileError (ENOENT when the directory is missing: the caller makes it) and leaves no temp file.
 */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
  try {
    try {
      writeAllFd(fd, data, tmp);
    } finally {
      closeFd(fd);
    }
    if (rename(tmp, path) !== 0) throw new FileError('rename', `${tmp} to ${path}`, errno());
  } catch (err) {
    unlink(tmp);
    throw err;
  }
}

/** Opens a file for appending (created with `mode` when missing). */
export function openAppend(path: string, mode: number): number {
  return openFile(path, O_WRONLY | O_CREAT | O_APPEND, mode);
}

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }).utf8Slice;
/**
 * UTF-8 bytes as a string, through Buffer's native slice (no JavaScript of Node's to compile
 * on a first call, unlike buf.toString or TextDecoder).
 */
export function utf8Text(b: Uint8Array, start = 0, end = b.length): string {
  if (utf8Slice) return utf8Slice.call(b, start, end);
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8');
}
