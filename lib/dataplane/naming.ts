// Names of the host side of a pod's veth: "bri" + 11 hex chars of sha1("<namespace>.<pod>"),
// so a re-created sandbox of the same pod gets the same name (Calico's "cali" scheme).
import { createHash } from 'node:crypto';

export const HOST_VETH_PREFIX = 'bri';

/** Host-side veth name for a pod (or for a bare container when there is no pod). */
export function hostVethName(opts: { namespace?: string; pod?: string; containerId: string; ifname?: string }): string {
  let key = opts.namespace && opts.pod ? `${opts.namespace}.${opts.pod}` : opts.containerId;
  // A second interface of the same pod (another network) must not collide with eth0's.
  if (opts.ifname && opts.ifname !== 'eth0') key += `.${opts.ifname}`;
  return HOST_VETH_PREFIX + createHash('sha1').update(key).digest('hex').slice(0, 11);
}
