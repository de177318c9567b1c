// The agent (dist/brindle agent) as a route reflector: node1's Node record carries a
// routeReflectorClusterID; BIRD and GoBGP peer with it over iBGP through global BGPPeers
// (GoBGP with TCP MD5) and are its clients by Calico's rule (a BGPPeer in the reflector's own
// AS is a client); node2 is a cluster client. A route from BIRD reaches GoBGP (and node2's
// kernel) with ORIGINATOR_ID = BIRD and CLUSTER_LIST = our cluster ID, and a route from GoBGP
// reaches BIRD likewise; the reflector's own block reaches both unmarked.
import t from 'tap';
import * as path from 'node:path';
import { Scope } from '../helpers/netns';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Bird, birdConfig, Gobgp, gobgpConfig, gobgpAttr } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';
import { computePeers } from '../../lib/agent/peers';
import type { Resource } from '../../lib/datastore/types';

process.env.BRINDLE_USE_DIST ??= '1';

const CLUSTER_ID = '1.0.0.1';
const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));
const re = (ip: string) => ip.replace(/\./g, '\\.');

t.test('external peers of a reflector in its own AS are its clients (computePeers)', async (t) => {
  const rr: Resource<'Node'> = { kind: 'Node', metadata: { name: 'rr' }, spec: { bgp: { ipv4Address: '198.18.0.11/24', routeReflectorClusterID: CLUSTER_ID } } };
  const plain: Resource<'Node'> = { kind: 'Node', metadata: { name: 'n' }, spec: { bgp: { ipv4Address: '198.18.0.14/24' } } };
  const peers: Resource<'BGPPeer'>[] = [
    { kind: 'BGPPeer', metadata: { name: 'ibgp' }, spec: { peerIP: '198.18.0.12', asNumber: 64512 } },
    { kind: 'BGPPeer', metadata: { name: 'implicit-as' }, spec: { peerIP: '198.18.0.15' } },
    { kind: 'BGPPeer', metadata: { name: 'ebgp' }, spec: { peerIP: '198.18.0.13', asNumber: 65000 } },
  ];
  const byAddr = (me: Resource<'Node'>) => Object.fromEntries(computePeers({ thisNode: me, nodes: [rr, plain], bgpPeers: peers }).map((p) => [p.address, !!p.rrClient]));
  t.same(byAddr(rr), { '198.18.0.12': true, '198.18.0.13': false, '198.18.0.14': true, '198.18.0.15': true }, 'reflector: same-AS peers are clients, eBGP is not');
  t.same(byAddr(plain), { '198.18.0.11': false, '198.18.0.12': false, '198.18.0.13': false, '198.18.0.15': false }, 'non-reflector: no clients');
});

