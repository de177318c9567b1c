// The pod wiring of lib/dataplane/pod.ts used directly, in namespaces made here: the veth pair
// from the kernel's echo (and the lookups a kernel without the echo needs) with its host side
// up before any address is known (IPv4 settings in the link-up message, the ARP proxy delay
// through RTM_SETNEIGHTBL, IPv6's accept_ra/accept_dad through /proc first), then the pod side
// and the host routes in two netlink round trips, and what a failure names.
import t from 'tap';
import { Scope, ipJson, nsExec } from '../helpers/netns';
import { nodeNamespace } from '../helpers/cni';
import { NetlinkSocket } from '../../lib/netlink/socket';
import { netnsPath, withNetns } from '../../lib/netlink/netns';
import { NLM_F_ECHO } from '../../lib/netlink/constants';
import { addAddr } from '../../lib/netlink/addr';
import { CniError } from '../../lib/cni/errors';
import * as dp from '../../lib/dataplane/pod';

function setup(t: { teardown(fn: () => unknown): void }) {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const node = nodeNamespace(scope), pod = scope.netns('dpp');
  const nlHost = withNetns(netnsPath(node), () => NetlinkSocket.open());
  const nlPod = withNetns(netnsPath(pod), () => NetlinkSocket.open());
  t.teardown(() => { nlHost.close(); nlPod.close(); });
  const spec = { netns: netnsPath(pod), ifname: 'eth0', hostIfname: 'brtest0', mtu: 1440 };
  // As the plugin runs: in the node's namespace (host sysctls resolve against the caller's).
  const inNode = <T>(fn: () => T): T => withNetns(netnsPath(node), fn);
  return { node, pod, nlHost, nlPod, spec, inNode };
}

const sysctl = (ns: string, key: string) => nsExec(ns, 'cat', [`/proc/sys/net/${key}`]).trim();

