// Two of our speakers in namespaces: a mesh pair where both sides connect (collision
// resolution leaves one session), routes both ways, ECMP from two peers, setPeers diffing,
// and 100,000 prefixes originated on one side arriving on the other (time and RSS printed).
import t from 'tap';
import { Scope } from '../helpers/netns';
import { makeFabric, waitFor } from '../helpers/peers';
import { Speaker, type RouteChange } from '../../lib/bgp/speaker';

function collect(sp: Speaker): Map<string, string[]> {
  const m = new Map<string, string[]>();
  sp.on('routes', (ch: RouteChange[]) => { for (const c of ch) { if (c.nextHops.length) m.set(c.prefix, c.nextHops); else m.delete(c.prefix); } });
  return m;
}

t.test('mesh pair with collision, ECMP, 100k prefixes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const fab = makeFabric(scope, 3);
  const sps = [0, 1, 2].map((i) => new Speaker({ routerId: fab.addr(i), asn: 64512, netns: fab.path(i), listenAddress: fab.addr(i), connectRetryTime: 1 }));
  t.teardown(() => Promise.all(sps.map((s) => s.stop())));
  const got = sps.map(collect);
  // 0 and 1 both active toward each other: collision resolution must leave one session.
  sps[0].setPeers([{ address: fab.addr(1), asn: 64512, type: 'nodeMesh' }, { address: fab.addr(2), asn: 64512, type: 'nodeMesh' }]);
  sps[1].setPeers([{ address: fab.addr(0), asn: 64512, type: 'nodeMesh' }]);
  sps[2].setPeers([{ address: fab.addr(0), asn: 64512, type: 'nodeMesh', passive: true }]);
  sps[1].setOriginated([{ prefix: '10.244.1.0/26' }, { prefix: '10.250.0.0/24' }]);
  sps[2].setOriginated([{ prefix: '10.244.2.0/26' }, { prefix: '10.250.0.0/24' }]);
  await Promise.all(sps.map((s) => s.start()));
  await waitFor(() => sps.every((s) => s.status().every((p) => p.state === 'Established')), 15_000, 'all sessions established');
  await waitFor(() => got[0].get('10.250.0.0/24')?.length === 2, 10_000, 'ecmp at node 0');
  t.same(got[0].get('10.250.0.0/24'), [fab.addr(1), fab.addr(2)], 'ECMP: both next hops');
  t.same(got[0].get('10.244.1.0/26'), [fab.addr(1)]);
  t.notOk(got[1].has('10.244.2.0/26'), 'no re-advertisement of iBGP-learned routes (split horizon)');

  // setPeers with the same config keeps the session; removing a peer withdraws its routes.
  const since = sps[0].status()[0].since;
  sps[0].setPeers([{ address: fab.addr(1), asn: 64512, type: 'nodeMesh' }, { address: fab.addr(2), asn: 64512, type: 'nodeMesh' }]);
  t.equal(sps[0].status()[0].since, since, 'unchanged peer not reset');
  sps[0].setPeers([{ address: fab.addr(1), asn: 64512, type: 'nodeMesh' }]);
  await waitFor(() => got[0].get('10.250.0.0/24')?.length === 1 && !got[0].has('10.244.2.0/26'), 5000, 'routes of removed peer gone');
  t.same(got[0].get('10.250.0.0/24'), [fab.addr(1)]);

  // 100,000 /26 originated on node 1 arrive at node 0.
  const N = 100_000;
  const routes = [];
  for (let i = 0; i < N; i++) routes.push({ prefix: `10.${64 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) << 6}/26` });
  const before = got[0].size;
  const t0 = Date.now();
  sps[1].setOriginated([{ prefix: '10.244.1.0/26' }, { prefix: '10.250.0.0/24' }, ...routes]);
  await waitFor(() => got[0].size >= before + N, 30_000, '100k routes at node 0', 20).catch((e) => { t.comment(JSON.stringify([got[0].size, sps[0].routeCount, sps[0].status(), sps[1].status()])); throw e; });
  const ms = Date.now() - t0;
  const rss = process.memoryUsage().rss / 1e6;
  t.comment(`100,000 prefixes: ${ms} ms from setOriginated to the last 'routes' event; rss ${rss.toFixed(0)} MB (both speakers in one process)`);
  t.ok(ms < 10_000);
  t.equal(sps[0].status()[0].received, N + 2);
  sps[1].setOriginated([{ prefix: '10.244.1.0/26' }, { prefix: '10.250.0.0/24' }]);
  await waitFor(() => got[0].size === before, 30_000, 'withdrawal of 100k', 20);
  t.pass('100k withdrawn');
});
