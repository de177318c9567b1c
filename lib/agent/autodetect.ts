// The node's BGP address: given (--node-ip), or autodetected in the agent's namespace by a rule
// in Calico's spelling: `first-found` (the interface holding the default route, else the first
// up interface with a global address), `interface=REGEX`, `can-reach=IP` (the source address
// the kernel would use towards IP). Returns "a/len" with the subnet's length.
import { tryParseIp } from '../ip';

export interface Detected { cidr: string; index: number }

export class AutodetectError extends Error { override name = 'AutodetectError'; }

const OUR_LINKS = /^(lo|vxlan\.brindle|tunl0|bri[0-9a-f]+|cali.*|docker.*|cni.*|veth.*|kube-ipvs.*)$/;

/** Detects this node's address of `family` by `rule` (default first-found). */
export function detectAddress(sock: unknown, family: 4 | 6, rule = 'first-found'): Detected | undefined {
  /* eslint-disable @typescript-eslint/no-var-requires */
  const link = require('../netlink/link') as any;
  const addr = require('../netlink/addr') as any;
  const route = require('../netlink/route') as any;
  const global = (index?: number) => (addr.listAddrs(sock, { family, ...(index !== undefined ? { index } : {}) }) as any[])
    .filter((a) => (a.scope === undefined || a.scope === 0 || a.scope === 'universe') && !(family === 6 && String(a.address).startsWith('fe80')));
  const pick = (index: number): Detected | undefined => {
    const a = global(index)[0];
    return a ? { cidr: `${a.address}/${a.prefixLen}`, index } : undefined;
  };
  if (rule.startsWith('interface=')) {
    const re = new RegExp(`^(?:${rule.slice('interface='.length)})$`);
    for (const l of link.listLinks(sock) as any[]) {
      if (!re.test(l.name)) continue;
      const d = pick(l.index);
      if (d) return d;
    }
    return undefined;
  }
  if (rule.startsWith('can-reach=')) {
    const target = rule.slice('can-reach='.length);
    if (!tryParseIp(target)) throw new AutodetectError(`autodetect rule ${rule}: not an address`);
    const r = route.getRoute(sock, target);
    if (!r?.oif) return undefined;
    const addrs = global(r.oif);
    const a = (r.src && addrs.find((x) => x.address === r.src)) || addrs[0];
    return a ? { cidr: `${a.address}/${a.prefixLen}`, index: r.oif } : undefined;
  }
  if (rule !== 'first-found') throw new AutodetectError(`autodetect rule ${rule}: unknown (first-found, interface=REGEX, can-reach=IP)`);
  const def = (route.listRoutes(sock, { family, table: 254 }) as any[]).find((r) => r.dst === (family === 4 ? '0.0.0.0/0' : '::/0'));
  const oif = def?.oif ?? def?.multipath?.[0]?.oif;
  if (oif !== undefined) { const d = pick(oif); if (d) return d; }
  for (const l of link.listLinks(sock) as any[]) {
    if (OUR_LINKS.test(l.name) || l.up === false) continue;
    const d = pick(l.index);
    if (d) return d;
  }
  return undefined;
}

/** The interface index holding `address` (the uplink), if any. */
export function linkOfAddress(sock: unknown, address: string): number | undefined {
  const addr = require('../netlink/addr') as any;
  const fam = tryParseIp(address)?.family;
  return (addr.listAddrs(sock, { family: fam }) as any[]).find((a) => a.address === address)?.index;
}
