// Mesh off + a BIRD "top of rack": three nodes start meshed; a global BGPPeer to BIRD (iBGP,
// BIRD reflecting to the nodes as its route-reflector clients) is added and the mesh turned
// off live. Pods stay reachable across nodes, and become reachable from the ToR.
import t from 'tap';
import * as path from 'node:path';
import { Scope } from '../helpers/netns';
import { Cluster } from '../helpers/cluster';
import { Bird, birdConfig } from '../helpers/peers';
import { queryStatus } from '../../lib/agent/status';
import { nsExec } from '../helpers/netns';

t.test('mesh off, BIRD top of rack', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, { nodes: 3 });
  const tor = scope.netns('tor');
  const torIp = c.nextIp(0);
  c.attach(tor, 'eth0', `${torIp}/24`, 0);
  nsExec(tor, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const bird = await Bird.start(scope, tor, birdConfig({
    routerId: torIp, asn: 64512,
    neighbors: c.nodes.map((n) => ({ name: n.name, address: n.ip, asn: 64512, rrClient: true, exportFilter: 'all' })),
  }));
  for (const n of c.nodes) c.startAgent(n);
  const status = () => Promise.all(c.nodes.map((n) => queryStatus(path.join(n.runDir, 'agent.sock'))));
  await c.waitFor('mesh established', async () => (await status()).every((s) => s.peers.length === 2 && s.peers.every((p) => p.state === 'Established')), 40000);
  for (const n of c.nodes) await c.addPod(n);
  await c.waitFor('pods reachable over the mesh', async () => (await c.pingMatrix()).length === 0, 20000, 500);

  const ds = await c.ds();
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: torIp, asNumber: 64512 } });
  await c.edit('BGPConfiguration', 'default', (cur) => ({ kind: 'BGPConfiguration', metadata: { name: 'default', ...(cur ? { revision: cur.metadata.revision } : {}) }, spec: { ...(cur?.spec ?? {}), nodeToNodeMeshEnabled: false } }));
  try {
    await c.waitFor('only the ToR peer, established', async () => (await status()).every((s) => s.peers.length === 1 && s.peers[0].address === torIp && s.peers[0].type === 'global' && s.peers[0].state === 'Established'), 40000);
    for (const n of c.nodes) await bird.waitProtocol(n.name);
  } catch (err) {
    t.comment(bird.log().slice(-2000));
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  await c.waitFor('pods reachable through the ToR', async () => (await c.pingMatrix()).length === 0, 30000, 500);
  t.same(await c.pingMatrix(), [], 'pods reachable with the mesh off');
  await c.waitFor('ToR has every block', () => bird.routeCount() >= 3, 20000);
  const pods = c.nodes.flatMap((n) => n.pods);
  const fromTor = await Promise.all(pods.map((p) => c.ping(tor, p.ip)));
  t.same(fromTor, pods.map(() => true), 'every pod reachable from the ToR');
});
