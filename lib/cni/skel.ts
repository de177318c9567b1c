// The CNI plugin skeleton: reads CNI_* and stdin as libcni sends them, validates them as the
// spec says, negotiates the version, runs the verb's handler and writes the result (or the
// spec's error JSON) on stdout with fs.writeSync, then ends with process.exit.
import fs = require('node:fs');
import { CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_INVALID_ENV, ERR_TRY_AGAIN } from './errors';
import type { CniRequest, NetConf, Result, Verb } from './types';
import { compareVersions, CURRENT_VERSION, negotiateVersion, parseResult, resultForVersion, SUPPORTED_VERSIONS } from './version';
import { mark } from '../log';
import { libcFunc } from '../native/libc';
import { nativeFilesReady, writeAllFd } from '../native/files';
import { earlyStdin } from './early';
import { CONTAINER_ID, validateContainerId, validateIfname } from './validate';

export { validateContainerId, validateIfname };

export interface Handlers {
  add(req: CniRequest): Promise<Result>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  status?(req: CniRequest): Promise<void>;
  gc?(req: CniRequest): Promise<void>;
  /**
   * Ends the process once the answer is written (default process.exit); `ran` says whether
   * a verb handler was invoked (a plugin that has loaded koffi by then can use fastExit).
   */
  exit?(code: number, ran: boolean): never;
}

const VERBS: readonly Verb[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];
// Which variables each verb needs (spec 1.1.0 "Parameters", as Go skel checks them).
const NEEDS: Record<string, Verb[]> = {
  CNI_CONTAINERID: ['ADD', 'DEL', 'CHECK'],
  CNI_NETNS: ['ADD', 'CHECK'],
  CNI_IFNAME: ['ADD', 'DEL', 'CHECK'],
  CNI_PATH: ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'],
};
const KNOWN_ARGS = new Set(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);