t.test('agent as route reflector for bird and gobgp', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, { nodes: 2 });
  const [rr, n2] = c.nodes;
  const birdNs = scope.netns('bird'), gNs = scope.netns('gobgp');
  const birdIp = c.nextIp(0), gip = c.nextIp(0);
  c.attach(birdNs, 'eth0', `${birdIp}/24`, 0);
  c.attach(gNs, 'eth0', `${gip}/24`, 0);
  const ds = await c.ds();
  await ds.create({ kind: 'Node', metadata: { name: rr.name, labels: { 'route-reflector': 'true' } }, spec: { bgp: { routeReflectorClusterID: CLUSTER_ID } } });
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerIP: birdIp, asNumber: 64512, nodeSelector: "route-reflector == 'true'" } });
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'gobgp' }, spec: { node: rr.name, peerIP: gip, asNumber: 64512, password: 'rr-secret' } });
  const bird = await Bird.start(scope, birdNs, birdConfig({
    routerId: birdIp, asn: 64512, staticRoutes: ['10.250.1.0/26'],
    neighbors: [{ name: 'reflector', address: rr.ip, asn: 64512 }],
  }));
  const gobgp = await Gobgp.start(scope, gNs, gobgpConfig({ routerId: gip, asn: 64512, localAddress: gip, neighbors: [{ address: rr.ip, asn: 64512, password: 'rr-secret' }] }));
  c.startAgent(rr);
  c.startAgent(n2);
  try {
    await bird.waitProtocol('reflector', 'Established', 30000);
    await gobgp.waitEstablished(rr.ip, 30000);
    await c.waitFor('reflector sees bird, gobgp, node2 established', async () => {
      const s = await status(rr);
      return s.peers.length === 3 && s.peers.every((p) => p.state === 'Established');
    }, 20000);
  } catch (err) {
    t.comment(bird.log().slice(-1500));
    t.comment(gobgp.log().slice(-1500));
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  const st = await status(rr);
  t.same(Object.fromEntries(st.peers.map((p) => [p.address, p.type])), { [n2.ip]: 'rrClient', [birdIp]: 'global', [gip]: 'nodeSpecific' }, 'peer types at the reflector');
  await c.waitFor('node2 established with the reflector', async () => (await status(n2)).peers.every((p) => p.state === 'Established'), 20000);
  t.same((await status(n2)).peers.map((p) => [p.address, p.type]), [[rr.ip, 'routeReflector']], 'node2 peers only with the reflector (the selector chose rr for bird)');

  gobgp.addRoute('10.251.0.0/26');
  await c.addPod(rr);
  await c.addPod(n2);

  // Both client routes in the reflector's kernel, via their origin.
  await c.waitFor('client routes in the reflector kernel', () => {
    const rs = c.brindleRoutes(rr.ns);
    return rs.some((r: any) => r.dst === '10.250.1.0/26' && r.gateway === birdIp) && rs.some((r: any) => r.dst === '10.251.0.0/26' && r.gateway === gip);
  }, 15000);
  t.pass('bird and gobgp routes in the reflector kernel via their origin');

  // BIRD → GoBGP, reflected.
  const rib = await c.waitFor('bird route reflected into gobgp', () => { const r = gobgp.rib(4); return r['10.250.1.0/26'] && r; }, 15000);
  const p = rib['10.250.1.0/26'][0];
  t.equal(gobgpAttr(p, 9)?.value, birdIp, 'ORIGINATOR_ID = bird');
  t.same(gobgpAttr(p, 10)?.value, [CLUSTER_ID], 'CLUSTER_LIST = our cluster ID');
  t.equal(gobgpAttr(p, 3)?.nexthop, birdIp, 'next hop unchanged by reflection');

  // GoBGP → BIRD, reflected.
  await c.waitFor('gobgp route reflected into bird', () => bird.routes('10.251.0.0/26').includes('BGP.originator_id'), 15000);
  const text = bird.routes('10.251.0.0/26');
  t.match(text, new RegExp(`BGP\\.originator_id: ${re(gip)}`), 'ORIGINATOR_ID = gobgp');
  t.match(text, new RegExp(`BGP\\.cluster_list: ${re(CLUSTER_ID)}`), 'CLUSTER_LIST = our cluster ID');
  t.match(text, new RegExp(`BGP\\.next_hop: ${re(gip)}`), 'next hop unchanged');

  // The cluster client node2 gets both external routes in its kernel, via their origins.
  await c.waitFor('external routes in node2 kernel', () => {
    const rs = c.brindleRoutes(n2.ns);
    return rs.some((r: any) => r.dst === '10.250.1.0/26' && r.gateway === birdIp) && rs.some((r: any) => r.dst === '10.251.0.0/26' && r.gateway === gip);
  }, 15000);
  t.pass('node2 has bird and gobgp routes via their origins');

  // Blocks: the reflector's own (no ORIGINATOR_ID) and node2's (reflected, ORIGINATOR_ID = node2).
  const blockOf = (n: ClusterNode) => c.brindleRoutes(n.ns).find((r: any) => r.type === 'blackhole')?.dst as string;
  // Each agent installs its block's blackhole once its watch has seen the block: wait for both.
  await c.waitFor('both blocks blackholed', () => blockOf(rr) && blockOf(n2), 15000).catch(() => undefined);
  const rrBlock = blockOf(rr), n2Block = blockOf(n2);
  t.ok(rrBlock && n2Block && rrBlock !== n2Block, `two blocks (${rrBlock}, ${n2Block})`);
  const rib2 = await c.waitFor('both blocks in gobgp', () => { const r = gobgp.rib(4); return r[rrBlock] && r[n2Block] && r; }, 15000);
  t.notOk(gobgpAttr(rib2[rrBlock][0], 9), 'reflector block: no ORIGINATOR_ID');
  t.equal(gobgpAttr(rib2[rrBlock][0], 3)?.nexthop, rr.ip, 'reflector block via the reflector');
  t.equal(gobgpAttr(rib2[n2Block][0], 9)?.value, n2.ip, 'node2 block: ORIGINATOR_ID = node2');
  t.equal(gobgpAttr(rib2[n2Block][0], 3)?.nexthop, n2.ip, 'node2 block via node2');
  await c.waitFor('both blocks in bird', () => bird.routesFrom('reflector').includes(rrBlock) && bird.routesFrom('reflector').includes(n2Block), 15000);
  t.match(bird.routes(n2Block), new RegExp(`BGP\\.originator_id: ${re(n2.ip)}`), 'bird: node2 block reflected');
  t.same(await c.pingMatrix(), [], 'pods on the reflector and its client reach each other');

  // Withdrawal through the reflector.
  gobgp.delRoute('10.251.0.0/26');
  await c.waitFor('gobgp withdrawal reflected to bird and node2', () =>
    !bird.routesFrom('reflector').includes('10.251.0.0/26') && !c.brindleRoutes(n2.ns).some((r: any) => r.dst === '10.251.0.0/26'), 15000);
  t.pass('withdrawal reflected');
});
