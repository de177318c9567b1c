// The route programmer, VXLAN device and VTEP entries against a real kernel in a throwaway
// namespace; the IPIP route at the netlink-message level (this kernel has no ipip module).
import t from 'tap';
import { Scope, ipJson, sh } from '../helpers/netns';
import { RouteProgrammer, netlinkRouteTable, type KRoute } from '../../lib/dataplane/routes';
import { ipipRoute } from '../../lib/dataplane/ipip';
import { ensureVxlanDevice, syncVtepPeers, vtepMac, VXLAN_DEVICE } from '../../lib/dataplane/vxlan';
import { encodeRouteRequest } from '../../lib/netlink/route';
import { withNetns, netnsPath } from '../../lib/netlink/netns';
import { NetlinkSocket } from '../../lib/netlink/socket';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

t.test('ipip route message bytes', async (t) => {
  const r = { ...ipipRoute('10.244.1.0/26', '198.18.0.12', 42), protocol: 177 };
  const want = [
    '02', '1a', '00', '00',   // AF_INET, dst_len 26, src_len, tos
    'fe', 'b1', '00', '01',   // RT_TABLE_MAIN, protocol 177, RT_SCOPE_UNIVERSE, RTN_UNICAST
    '04000000',               // rtm_flags RTNH_F_ONLINK
    '08000100', '0af40100',   // RTA_DST 10.244.1.0
    '08000500', 'c612000c',   // RTA_GATEWAY 198.18.0.12
    '08000400', '2a000000',   // RTA_OIF 42 (tunl0)
  ].join('');
  t.equal(hex(encodeRouteRequest(r)), want);
});

t.test('vtep mac is stable, unicast, locally administered', async (t) => {
  const a = vtepMac('node1');
  t.equal(a, vtepMac('node1'));
  t.not(a, vtepMac('node2'));
  const b0 = parseInt(a.slice(0, 2), 16);
  t.equal(b0 & 1, 0); t.equal(b0 & 2, 2);
});

t.test('programmer in a namespace: install, ecmp, restart without loss, ipip problem', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ns = scope.netns('rt');
  sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0p', 'up']);
  const idx = ipJson(ns, ['link', 'show', 'eth0'])[0].ifindex as number;
  const routes: KRoute[] = [
    { family: 4, dst: '10.244.0.0/26', type: 'blackhole' },
    { family: 4, dst: '10.244.1.0/26', gateway: '198.18.0.12', oif: idx, onlink: true },
    { family: 4, dst: '10.244.2.0/26', multipath: [{ gateway: '198.18.0.12', oif: idx, onlink: true }, { gateway: '198.18.0.13', oif: idx, onlink: true }] },
  ];
  withNetns(netnsPath(ns), () => {
    const nl = NetlinkSocket.open();
    try {
      const p = new RouteProgrammer(netlinkRouteTable(nl));
      t.equal(p.adopt(), 0);
      p.setAll(routes);
      const r = p.flush();
      t.same([r.replaced, r.errors.length], [3, 0]);
      // a restarted programmer adopts them and writes nothing
      const p2 = new RouteProgrammer(netlinkRouteTable(nl));
      t.equal(p2.adopt({ hold: true }), 3);
      p2.setAll(routes);
      const r2 = p2.flush();
      t.same([r2.replaced, r2.deleted], [0, 0], 'adopted routes satisfy the desired set');
      // ipip through a missing tunl0: reported per route, not thrown
      p2.set(4, '10.252.1.0/26', { ...ipipRoute('10.252.1.0/26', '198.18.0.12', 9999) });
      const r3 = p2.flush();
      t.equal(r3.errors.length, 1);
      t.equal(p2.pending, 1);
      p2.set(4, '10.252.1.0/26', undefined);
      p2.set(4, '10.244.1.0/26', undefined);
      const r4 = p2.flush();
      t.same([r4.deleted, r4.errors.length], [1, 0]);
      nl.close();
    } catch (err) { nl.close(); throw err; }
  });
  const got = ipJson(ns, ['route', 'show', 'proto', '177']).map((r: any) => `${r.type ?? 'unicast'} ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.nexthops ? ` ecmp ${r.nexthops.map((h: any) => h.gateway).join(',')}` : ''}`).sort();
  t.same(got, ['blackhole 10.244.0.0/26', 'unicast 10.244.2.0/26 ecmp 198.18.0.12,198.18.0.13']);
  // a foreign route is never touched
  t.ok(ipJson(ns, ['route', 'show', 'proto', 'kernel']).length >= 1);
});

t.test('vxlan device, neighbour and fdb entries', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ns = scope.netns('vx');
  sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0p', 'up']);
  const mac = vtepMac('n1');
  withNetns(netnsPath(ns), () => {
    const nl = NetlinkSocket.open();
    try {
      const i1 = ensureVxlanDevice(nl, { localIp: '198.18.0.11', mac, tunnelAddress: '10.250.0.1', mtu: 1450 });
      const i2 = ensureVxlanDevice(nl, { localIp: '198.18.0.11', mac, tunnelAddress: '10.250.0.1', mtu: 1450 });
      t.equal(i1, i2, 'idempotent');
      t.same(syncVtepPeers(nl, i1, [{ nodeIp: '198.18.1.12', tunnelAddress: '10.250.0.65', mac: '66:00:00:00:00:02' }, { nodeIp: '198.18.0.13', tunnelAddress: '10.250.0.129', mac: '66:00:00:00:00:03' }]).errors, []);
      t.same(syncVtepPeers(nl, i1, [{ nodeIp: '198.18.1.12', tunnelAddress: '10.250.0.65', mac: '66:00:00:00:00:02' }]).errors, []);
    } finally { nl.close(); }
  });
  const link = ipJson(ns, ['-d', 'link', 'show', VXLAN_DEVICE])[0];
  t.equal(link.address, mac);
  t.equal(link.mtu, 1450);
  t.equal(link.linkinfo.info_kind, 'vxlan');
  t.equal(link.linkinfo.info_data.id, 4096);
  t.equal(link.linkinfo.info_data.port, 4789);
  t.same(ipJson(ns, ['-4', 'addr', 'show', 'dev', VXLAN_DEVICE])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`), ['10.250.0.1/32']);
  const neigh = ipJson(ns, ['neigh', 'show', 'dev', VXLAN_DEVICE]).map((n: any) => `${n.dst} ${n.lladdr}`);
  t.same(neigh, ['10.250.0.65 66:00:00:00:00:02']);
  const fdb = JSON.parse(sh('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', VXLAN_DEVICE])).filter((f: any) => f.dst).map((f: any) => `${f.mac} ${f.dst}`);
  t.same(fdb, ['66:00:00:00:00:02 198.18.1.12']);
});
