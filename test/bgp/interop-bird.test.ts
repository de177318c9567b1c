// Our speaker against BIRD 2 in namespaces: iBGP with TCP MD5, routes both ways, a wrong
// password never establishing, and BIRD's graceful restart while we hold its routes.
import t from 'tap';
import { Scope } from '../helpers/netns';
import { makeFabric, Bird, birdConfig, waitFor } from '../helpers/peers';
import { Speaker, type RouteChange } from '../../lib/bgp/speaker';

t.test('ibgp with md5 against bird: routes both ways, graceful restart of bird', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const fab = makeFabric(scope, 2);
  const bird = await Bird.start(scope, fab.nodes[0], birdConfig({
    routerId: fab.addr(0), asn: 64512, staticRoutes: ['10.244.1.0/26'],
    neighbors: [{ name: 'brindle', address: fab.addr(1), asn: 64512, password: 'lab-secret', gracefulRestart: true }],
  }));
  const sp = new Speaker({ routerId: fab.addr(1), asn: 64512, netns: fab.path(1), listenAddress: fab.addr(1) });
  const routes = new Map<string, string[]>();
  const withdrawals: string[] = [];
  sp.on('routes', (ch: RouteChange[]) => { for (const c of ch) { if (c.nextHops.length) routes.set(c.prefix, c.nextHops); else { routes.delete(c.prefix); withdrawals.push(c.prefix); } } });
  t.teardown(() => sp.stop());
  let establishedCount = 0;
  sp.on('peerState', (_a: string, st: string) => { if (st === 'Established') establishedCount++; });
  sp.setPeers([{ address: fab.addr(0), asn: 64512, password: 'lab-secret', type: 'global' }]);
  sp.setOriginated([{ prefix: '10.244.2.0/26' }, { prefix: '10.244.3.0/26', communities: [(64512 << 16) + 100] }]);
  await sp.start();

  await bird.waitProtocol('brindle');
  await waitFor(() => sp.status()[0].state === 'Established', 10_000, 'our session established');
  await waitFor(() => routes.get('10.244.1.0/26'), 10_000, 'bird route in our routes event');
  t.same(routes.get('10.244.1.0/26'), [fab.addr(0)], 'bird route via bird');
  await waitFor(() => bird.routesFrom('brindle').length === 2, 10_000, 'our routes in bird');
  t.same(bird.routesFrom('brindle').sort(), ['10.244.2.0/26', '10.244.3.0/26']);
  t.match(bird.routes('10.244.3.0/26'), /BGP.community: \(64512,100\)/, 'community carried');
  t.match(bird.routes('10.244.2.0/26'), /BGP.next_hop: 10\.99\.0\.2/, 'next hop self');
  const st = sp.status()[0];
  t.equal(st.received, 1);
  t.equal(st.advertised, 2);

  // Withdraw one of ours.
  sp.setOriginated([{ prefix: '10.244.2.0/26' }]);
  await waitFor(() => bird.routesFrom('brindle').length === 1, 10_000, 'withdrawal seen by bird');

  // BIRD restarts gracefully: we keep its route (stale) and never withdraw it.
  withdrawals.length = 0;
  await bird.gracefulRestart();
  await bird.waitProtocol('brindle', 'Established', 30_000);
  await waitFor(() => bird.routesFrom('brindle').length === 1, 20_000, 'our route back in bird after its restart');
  await waitFor(() => establishedCount >= 2, 20_000, 'our session re-established after bird restarted');
  t.equal(withdrawals.length, 0, 'no withdrawal during bird graceful restart');
  t.same(routes.get('10.244.1.0/26'), [fab.addr(0)], 'bird route still held');
});

t.test('wrong md5 password never establishes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const fab = makeFabric(scope, 2);
  const bird = await Bird.start(scope, fab.nodes[0], birdConfig({
    routerId: fab.addr(0), asn: 64512, staticRoutes: ['10.244.1.0/26'],
    neighbors: [{ name: 'brindle', address: fab.addr(1), asn: 64512, password: 'right' }],
  }));
  const sp = new Speaker({ routerId: fab.addr(1), asn: 64512, netns: fab.path(1), connectRetryTime: 1 });
  t.teardown(() => sp.stop());
  const states = new Set<string>();
  sp.on('peerState', (_a: string, s: string) => states.add(s));
  sp.setPeers([{ address: fab.addr(0), asn: 64512, password: 'wrong', type: 'global' }]);
  await sp.start();
  await new Promise((r) => setTimeout(r, 6000));
  t.notOk(states.has('OpenSent') || states.has('Established'), `never past TCP (saw ${[...states]})`);
  t.not(bird.protocol('brindle')?.info, 'Established');
});
