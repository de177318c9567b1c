// Links, addresses, routes, namespaces and sysctls against the real kernel, each test in
// throwaway namespaces, checked with `ip -j -n <ns> ...`.
import t from 'tap';
import * as fs from 'node:fs';
import { Scope, ipJson, nsExec, sh } from '../helpers/netns';
import { NetlinkSocket } from '../../lib/netlink/socket';
import { NetlinkError } from '../../lib/netlink/errors';
import { closeFd, netnsPath, openNetns, withNetns } from '../../lib/netlink/netns';
import {
  addBridge, addVeth, addVxlan, delLink, getLink, getLinkByIndex, listLinks, renameLink, setLinkDown, setLinkMac,
  setLinkMaster, setLinkMtu, setLinkUp,
} from '../../lib/netlink/link';
import { addAddr, delAddr, encodeAddrRequest, ensureAddr, listAddrs } from '../../lib/netlink/addr';
import { encodeLinkUpRequest } from '../../lib/netlink/link';
import { encodeNeighParmsRequest, setNeighParms } from '../../lib/netlink/neigh';
import { encodeRouteRequest } from '../../lib/netlink/route';
import { addRoute, delRoute, ensureRoute, getRoute, listRoutes, replaceRoute } from '../../lib/netlink/route';
import { getSysctl, setSysctl } from '../../lib/netlink/sysctl';
import {
  IFA_F_NODAD, NLM_F_CREATE, NLM_F_EXCL, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_SETNEIGHTBL, RTPROT_BRINDLE,
} from '../../lib/netlink/constants';

const nsInode = () => fs.statSync('/proc/thread-self/ns/net').ino;

function setup(t: { teardown(fn: () => unknown): void }, n = 1): { scope: Scope; ns: string[]; nl: NetlinkSocket } {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ns = Array.from({ length: n }, () => scope.netns('nl'));
  const nl = withNetns(netnsPath(ns[0]), () => NetlinkSocket.open());
  t.teardown(() => nl.close());
  return { scope, ns, nl };
}

function errOf(fn: () => unknown): NetlinkError {
  try { fn(); } catch (err) { if (err instanceof NetlinkError) return err; throw err; }
  throw new Error('expected a NetlinkError');
}

/** A veth `host0` in ns with its peer elsewhere (or a dummy-free second end in the same ns). */
function veth(nl: NetlinkSocket, name = 'host0'): number {
  addVeth(nl, { name, peerName: `${name}p` });
  const l = getLink(nl, name)!;
  setLinkUp(nl, l.index);
  setLinkUp(nl, getLink(nl, `${name}p`)!.index);
  return l.index;
}

t.test('withNetns switches the thread and always switches back', async (t) => {
  const { ns } = setup(t, 2);
  const before = nsInode();
  const inside = withNetns(netnsPath(ns[0]), () => nsInode());
  t.not(inside, before, 'inside another namespace');
  t.equal(nsInode(), before, 'back after return');
  t.throws(() => withNetns(netnsPath(ns[0]), () => { throw new RangeError('boom'); }), RangeError);
  t.equal(nsInode(), before, 'back after a throw');
  const nested = withNetns(netnsPath(ns[0]), () => [nsInode(), withNetns(netnsPath(ns[1]), () => nsInode()), nsInode()]);
  t.equal(nested[0], inside);
  t.equal(nested[2], inside, 'nested section returns to the enclosing namespace');
  t.throws(() => withNetns(netnsPath(ns[0]), () => Promise.resolve(1)), TypeError, 'async callbacks refused');
  t.equal(nsInode(), before);
  const gone = errOf(() => withNetns(netnsPath('bt-no-such-ns'), () => 1));
  t.ok(gone.notFound, 'missing namespace is notFound');
  t.equal(netnsPath('x'), '/var/run/netns/x');
  t.equal(netnsPath('/proc/1/ns/net'), '/proc/1/ns/net');
});

