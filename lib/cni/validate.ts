// The spec's rules for CNI_CONTAINERID and CNI_IFNAME, in a module of their own: the plugin's
// request parsing (lib/cni/skel.ts) and the early IPAM start (lib/cni/early.ts, a separate
// small script) apply the same ones.
import { CniError, ERR_INVALID_ENV } from './errors';

/** The spec's pattern for container IDs (skel also holds network names to it). */
export const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Validates a container ID per the spec (^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$). */
export function validateContainerId(id: string): void {
  if (!CONTAINER_ID.test(id)) throw new CniError(ERR_INVALID_ENV, 'invalid characters in container id', id);
}

/** UTF-8 byte length, counted by hand (Buffer.byteLength's first call costs more than this). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; } // a pair
    else n += 3; // the rest of the BMP, and a lone surrogate (written as U+FFFD)
  }
  return n;
}

/** Validates an interface name as the kernel and libcni do. */
export function validateIfname(name: string): void {
  let why = '';
  if (name.length === 0) why = 'interface name is empty';
  else if (utf8Length(name) > 15) why = 'interface name is longer than 15 characters';
  else if (name === '.' || name === '..') why = 'interface name is . or ..';
  else if (/[/:\s]/.test(name)) why = 'interface name contains / or : or whitespace';
  if (why) throw new CniError(ERR_INVALID_ENV, why, name);
}