t.test('veth from the echo: both indexes and the chosen pod MAC are what the kernel has', async (t) => {
  const { node, pod, nlHost, nlPod, spec, inNode } = setup(t);
  const links = inNode(() => dp.createPodLinks(nlHost, nlPod, spec));
  const [h] = ipJson(node, ['link', 'show', 'brtest0']);
  const [p] = ipJson(pod, ['link', 'show', 'eth0']);
  t.match(links.host, { index: h.ifindex, name: 'brtest0', mac: dp.HOST_MAC, mtu: 1440 });
  t.same(links.pod, { index: p.ifindex, name: 'eth0', mtu: 1440, mac: p.address, up: false, flags: 0 });
  t.match(p.address, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const first = parseInt(p.address.slice(0, 2), 16);
  t.equal(first & 1, 0, 'unicast');
  t.equal(first & 2, 2, 'locally administered');
  t.not(dp.randomMac(), dp.randomMac(), 'a fresh MAC each time');
  // The host side is up with its settings before any address is known (the IPAM works meanwhile).
  t.ok(h.flags.includes('UP'), 'host side up');
  t.same([sysctl(node, 'ipv4/conf/brtest0/proxy_arp'), sysctl(node, 'ipv4/conf/brtest0/forwarding'), sysctl(node, 'ipv4/neigh/brtest0/proxy_delay')], ['1', '1', '0']);
  t.same([sysctl(node, 'ipv6/conf/brtest0/accept_ra'), sysctl(node, 'ipv6/conf/brtest0/accept_dad')], ['0', '0'], 'IPv6 set before up');
  t.notOk(ipJson(node, ['-6', 'addr', 'show', 'brtest0'])[0]?.addr_info?.some((a: any) => a.tentative), 'its link-local not tentative');
});

t.test('a kernel that does not echo: both ends looked up instead', async (t) => {
  const { node, pod, nlHost, nlPod, spec, inNode } = setup(t);
  // As on Linux < 6.2: the flag is ignored, no RTM_NEWLINK comes back before the ACK.
  const real = nlHost.requestEach.bind(nlHost);
  let echoAsked = 0;
  nlHost.requestEach = (op, type, flags, body, fn) => {
    if (flags & NLM_F_ECHO) echoAsked++;
    return real(op, type, flags & ~NLM_F_ECHO, body, fn);
  };
  const links = inNode(() => dp.createPodLinks(nlHost, nlPod, spec));
  t.equal(echoAsked, 1);
  t.equal(links.host.index, ipJson(node, ['link', 'show', 'brtest0'])[0].ifindex);
  const [p] = ipJson(pod, ['link', 'show', 'eth0']);
  t.match(links.pod, { index: p.ifindex, mac: p.address, name: 'eth0', mtu: 1440 });
});

t.test('configurePod, IPv4: settings, addresses and routes, and CHECK agrees', async (t) => {
  const { node, pod, nlHost, nlPod, spec, inNode } = setup(t);
  const links = inNode(() => dp.createPodLinks(nlHost, nlPod, spec));
  const w = inNode(() => dp.configurePod(nlHost, nlPod, links, { ...spec, ips: ['10.244.0.5'] }));
  t.same(w, { hostIf: { name: 'brtest0', mac: dp.HOST_MAC, index: links.host.index }, podIf: { name: 'eth0', mac: links.pod.mac, index: links.pod.index, mtu: 1440 } });
  t.same([sysctl(node, 'ipv4/conf/brtest0/proxy_arp'), sysctl(node, 'ipv4/conf/brtest0/forwarding'), sysctl(node, 'ipv4/neigh/brtest0/proxy_delay')], ['1', '1', '0']);
  t.ok(ipJson(node, ['link', 'show', 'brtest0'])[0].flags.includes('UP'), 'host side up');
  t.ok(ipJson(pod, ['link', 'show', 'eth0'])[0].flags.includes('UP'), 'pod side up');
  t.match(ipJson(pod, ['-4', 'addr', 'show', 'eth0'])[0].addr_info, [{ local: '10.244.0.5', prefixlen: 32 }]);
  t.match(ipJson(pod, ['-4', 'route', 'show']), [{ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' }, { dst: '169.254.1.1', dev: 'eth0', scope: 'link' }]);
  t.match(ipJson(node, ['-4', 'route', 'show', '10.244.0.5']), [{ dst: '10.244.0.5', dev: 'brtest0', scope: 'link' }]);
  t.doesNotThrow(() => inNode(() => dp.checkPod(nlHost, nlPod, { ...spec, ips: ['10.244.0.5'], podMac: links.pod.mac })), 'CHECK passes');
  // The ping proves the wiring end to end (proxy ARP answers for 169.254.1.1 at once).
  t.match(nsExec(pod, 'ping', ['-c', '1', '-W', '2', '198.18.0.1']), /1 received/, 'pod reaches the node');
});

t.test('configurePod, dual-stack: IPv6 settings through /proc, /128 with no DAD, both routes', async (t) => {
  const { node, pod, nlHost, nlPod, spec, inNode } = setup(t);
  const links = inNode(() => dp.createPodLinks(nlHost, nlPod, spec));
  const ips = ['10.244.0.6', 'fd00:10::6'];
  inNode(() => dp.configurePod(nlHost, nlPod, links, { ...spec, ips }));
  t.same(['accept_ra', 'proxy_ndp', 'forwarding', 'accept_dad'].map((k) => sysctl(node, `ipv6/conf/brtest0/${k}`)), ['0', '1', '1', '0']);
  t.same(['accept_dad', 'accept_ra'].map((k) => sysctl(pod, `ipv6/conf/eth0/${k}`)), ['0', '0']);
  const a6 = ipJson(pod, ['-6', 'addr', 'show', 'eth0'])[0].addr_info.find((a: any) => a.local === 'fd00:10::6');
  t.match(a6, { prefixlen: 128 });
  t.notOk(a6.tentative, 'not tentative');
  t.match(ipJson(pod, ['-6', 'route', 'show', 'default']), [{ dst: 'default', gateway: dp.GATEWAY6, dev: 'eth0' }]);
  t.match(ipJson(node, ['-6', 'route', 'show', 'fd00:10::6']), [{ dst: 'fd00:10::6', dev: 'brtest0' }]);
  t.doesNotThrow(() => inNode(() => dp.checkPod(nlHost, nlPod, { ...spec, ips, podMac: links.pod.mac })));
  t.match(nsExec(pod, 'ping', ['-6', '-c', '1', '-W', '2', 'fd00:198:18::1']), /1 received/, 'pod reaches the node over IPv6');
});

t.test('a failing step is a 101 naming it', async (t) => {
  const { nlHost, nlPod, spec, inNode } = setup(t);
  const links = inNode(() => dp.createPodLinks(nlHost, nlPod, spec));
  addAddr(nlPod, links.pod.index, '10.244.0.7/32');
  const err = (() => { try { inNode(() => dp.configurePod(nlHost, nlPod, links, { ...spec, ips: ['10.244.0.7'] })); } catch (e) { return e; } })();
  t.ok(err instanceof CniError, 'a CniError');
  t.match(err, { code: 101, msg: /^add address 10\.244\.0\.7\/32 dev eth0: .*(exists|EEXIST)/i });
});