t.test('veth with the peer created in a second namespace', async (t) => {
  const { ns, nl } = setup(t, 2);
  const fd = openNetns(netnsPath(ns[1]));
  let echoed;
  try {
    echoed = addVeth(nl, { name: 'host0', peerName: 'eth0', peerNetnsFd: fd, mtu: 1450, mac: 'ee:ee:ee:ee:ee:ee', peerMac: '02:00:0a:f4:01:05' });
  } finally {
    closeFd(fd);
  }
  const [host] = ipJson(ns[0], ['link', 'show', 'host0']);
  t.match(host, { ifname: 'host0', mtu: 1450, address: 'ee:ee:ee:ee:ee:ee', link_type: 'ether' });
  const [pod] = ipJson(ns[1], ['link', 'show', 'eth0']);
  t.match(pod, { ifname: 'eth0', mtu: 1450, address: '02:00:0a:f4:01:05' });
  // One TX and one RX queue per end, asked for (the kernel would otherwise make one per CPU and cut back).
  t.match(ipJson(ns[0], ['-d', 'link', 'show', 'host0'])[0], { num_tx_queues: 1, num_rx_queues: 1 });
  t.match(ipJson(ns[1], ['-d', 'link', 'show', 'eth0'])[0], { num_tx_queues: 1, num_rx_queues: 1 });

  const l = getLink(nl, 'host0')!;
  t.match(l, { name: 'host0', mtu: 1450, mac: 'ee:ee:ee:ee:ee:ee', up: false, kind: 'veth', peerIndex: pod.ifindex });
  t.match(echoed, { index: l.index, name: 'host0', mtu: 1450, mac: 'ee:ee:ee:ee:ee:ee', kind: 'veth', peerIndex: pod.ifindex },
    'the kernel echoes the new link: its index and the peer index in the other namespace');
  t.same(getLinkByIndex(nl, l.index), l);
  t.equal(getLink(nl, 'nosuch0'), undefined);
  t.same(listLinks(nl).map((x) => x.name).sort(), ['host0', 'lo']);

  setLinkUp(nl, l.index);
  t.ok(ipJson(ns[0], ['link', 'show', 'host0'])[0].flags.includes('UP'), 'up');
  setLinkMtu(nl, l.index, 1400);
  setLinkMac(nl, l.index, '02:11:22:33:44:55');
  t.match(ipJson(ns[0], ['link', 'show', 'host0'])[0], { mtu: 1400, address: '02:11:22:33:44:55' });
  setLinkDown(nl, l.index);
  t.notOk(ipJson(ns[0], ['link', 'show', 'host0'])[0].flags.includes('UP'), 'down');
  renameLink(nl, l.index, 'host1');
  t.equal(getLink(nl, 'host1')?.index, l.index, 'renamed');

  const dup = withNetns(netnsPath(ns[1]), () => errOf(() => addVeth(nl, { name: 'host1', peerName: 'x0' })));
  t.ok(dup.exists, 'duplicate name is EEXIST');
  t.equal(dup.op, 'add veth host1 peer x0');

  delLink(nl, l.index);
  t.same(ipJson(ns[0], ['link', 'show']).map((x: any) => x.ifname), ['lo']);
  t.same(ipJson(ns[1], ['link', 'show']).map((x: any) => x.ifname), ['lo'], 'peer went with it');
  t.ok(errOf(() => delLink(nl, l.index)).notFound, 'deleting again is notFound');
});

t.test('bridge, master, and vxlan', async (t) => {
  const { ns, nl } = setup(t);
  addBridge(nl, { name: 'br0' });
  const br = getLink(nl, 'br0')!;
  t.equal(br.kind, 'bridge');
  const v = veth(nl, 'v0');
  setLinkMaster(nl, v, br.index);
  t.equal(ipJson(ns[0], ['link', 'show', 'v0'])[0].master, 'br0');
  t.equal(getLinkByIndex(nl, v)?.master, br.index);
  setLinkMaster(nl, v, 0);
  t.equal(ipJson(ns[0], ['link', 'show', 'v0'])[0].master, undefined, 'nomaster');

  addVxlan(nl, { name: 'vxlan.calico', vni: 4096, port: 4789, localIp: '198.18.0.1', learning: false, mtu: 1410, mac: '66:00:00:00:00:01' });
  const [vx] = ipJson(ns[0], ['-d', 'link', 'show', 'vxlan.calico']);
  t.match(vx, { mtu: 1410, address: '66:00:00:00:00:01', linkinfo: { info_kind: 'vxlan', info_data: { id: 4096, local: '198.18.0.1', port: 4789, learning: false } } });
  t.equal(getLink(nl, 'vxlan.calico')?.kind, 'vxlan');
});

