// The early start of a delegated IPAM plugin: for an ADD of the `brindle` plugin, the single
// executable runs this (a script of its own, plugins/early.ts) before it compiles the plugin,
// so that host-local (or whichever `ipam.type`) works while this process loads the rest; the
// plugin then claims the running process instead of starting one (lib/cni/delegate.ts).
//
// It starts the IPAM plugin only when the request plainly is an ADD the plugin will delegate
// with these very inputs; any doubt and it does nothing (the plugin starts it as before). A
// process nobody claims (the plugin refused the request, or returned an existing attachment)
// is waited for at exit, and what it allocated is released: nothing is left behind.
import fs = require('node:fs');
import { attachmentPath } from './attachments';
import { findInPath, startPlugin, type Running } from '../native/spawn';
import { exists } from '../native/files';
import { validateContainerId, validateIfname } from './validate';
import { SUPPORTED_VERSIONS } from './version';

const SLOT = Symbol.for('brindle.earlyIpam');
const STDIN = Symbol.for('brindle.stdin');
const OWN_IPAM = 'brindle-ipam';

interface Early { type: string; file: string; env: NodeJS.ProcessEnv; stdin: string; running: Running; claimed: boolean }
type Slots = { [SLOT]?: Early; [STDIN]?: string };
const g = globalThis as Slots;

/** Stdin as this process received it, when the executable's loader or the early start read it; undefined otherwise. */
export function earlyStdin(): string | undefined { return g[STDIN]; }

/** Starts the delegated IPAM plugin of a `brindle` ADD, when the request is plain enough to be sure. */
export function startEarlyIpam(env: NodeJS.ProcessEnv = process.env, readStdin = (): string => g[STDIN] ?? fs.readFileSync(0, 'utf8')): void {
  if (env.CNI_COMMAND !== 'ADD' || (g[SLOT] && !g[SLOT].claimed)) return;
  try {
    const stdin = readStdin();
    g[STDIN] = stdin;
    const conf = JSON.parse(stdin);
    const type = conf?.ipam?.type;
    const cid = env.CNI_CONTAINERID ?? '', ifname = env.CNI_IFNAME ?? '', netns = env.CNI_NETNS ?? '';
    if (typeof conf !== 'object' || conf === null || conf.type !== 'brindle' || typeof conf.name !== 'string' || !conf.name
      || !(SUPPORTED_VERSIONS as readonly string[]).includes(conf.cniVersion) || conf.cniVersions !== undefined || conf.prevResult !== undefined
      || typeof type !== 'string' || type === OWN_IPAM || type.includes('/') || !netns) return;
    // The plugin's own rules (it would refuse the request before delegating).
    validateContainerId(cid);
    validateIfname(ifname);
    const path = (env.CNI_PATH ?? '').split(':').filter(Boolean);
    // A repeated ADD returns the attachment it has: no second allocation to start.
    if (exists(attachmentPath(conf.name, cid, ifname, env))) return;
    const file = findInPath(type, path);
    if (!file) return;
    // The environment the plugin would give it (lib/cni/delegate.ts startDelegateIpam).
    const ipamEnv: NodeJS.ProcessEnv = { ...env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: netns, CNI_IFNAME: ifname, CNI_PATH: path.join(':') };
    const running = startPlugin(file, ipamEnv, stdin);
    g[SLOT] = { type, file, env: ipamEnv, stdin, running, claimed: false };
    process.on('exit', releaseUnclaimedEarlyIpam);
  } catch { /* the plugin starts its IPAM itself */ }
}

/**
 * The running early ADD and the plugin file it runs, when it was started for exactly this
 * IPAM type, environment (CNI_PATH included, so the same file) and stdin; claimed once. One
 * started for anything else is waited for and released here, so that the caller can start its own.
 */
export function claimEarlyIpam(type: string, env: NodeJS.ProcessEnv, stdin: string): { file: string; running: Running } | undefined {
  const e = g[SLOT];
  if (!e || e.claimed) return undefined;
  e.claimed = true;
  if (e.type === type && e.stdin === stdin && sameEnv(e.env, env)) return { file: e.file, running: e.running };
  release(e);
  return undefined;
}

function sameEnv(a: NodeJS.ProcessEnv, b: NodeJS.ProcessEnv): boolean {
  const ka = Object.keys(a).filter((k) => a[k] !== undefined), kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => a[k] === b[k]);
}

/** At exit: an early ADD the plugin never claimed is waited for and released. */
export function releaseUnclaimedEarlyIpam(): void {
  const e = g[SLOT];
  if (e && !e.claimed) { e.claimed = true; release(e); }
}

/** Waits for an early ADD; when it allocated (exit 0), runs the same plugin's DEL to free it. */
function release(e: Early): void {
  try {
    if (e.running.finish().status !== 0) return;
    startPlugin(e.file, { ...e.env, CNI_COMMAND: 'DEL' }, e.stdin).finish();
  } catch { /* nothing more can be done from here */ }
}