/** Parses CNI_ARGS ("K=V;K=V"); unknown keys are an error unless IgnoreUnknown is true. */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(ERR_INVALID_ENV, `invalid CNI_ARGS pair ${JSON.stringify(pair)}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ignore = out.IgnoreUnknown;
  if (ignore !== undefined && !['1', 'true', 'True', '0', 'false', 'False'].includes(ignore)) {
    throw new CniError(ERR_INVALID_ENV, `invalid CNI_ARGS IgnoreUnknown value ${JSON.stringify(ignore)}`);
  }
  if (!(ignore === '1' || ignore === 'true' || ignore === 'True')) {
    for (const k of Object.keys(out)) {
      if (!KNOWN_ARGS.has(k)) throw new CniError(ERR_INVALID_ENV, `unknown CNI_ARGS key ${JSON.stringify(k)}`);
    }
  }
  return out;
}

/** The request for a verb from the environment and stdin; throws CniError on bad input. */
export function parseRequest(env: NodeJS.ProcessEnv, stdin: string): CniRequest {
  const verb = env.CNI_COMMAND ?? '';
  if (!(VERBS as string[]).includes(verb)) throw new CniError(ERR_INVALID_ENV, `unknown CNI_COMMAND ${JSON.stringify(verb)}`);
  const v = verb as Verb;
  const missing = Object.keys(NEEDS).filter((k) => NEEDS[k].includes(v) && !env[k]);
  if (missing.length) throw new CniError(ERR_INVALID_ENV, `required env variables [${missing.join(',')}] missing`);
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId) validateContainerId(containerId);
  const ifname = env.CNI_IFNAME ?? '';
  if (NEEDS.CNI_IFNAME.includes(v) || ifname) validateIfname(ifname);
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  const path = (env.CNI_PATH ?? '').split(':').filter(Boolean);
  const req: CniRequest = { verb: v, containerId, netns: env.CNI_NETNS ?? '', ifname, args, path, config: undefined as unknown as NetConf, stdin };
  if (v === 'VERSION') {
    let conf: any = {};
    try { conf = stdin.trim() ? JSON.parse(stdin) : {}; } catch { /* VERSION tolerates any stdin */ }
    req.config = (typeof conf === 'object' && conf) ? conf : {};
    return req;
  }
  req.config = parseConfig(stdin);
  if (v === 'CHECK' && compareVersions(req.config.cniVersion, '0.4.0') < 0) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, `config version ${req.config.cniVersion} does not allow CHECK`);
  }
  if ((v === 'STATUS' || v === 'GC') && compareVersions(req.config.cniVersion, '1.1.0') < 0) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, `config version ${req.config.cniVersion} does not allow ${v}`);
  }
  return req;
}

/** Parses and checks the network configuration; prevResult is converted to the 1.1.0 shape. */
export function parseConfig(stdin: string): NetConf {
  let raw: any;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(ERR_DECODE, 'decoding network config: invalid json', (err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniError(ERR_DECODE, 'decoding network config: not an object');
  const version = negotiateVersion(raw);
  raw.cniVersion = version;
  if (typeof raw.name !== 'string' || !CONTAINER_ID.test(raw.name)) {
    throw new CniError(ERR_INVALID_CONFIG, raw.name ? 'invalid characters in network name' : 'missing network name', String(raw.name ?? ''));
  }
  if (typeof raw.type !== 'string' || !raw.type) throw new CniError(ERR_INVALID_CONFIG, 'missing plugin type');
  if (raw.ipam !== undefined && (typeof raw.ipam !== 'object' || raw.ipam === null || Array.isArray(raw.ipam))) {
    throw new CniError(ERR_INVALID_CONFIG, 'ipam is not an object');
  }
  if (raw.runtimeConfig !== undefined && (typeof raw.runtimeConfig !== 'object' || raw.runtimeConfig === null)) {
    throw new CniError(ERR_INVALID_CONFIG, 'runtimeConfig is not an object');
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) raw.prevResult = parseResult(raw.prevResult, version);
  else delete raw.prevResult;
  return raw as NetConf;
}

function out(text: string): void {
  // With koffi loaded (every verb but VERSION): straight to libc write, no fs first-call compile.
  if (nativeFilesReady()) return writeAllFd(1, text + '\n', 'stdout');
  const buf = Buffer.from(text + '\n');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

function readStdin(): string {
  // Already read by the early IPAM start (lib/cni/early.ts), which ran before this script.
  const early = earlyStdin();
  if (early !== undefined) return early;
  try {
    return fs.readFileSync(0, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN') {
      // Non-blocking stdin (rare): read in a loop.
      const chunks: Buffer[] = [];
      const b = Buffer.alloc(65536);
      for (;;) {
        try {
          const n = fs.readSync(0, b, 0, b.length, null);
          if (n === 0) break;
          chunks.push(Buffer.from(b.subarray(0, n)));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
          if ((e as NodeJS.ErrnoException).code === 'EOF') break;
          throw e;
        }
      }
      return Buffer.concat(chunks).toString('utf8');
    }
    if (code === 'EOF' || code === 'EBADF') return '';
    throw err;
  }
}

/** Translates any thrown value to a CniError: CniError as is, datastore unavailability → 11, else 100. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error && err.name === 'UnavailableError') {
    // Only load the datastore types when such an error is actually seen.
    const { UnavailableError } = require('../datastore/types') as typeof import('../datastore/types');
    if (err instanceof UnavailableError) return new CniError(ERR_TRY_AGAIN, err.message);
  }
  return new CniError(ERR_INTERNAL, err instanceof Error ? err.message : String(err));
}

/** Runs one CNI invocation end to end and exits the process. */
export async function runPlugin(handlers: Handlers, about: string, env: NodeJS.ProcessEnv = process.env): Promise<never> {
  let version: string = CURRENT_VERSION;
  let exitCode = 0;
  let ran = false;
  try {
    if (!env.CNI_COMMAND) {
      // As Go's skel: no command means a person ran us; say what we are.
      fs.writeSync(2, `${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
      process.exit(0);
    }
    mark('run');
    const stdin = env.CNI_COMMAND === 'VERSION' ? safeRead() : readStdin();
    mark('stdin read');
    const req = parseRequest(env, stdin);
    mark('request parsed');
    if (req.verb === 'VERSION') {
      const asked = typeof req.config.cniVersion === 'string' && req.config.cniVersion ? req.config.cniVersion : CURRENT_VERSION;
      out(JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS }));
      process.exit(0);
    }
    version = req.config.cniVersion;
    ran = true;
    switch (req.verb) {
      case 'ADD': {
        const res = await handlers.add(req);
        out(JSON.stringify(resultForVersion(res, version)));
        mark('result written');
        break;
      }
      case 'DEL': await handlers.del(req); break;
      case 'CHECK': await handlers.check(req); break;
      case 'STATUS': if (handlers.status) await handlers.status(req); break;
      case 'GC': if (handlers.gc) await handlers.gc(req); break;
    }
  } catch (err) {
    const e = toCniError(err);
    exitCode = 1;
    try { require('../log').log.error(`${env.CNI_COMMAND ?? ''} failed: ${e.msg}`, { code: e.code, details: e.details }); } catch { /* ignore */ }
    out(JSON.stringify(e.toJSON(version)));
  }
  if (handlers.exit) handlers.exit(exitCode, ran);
  process.exit(exitCode);
}

let exiting = false;

/**
 * process.exit without Node's teardown (V8 platform shutdown, joining its threads, C++
 * cleanup hooks: 2–3 ms of CPU): 'exit' listeners run as process.exit would run them, then
 * libc _exit. Everything the plugin wrote went out with fs.writeSync, so nothing is lost;
 * resources left open are released by the kernel (an embedded SQLite store is crash-safe by
 * design and sees this as a process that ended after its last commit). Worth it only in a
 * process that has loaded koffi already; otherwise loading it costs more than it saves.
 */
export function fastExit(code: number): never {
  if (!exiting) {
    exiting = true;
    // As process.exit would (a listener calling process.exit must not emit 'exit' again); the
    // listeners get the code as their argument (process.exitCode is not set: its setter is one
    // more function to compile, and _exit below takes the code).
    (process as NodeJS.Process & { _exiting?: boolean })._exiting = true;
    try { process.emit('exit', code); } catch { /* the answer is already written */ }
  }
  try {
    libcFunc('void _exit(int status)')(code);
  } catch { /* fall back to the ordinary exit */ }
  process.exit(code);
}

function safeRead(): string {
  try { return readStdin(); } catch { return ''; }
}