t.test('addresses v4 and v6', async (t) => {
  const { ns, nl } = setup(t);
  const idx = veth(nl);
  addAddr(nl, idx, '10.244.1.5/32');
  addAddr(nl, idx, '169.254.1.1/32', { scope: 'link' });
  addAddr(nl, idx, 'fd00:10:244::5/128', { nodad: true, noprefixroute: true });
  ensureAddr(nl, idx, '10.244.1.5/32');
  t.ok(errOf(() => addAddr(nl, idx, '10.244.1.5/32')).exists, 'duplicate is EEXIST');

  const shown = ipJson(ns[0], ['addr', 'show', 'dev', 'host0'])[0].addr_info;
  t.match(shown.find((a: any) => a.local === '10.244.1.5'), { family: 'inet', prefixlen: 32, scope: 'global' });
  t.match(shown.find((a: any) => a.local === '169.254.1.1'), { scope: 'link' });
  const v6 = shown.find((a: any) => a.local === 'fd00:10:244::5');
  t.match(v6, { family: 'inet6', prefixlen: 128, nodad: true, noprefixroute: true });
  t.notOk(v6.tentative, 'nodad: usable at once');

  const mine = listAddrs(nl, { index: idx });
  t.same(mine.filter((a) => a.family === 4).map((a) => `${a.address}/${a.prefixLen}`).sort(), ['10.244.1.5/32', '169.254.1.1/32']);
  const a6 = listAddrs(nl, { index: idx, family: 6 }).find((a) => a.address === 'fd00:10:244::5')!;
  t.ok(a6.flags & IFA_F_NODAD);
  t.ok(listAddrs(nl, { family: 6 }).every((a) => a.family === 6));

  delAddr(nl, idx, '10.244.1.5/32');
  t.notOk(listAddrs(nl, { index: idx, family: 4 }).some((a) => a.address === '10.244.1.5'));
  t.ok(errOf(() => delAddr(nl, idx, '10.244.1.5/32')).notFound, 'deleting again is notFound');
});

