// IPAM by delegation (spec 1.1.0 "Delegated plugins"): run `ipam.type` from CNI_PATH with
// our environment and the same network configuration on stdin, and read its result or
// error from stdout. A plugin that refuses 1.1.0 (Debian's host-local 1.1.1 stops at
// 1.0.0) is asked once more at 1.0.0 and its answer converted back.
import { CniError, ERR_INCOMPATIBLE_VERSION, ERR_IPAM } from './errors';
import type { CniRequest, Result, Verb } from './types';
import { parseResult } from './version';
import { findInPath, startPlugin, type ExecResult } from '../native/spawn';
import { claimEarlyIpam } from './early';

export { findInPath };

/** Runs a plugin to the end; a failure to run it is an IPAM error (CNI code 999 family). */
function execPlugin(file: string, env: NodeJS.ProcessEnv, stdin: string): ExecResult {
  return ipamErrors(() => startPlugin(file, env, stdin).finish());
}

/** SpawnError (from either script of the executable) → CniError ERR_IPAM naming the plugin. */
function ipamErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error && err.name === 'SpawnError') throw new CniError(ERR_IPAM, `ipam plugin: ${err.message}`);
    throw err;
  }
}

function parseError(stdout: string, type: string, verb: Verb): CniError {
  let e: any;
  try { e = JSON.parse(stdout); } catch { /* not JSON */ }
  if (e && typeof e.code === 'number') {
    const msg = typeof e.msg === 'string' ? e.msg : 'failed';
    // Spec codes (< 100: version, try again, env...) pass through; the rest is an IPAM failure.
    const code = e.code > 0 && e.code < 100 ? e.code : ERR_IPAM;
    return new CniError(code, `ipam ${type} ${verb.toLowerCase()}: ${msg}`, typeof e.details === 'string' && e.details ? e.details : undefined);
  }
  return new CniError(ERR_IPAM, `ipam ${type} ${verb.toLowerCase()} failed`, stdout.trim().slice(0, 500) || undefined);
}

/** Runs the IPAM plugin for `verb`; returns its parsed result for ADD, undefined otherwise. */
export function delegateIpam(req: CniRequest, verb: Verb): Result | undefined {
  return startDelegateIpam(req, verb).finish();
}

/**
 * Starts the IPAM plugin for `verb` and returns at once, the plugin running alongside the
 * caller; finish() waits for it and gives what delegateIpam gives (or throws what it throws).
 * Throws right away only when the plugin cannot be found or started.
 */
export function startDelegateIpam(req: CniRequest, verb: Verb): { finish(): Result | undefined } {
  const type = req.config.ipam?.type;
  if (typeof type !== 'string' || !type) throw new CniError(ERR_IPAM, 'ipam type missing from network config');
  const env: NodeJS.ProcessEnv = {
    ...process.env, CNI_COMMAND: verb, CNI_CONTAINERID: req.containerId, CNI_NETNS: req.netns,
    CNI_IFNAME: req.ifname, CNI_PATH: req.path.join(':'),
  };
  const stdin0 = req.stdin && !req.config.cniVersions ? req.stdin : JSON.stringify(req.config);
  // An ADD may already be running: started by the executable before this code was loaded
  // (lib/cni/early.ts), for exactly this plugin type, environment (CNI_PATH included) and stdin.
  const early = verb === 'ADD' ? claimEarlyIpam(type, env, stdin0) : undefined;
  const file = early?.file ?? findInPath(type, req.path);
  if (!file) throw new CniError(ERR_IPAM, `ipam plugin ${type} not found in CNI_PATH`, req.path.join(':'));
  const running = early?.running ?? ipamErrors(() => startPlugin(file, env, stdin0));
  return {
    finish: () => {
      let stdin = stdin0;
      let r = ipamErrors(() => running.finish());
      if (r.status !== 0) {
        let err = parseError(r.stdout, type, verb);
        if (err.code === ERR_INCOMPATIBLE_VERSION && req.config.cniVersion === '1.1.0') {
          const conf = JSON.parse(stdin);
          conf.cniVersion = '1.0.0';
          if (conf.prevResult) conf.prevResult.cniVersion = '1.0.0';
          stdin = JSON.stringify(conf);
          r = execPlugin(file, env, stdin);
          if (r.status !== 0) err = parseError(r.stdout, type, verb);
        }
        if (r.status !== 0) throw err;
      }
      if (verb !== 'ADD') return undefined;
      let raw: unknown;
      try { raw = JSON.parse(r.stdout); } catch { throw new CniError(ERR_IPAM, `ipam ${type} add: result is not json`); }
      return parseResult(raw, req.config.cniVersion);
    },
  };
}

/** True when the plugin's VERSION answer lists `version`. */
export function pluginSupports(file: string, version: string): boolean {
  try {
    const r = execPlugin(file, { ...process.env, CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: version }));
    const v = JSON.parse(r.stdout);
    return r.status === 0 && Array.isArray(v.supportedVersions) && v.supportedVersions.includes(version);
  } catch {
    return false;
  }
}
