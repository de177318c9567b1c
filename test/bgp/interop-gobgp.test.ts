// Our speaker against GoBGP (eBGP, IPv4 and IPv6), and as a route reflector with BIRD and
// GoBGP as its clients (ORIGINATOR_ID / CLUSTER_LIST on the reflected routes).
import t from 'tap';
import { Scope, sh } from '../helpers/netns';
import { makeFabric, Bird, birdConfig, Gobgp, gobgpConfig, gobgpAttr, waitFor } from '../helpers/peers';
import { Speaker, type RouteChange } from '../../lib/bgp/speaker';

function collect(sp: Speaker): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  sp.on('routes', (ch: RouteChange[]) => { for (const c of ch) { if (c.nextHops.length) routes.set(c.prefix, c.nextHops); else routes.delete(c.prefix); } });
  return routes;
}

t.test('ebgp against gobgp: routes both ways, ipv4 and ipv6', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const fab = makeFabric(scope, 2);
  for (const [i, ns] of fab.nodes.entries()) sh('ip', ['-n', ns, 'addr', 'add', `fd00:99::${i + 1}/64`, 'dev', 'eth0', 'nodad']);
  const gobgp = await Gobgp.start(scope, fab.nodes[0], gobgpConfig({ routerId: fab.addr(0), asn: 64513, neighbors: [{ address: fab.addr(1), asn: 64512 }] }));
  const sp = new Speaker({ routerId: fab.addr(1), asn: 64512, netns: fab.path(1), connectRetryTime: 1 });
  const routes = collect(sp);
  t.teardown(() => sp.stop());
  sp.setPeers([{ address: fab.addr(0), asn: 64513, type: 'global' }]);
  sp.setOriginated([{ prefix: '10.244.2.0/26' }, { prefix: 'fd00:10:244:2::/64', nextHop: 'fd00:99::2' }]);
  await sp.start();
  await gobgp.waitEstablished(fab.addr(1));
  gobgp.addRoute('10.244.5.0/26');
  gobgp.addRoute('fd00:10:244:5::/64', { nextHop: 'fd00:99::1' });
  await waitFor(() => routes.get('10.244.5.0/26') && routes.get('fd00:10:244:5::/64'), 10_000, 'gobgp routes in our routes event');
  t.same(routes.get('10.244.5.0/26'), [fab.addr(0)]);
  t.same(routes.get('fd00:10:244:5::/64'), ['fd00:99::1']);
  const rib4 = await waitFor(() => { const r = gobgp.rib(4); return r['10.244.2.0/26'] && r; }, 10_000, 'our route in gobgp');
  const p = rib4['10.244.2.0/26'][0];
  t.equal(gobgpAttr(p, 3)?.nexthop, fab.addr(1), 'next hop self');
  t.same(gobgpAttr(p, 2)?.as_paths?.[0]?.asns, [64512], 'our AS prepended');
  t.notOk(gobgpAttr(p, 5), 'no LOCAL_PREF to eBGP');
  const rib6 = await waitFor(() => { const r = gobgp.rib(6); return r['fd00:10:244:2::/64'] && r; }, 10_000, 'our v6 route in gobgp');
  t.ok(rib6['fd00:10:244:2::/64']);
  gobgp.delRoute('10.244.5.0/26');
  await waitFor(() => !routes.has('10.244.5.0/26'), 10_000, 'withdrawal reaches us');
  t.pass('withdrawn');
});

t.test('route reflector with bird and gobgp as clients', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const fab = makeFabric(scope, 3);
  const rr = fab.addr(0), birdIp = fab.addr(1), gobgpIp = fab.addr(2);
  const sp = new Speaker({ routerId: rr, asn: 64512, netns: fab.path(0), clusterId: '1.1.1.1', connectRetryTime: 1 });
  const routes = collect(sp);
  t.teardown(() => sp.stop());
  sp.setPeers([
    { address: birdIp, asn: 64512, type: 'rrClient', rrClient: true },
    { address: gobgpIp, asn: 64512, type: 'rrClient', rrClient: true },
  ]);
  sp.setOriginated([{ prefix: '10.244.0.0/26' }]);
  await sp.start();
  const bird = await Bird.start(scope, fab.nodes[1], birdConfig({ routerId: birdIp, asn: 64512, staticRoutes: ['10.244.1.0/26'], neighbors: [{ name: 'reflector', address: rr, asn: 64512 }] }));
  const gobgp = await Gobgp.start(scope, fab.nodes[2], gobgpConfig({ routerId: gobgpIp, asn: 64512, neighbors: [{ address: rr, asn: 64512 }] }));
  await bird.waitProtocol('reflector');
  await gobgp.waitEstablished(rr);
  gobgp.addRoute('10.244.3.0/26');
  await waitFor(() => routes.get('10.244.1.0/26') && routes.get('10.244.3.0/26'), 10_000, 'client routes at the reflector');

  const rib = await waitFor(() => { const r = gobgp.rib(4); return r['10.244.1.0/26'] && r['10.244.0.0/26'] && r; }, 10_000, 'reflected bird route in gobgp');
  const p = rib['10.244.1.0/26'][0];
  t.equal(gobgpAttr(p, 9)?.value, birdIp, 'ORIGINATOR_ID = bird');
  t.same(gobgpAttr(p, 10)?.value, ['1.1.1.1'], 'CLUSTER_LIST = our cluster');
  t.equal(gobgpAttr(p, 3)?.nexthop, birdIp, 'next hop unchanged by reflection');

  await waitFor(() => bird.routes('10.244.3.0/26').includes('BGP.originator_id'), 10_000, 'reflected gobgp route in bird');
  const text = bird.routes('10.244.3.0/26');
  t.match(text, new RegExp(`BGP.originator_id: ${gobgpIp.replace(/\./g, '\\.')}`));
  t.match(text, /BGP.cluster_list: 1\.1\.1\.1/);
  t.ok(bird.routesFrom('reflector').includes('10.244.0.0/26'), 'our own origination in bird');
});