t.test('routes: link scope, onlink, blackhole, multipath, protocol, table, replace, delete', async (t) => {
  const { ns, nl } = setup(t);
  const a = veth(nl, 'a0');
  const b = veth(nl, 'b0');
  addAddr(nl, a, '198.18.0.1/24');
  const P = RTPROT_BRINDLE;

  addRoute(nl, { family: 4, dst: '10.244.1.5/32', oif: a, protocol: P });
  addRoute(nl, { family: 4, dst: '10.244.2.0/26', gateway: '169.254.1.1', oif: b, onlink: true, protocol: P });
  addRoute(nl, { family: 4, dst: '10.244.3.0/26', type: 'blackhole', protocol: P });
  addRoute(nl, { family: 4, dst: '10.245.0.0/16', protocol: P, multipath: [{ gateway: '198.18.0.2', oif: a }, { gateway: '198.18.0.3', oif: a, weight: 3 }] });
  addRoute(nl, { family: 4, dst: '10.246.0.0/16', gateway: '198.18.0.9', protocol: P, table: 1000, priority: 20 });
  addRoute(nl, { family: 6, dst: 'fd00:10:244:1::/122', type: 'blackhole', protocol: P });
  ensureRoute(nl, { family: 4, dst: '10.244.1.5/32', oif: a, protocol: P });
  t.ok(errOf(() => addRoute(nl, { family: 4, dst: '10.244.1.5/32', oif: a, protocol: P })).exists, 'duplicate is EEXIST');

  const shown = ipJson(ns[0], ['route', 'show', 'proto', String(P)]);
  t.match(shown.find((r: any) => r.dst === '10.244.1.5'), { dev: 'a0', scope: 'link' });
  t.match(shown.find((r: any) => r.dst === '10.244.2.0/26'), { gateway: '169.254.1.1', dev: 'b0', flags: ['onlink'] });
  t.match(shown.find((r: any) => r.dst === '10.244.3.0/26'), { type: 'blackhole' });
  const mp = shown.find((r: any) => r.dst === '10.245.0.0/16');
  t.match(mp.nexthops, [{ gateway: '198.18.0.2', dev: 'a0', weight: 1 }, { gateway: '198.18.0.3', dev: 'a0', weight: 3 }]);
  t.match(ipJson(ns[0], ['route', 'show', 'table', '1000']), [{ dst: '10.246.0.0/16', gateway: '198.18.0.9', metric: 20 }]);
  t.match(ipJson(ns[0], ['-6', 'route', 'show', 'proto', String(P)]), [{ dst: 'fd00:10:244:1::/122', type: 'blackhole' }]);

  const listed = listRoutes(nl, { protocol: P });
  t.same(listed.map((r) => r.dst).sort(), ['10.244.1.5/32', '10.244.2.0/26', '10.244.3.0/26', '10.245.0.0/16', 'fd00:10:244:1::/122']);
  t.match(listed.find((r) => r.dst === '10.244.2.0/26'), { gateway: '169.254.1.1', oif: b, onlink: true, scope: 'universe', type: 'unicast', protocol: P, table: 254 });
  t.match(listed.find((r) => r.dst === '10.245.0.0/16')?.multipath, [{ gateway: '198.18.0.2', oif: a, weight: 1 }, { gateway: '198.18.0.3', oif: a, weight: 3 }]);
  t.same(listRoutes(nl, { table: 1000 }).map((r) => [r.dst, r.table, r.priority]), [['10.246.0.0/16', 1000, 20]]);
  t.same(listRoutes(nl, { family: 6, protocol: P }).map((r) => r.dst), ['fd00:10:244:1::/122']);
  t.same(listRoutes(nl, { family: 4, oif: b }).map((r) => r.dst), ['10.244.2.0/26']);
  t.ok(listRoutes(nl, { table: 0 }).some((r) => r.table === 255), 'table 0 lists every table');

  t.match(getRoute(nl, '10.245.1.1'), { dst: '10.245.1.1/32', oif: a });
  t.match(getRoute(nl, '10.244.1.5'), { oif: a, src: '198.18.0.1' });
  t.equal(errOf(() => getRoute(nl, '10.244.3.1')).errno, 22, 'blackhole lookup is EINVAL');
  t.match(getRoute(nl, '10.245.1.1', { fibmatch: true }), { dst: '10.245.0.0/16' }, 'fibmatch returns the matching prefix');
  t.match(getRoute(nl, '10.244.2.9', { fibmatch: true }), { dst: '10.244.2.0/26', oif: b, gateway: '169.254.1.1' });
  t.equal(errOf(() => getRoute(nl, '10.244.3.1', { fibmatch: true })).errno, 22, 'a blackhole is EINVAL with fibmatch too');

  replaceRoute(nl, { family: 4, dst: '10.244.3.0/26', gateway: '198.18.0.7', protocol: P });
  t.match(ipJson(ns[0], ['route', 'show', '10.244.3.0/26']), [{ gateway: '198.18.0.7', dev: 'a0' }]);

  delRoute(nl, { family: 4, dst: '10.244.3.0/26', protocol: P });
  delRoute(nl, { family: 4, dst: '10.246.0.0/16', table: 1000 });
  delRoute(nl, { family: 6, dst: 'fd00:10:244:1::/122' });
  t.same(ipJson(ns[0], ['route', 'show', '10.244.3.0/26']), []);
  t.same(ipJson(ns[0], ['route', 'show', 'table', '1000']), []);
  const gone = errOf(() => delRoute(nl, { family: 4, dst: '10.244.3.0/26' }));
  t.ok(gone.notFound, `deleting again is notFound (errno ${gone.errno})`);
  t.ok(errOf(() => delRoute(nl, { family: 4, dst: '10.244.1.5/32', protocol: 4 })).notFound, 'protocol must match');
  const bad = errOf(() => addRoute(nl, { family: 4, dst: '10.250.0.0/16', gateway: '203.0.113.1' }));
  t.equal(bad.errno, 101, 'unreachable gateway is ENETUNREACH');
  t.match(bad.message, /^add route 10\.250\.0\.0\/16 via 203\.0\.113\.1: network is unreachable/);
});

t.test('sysctl inside a namespace', async (t) => {
  const { ns, nl } = setup(t);
  veth(nl);
  const key = 'net/ipv4/conf/host0/proxy_arp';
  withNetns(netnsPath(ns[0]), () => {
    t.equal(getSysctl(key), '0');
    setSysctl(key, '1');
    setSysctl('net/ipv6/conf/host0/accept_dad', '0');
  });
  t.equal(nsExec(ns[0], 'cat', [`/proc/sys/${key}`]).trim(), '1');
  t.equal(nsExec(ns[0], 'sysctl', ['-n', 'net.ipv6.conf.host0.accept_dad']).trim(), '0');
  const missing = errOf(() => getSysctl(key));
  t.ok(missing.notFound, 'the root namespace has no host0');
  t.throws(() => getSysctl('net/../../etc/passwd'), TypeError);
});

