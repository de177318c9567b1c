// The IPIP path: routes `<block> via <node ip> dev tunl0 onlink` for pools with ipipMode.
// tunl0 comes from the kernel's ipip module (it appears when the module loads); machines
// without it (like this project's CI kernel) get a reported dataplane problem, not a crash.
export const IPIP_DEVICE = 'tunl0';
/** Outer IPv4 header. */
export const IPIP_OVERHEAD = 20;

/** Index of tunl0 if the ipip module made it, else undefined. Brings it up if down. */
export function tunlIndex(sock: unknown): number | undefined {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const link = require('../netlink/link') as any;
  const dev = link.getLink(sock, IPIP_DEVICE);
  if (!dev) return undefined;
  if (!dev.up) { try { link.setLinkUp(sock, dev.index); } catch { /* reported by route errors */ } }
  return dev.index;
}

/** The route to a remote block over IPIP (the kernel route the programmer installs). */
export function ipipRoute(block: string, nodeIp: string, tunl: number): { family: 4; dst: string; gateway: string; oif: number; onlink: true } {
  return { family: 4, dst: block, gateway: nodeIp, oif: tunl, onlink: true };
}
