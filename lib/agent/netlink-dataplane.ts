// The agent's Dataplane over lib/netlink in the agent's own network namespace: the route table,
// address autodetection, next-hop resolution, the VXLAN device and VTEP entries, tunl0, nft.
/* eslint-disable @typescript-eslint/no-var-requires */
import type { Dataplane } from './agent';
import { netlinkRouteTable } from '../dataplane/routes';

/** Opens a NETLINK_ROUTE socket in the current namespace and builds the Dataplane on it. */
export function netlinkDataplane(): Dataplane {
  const { NetlinkSocket } = require('../netlink/socket') as any;
  const nl = NetlinkSocket.open();
  const route = require('../netlink/route') as any;
  const link = require('../netlink/link') as any;
  const addr = require('../netlink/addr') as any;
  const vx = require('../dataplane/vxlan') as typeof import('../dataplane/vxlan');
  const { detectAddress } = require('./autodetect') as typeof import('./autodetect');
  const addressOf = (a: string) => {
    const hit = (addr.listAddrs(nl, {}) as any[]).find((x) => x.address === a);
    return hit ? { cidr: `${hit.address}/${hit.prefixLen}`, index: hit.index as number } : undefined;
  };
  return {
    routeTable: netlinkRouteTable(nl),
    detect: (family, rule) => detectAddress(nl, family, rule),
    linkOfAddress: (a) => addressOf(a)?.index,
    addressOf,
    resolve: (nh) => {
      const r = route.getRoute(nl, nh);
      if (!r) return undefined;
      return { gateway: r.gateway, oif: r.oif };
    },
    linkMtu: (index) => link.getLinkByIndex(nl, index)?.mtu,
    ensureVxlan: (o) => vx.ensureVxlanDevice(nl, o),
    removeVxlan: () => vx.removeVxlanDevice(nl),
    syncVteps: (index, peers) => vx.syncVtepPeers(nl, index, peers).errors,
    tunlIndex: () => (require('../dataplane/ipip') as typeof import('../dataplane/ipip')).tunlIndex(nl),
    applyNat: (pools) => (require('../dataplane/nat') as typeof import('../dataplane/nat')).applyNat(pools),
    enableForwarding: () => {
      const { setSysctl } = require('../netlink/sysctl') as any;
      setSysctl('net/ipv4/ip_forward', '1');
      try { setSysctl('net/ipv6/conf/all/forwarding', '1'); } catch { /* no ipv6 */ }
    },
  };
}