t.test('IPv4 device settings with link up, and neighbour parameters, through netlink', async (t) => {
  const { ns, nl } = setup(t);
  addVeth(nl, { name: 'host0', peerName: 'host0p' });
  const l = getLink(nl, 'host0')!;
  const read = (k: string) => nsExec(ns[0], 'cat', [`/proc/sys/net/ipv4/${k}`]).trim();
  t.same([read('conf/host0/forwarding'), read('conf/host0/proxy_arp')], ['0', '0'], 'fresh link: kernel defaults');
  t.not(read('neigh/host0/proxy_delay'), '0', 'default proxy_delay is not 0');
  setLinkUp(nl, l.index, { forwarding: true, proxyArp: true });
  t.ok(ipJson(ns[0], ['link', 'show', 'host0'])[0].flags.includes('UP'), 'up');
  t.same([read('conf/host0/forwarding'), read('conf/host0/proxy_arp')], ['1', '1'], 'forwarding and proxy_arp as the sysctls show them');
  setNeighParms(nl, { family: 4, index: l.index, proxyDelayMs: 0 });
  t.equal(read('neigh/host0/proxy_delay'), '0', 'proxy_delay 0');
  setLinkUp(nl, l.index, { proxyArp: false });
  t.same([read('conf/host0/forwarding'), read('conf/host0/proxy_arp')], ['1', '0'], 'only the settings given change');
  t.ok(errOf(() => setNeighParms(nl, { family: 4, index: 99999, proxyDelayMs: 0 })).notFound, 'unknown device: ENOENT');
});

t.test('requestSeries: one send, each request answered, the first failure in order', async (t) => {
  const { ns, nl } = setup(t);
  addVeth(nl, { name: 'host0', peerName: 'host0p' });
  const l = getLink(nl, 'host0')!;
  const route = (dst: string) => ({ type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeRouteRequest({ family: 4, dst, oif: l.index, scope: 'link' }) });
  const ok = nl.requestSeries(['up', 'addr', 'route', 'parms'], [
    { type: RTM_NEWLINK, flags: 0, body: encodeLinkUpRequest(l.index, { forwarding: true }) },
    { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeAddrRequest(l.index, '10.9.0.1/32') },
    route('10.9.1.0/24'),
    { type: RTM_SETNEIGHTBL, flags: 0, body: encodeNeighParmsRequest({ family: 4, index: l.index, proxyDelayMs: 0 }) },
  ]);
  t.same(ok, [undefined, undefined, undefined, undefined], 'all four succeed');
  t.match(ipJson(ns[0], ['-4', 'route', 'show', '10.9.1.0/24']), [{ dst: '10.9.1.0/24', dev: 'host0', scope: 'link' }]);
  t.match(ipJson(ns[0], ['-4', 'addr', 'show', 'host0'])[0].addr_info, [{ local: '10.9.0.1', prefixlen: 32 }]);
  const mixed = nl.requestSeries(['dup addr', 'dup route', 'new route'], [
    { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeAddrRequest(l.index, '10.9.0.1/32') },
    route('10.9.1.0/24'),
    route('10.9.2.0/24'),
  ]);
  t.ok(mixed[0]?.exists, 'the duplicate address fails with EEXIST');
  t.equal(mixed[0]?.op, 'dup addr', 'named by its own op');
  t.ok(mixed[1]?.exists && mixed[1].op === 'dup route', 'so does the duplicate route');
  t.equal(mixed[2], undefined, 'the kernel goes on after failures');
  t.match(ipJson(ns[0], ['-4', 'route', 'show', '10.9.2.0/24']), [{ dst: '10.9.2.0/24' }]);
  t.same(nl.requestSeries([], []), [], 'nothing to send');
  t.throws(() => nl.requestSeries(['big'], Array.from({ length: 400 }, () => route('10.9.3.0/24'))), RangeError, 'large batches belong to requestMany');
  t.ok(getLink(nl, 'host0'), 'the socket still answers in order afterwards');
});

t.test('socket opened inside stays in that namespace; closed socket fails cleanly', async (t) => {
  const { ns, nl } = setup(t);
  veth(nl);
  t.ok(getLink(nl, 'host0'), 'socket from inside sees the namespace');
  const root = NetlinkSocket.open();
  t.equal(getLink(root, 'host0'), undefined, 'a socket opened outside does not');
  root.close();
  const nl2 = withNetns(netnsPath(ns[0]), () => NetlinkSocket.open());
  nl2.close();
  t.equal(errOf(() => getLink(nl2, 'host0')).errno, 9, 'EBADF after close');
  sh('true', []);
});
