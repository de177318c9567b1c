// Attachment records: what ADD built for one container+interface on one network, kept as
// $BRINDLE_STATE_DIR/attachments/<network>/<containerId>-<ifname>.json (written atomically)
// so that DEL, GC and a repeated ADD know the veth, the addresses and the result.
import fs = require('node:fs');
import { stateDir } from '../datastore/settings';
import { FileError, readTextFile, writeFileAtomic } from '../native/files';
import type { Result } from './types';

export interface Attachment {
  network: string;
  containerId: string;
  ifname: string;
  netns: string;
  hostIfname: string;
  /** The host veth's ifindex when created: a later pod reusing the name is not ours to delete. */
  hostIndex: number;
  podMac: string;
  mtu: number;
  ips: string[];
  ipamType: string;
  podNamespace?: string;
  podName?: string;
  /** The ADD result in the 1.1.0 shape. */
  result: Result;
  created: string;
}

function dir(network: string, env?: NodeJS.ProcessEnv): string { return `${stateDir(env)}/attachments/${network}`; }
function file(network: string, containerId: string, ifname: string): string { return attachmentPath(network, containerId, ifname); }

/** Where the record of one attachment lives. */
export function attachmentPath(network: string, containerId: string, ifname: string, env?: NodeJS.ProcessEnv): string {
  return `${dir(network, env)}/${containerId}-${ifname}.json`;
}

// Records are read and written through libc (lib/native/files.ts): the plugin verbs that use
// them have koffi loaded for netlink anyway, and Node's fs functions cost a compile each.

/** Reads a record; undefined when absent or unreadable. */
export function readAttachment(network: string, containerId: string, ifname: string): Attachment | undefined {
  try {
    // The usual answer (a first ADD) is ENOENT: undefined without a thrown error.
    const text = readTextFile(file(network, containerId, ifname));
    return text === undefined ? undefined : JSON.parse(text) as Attachment;
  } catch {
    return undefined;
  }
}

/** Writes a record atomically (temp file + rename). */
export function writeAttachment(a: Attachment): void {
  const f = file(a.network, a.containerId, a.ifname);
  const data = JSON.stringify(a);
  try {
    writeFileAtomic(f, data, 0o600);
  } catch (err) {
    // The network's directory is made once, by its first ADD on this node.
    if (!(err instanceof FileError && err.errno === 2 && err.op === 'open')) throw err;
    fs.mkdirSync(dir(a.network), { recursive: true, mode: 0o700 });
    writeFileAtomic(f, data, 0o600);
  }
}

/** Removes a record; absent is fine. */
export function removeAttachment(network: string, containerId: string, ifname: string): void {
  try { fs.unlinkSync(file(network, containerId, ifname)); } catch { /* gone */ }
}

/** Every record of a network. */
export function listAttachments(network: string): Attachment[] {
  let names: string[];
  try { names = fs.readdirSync(dir(network)); } catch { return []; }
  const out: Attachment[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try { out.push(JSON.parse(fs.readFileSync(`${dir(network)}/${n}`, 'utf8')) as Attachment); } catch { /* skip a torn file */ }
  }
  return out;
}
