// File logger for the plugins: one line per event, opened lazily on the first line at or
// above the level, never stdout (stdout belongs to the CNI protocol). Write failures are ignored.
import fs = require('node:fs');
import { nativeFilesReady, openAppend, writeAllFd } from './native/files';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const DEFAULT_LOG_PATH = '/var/log/brindle/cni.log';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

let path = DEFAULT_LOG_PATH;
let threshold = LEVELS.info;
let fd: number | undefined;
let failed = false;
let context = '';

/** Sets the file and level (conflist `log_file_path`, `log_level`) and a prefix such as the container id. */
export function configureLog(opts: { path?: unknown; level?: unknown; context?: string }): void {
  if (typeof opts.path === 'string' && opts.path && opts.path !== path) {
    if (fd !== undefined) { try { fs.closeSync(fd); } catch { /* ignore */ } fd = undefined; }
    path = opts.path; failed = false;
  }
  if (typeof opts.level === 'string' && opts.level.toLowerCase() in LEVELS) threshold = LEVELS[opts.level.toLowerCase() as Level];
  if (opts.context !== undefined) context = opts.context;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (LEVELS[level] < threshold || failed) return;
  try {
    // A plugin process has koffi loaded (netlink): libc calls instead of fs's first-call compiles.
    const native = nativeFilesReady();
    if (fd === undefined) {
      const open = () => (native ? openAppend(path, 0o640) : fs.openSync(path, 'a', 0o640));
      try {
        fd = open();
      } catch {
        fs.mkdirSync(path.slice(0, path.lastIndexOf('/')) || '/', { recursive: true });
        fd = open();
      }
    }
    let line = `${isoTime()} ${level} [${process.pid}]${context ? ` ${context}` : ''} ${msg}`;
    if (fields) line += ` ${JSON.stringify(fields)}`;
    if (native) writeAllFd(fd, line + '\n', path);
    else fs.writeSync(fd, line + '\n');
  } catch {
    failed = true;
  }
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * Date.prototype.toISOString's text, built from the UTC getters: toISOString itself makes V8
 * load the local time zone (/etc/localtime and a readlink walk), a cost every plugin run paid.
 */
export function isoTime(ms = Date.now()): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

export const log: Logger = {
  debug: (m, f) => write('debug', m, f),
  info: (m, f) => write('info', m, f),
  warn: (m, f) => write('warn', m, f),
  error: (m, f) => write('error', m, f),
};

const timing = (globalThis as { [k: symbol]: ((label: string) => void) | undefined })[Symbol.for('brindle.timing')];
/** A start-up milestone for BRINDLE_DEBUG_TIMING (the SEA loader prints them at exit); else nothing. */
export function mark(label: string): void { if (timing) timing(label); }
