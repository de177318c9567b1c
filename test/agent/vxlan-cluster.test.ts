// VXLAN Always across two subnets joined by a router namespace: node1 and node3 on
// 198.18.0.0/24, node2 on 198.18.1.0/24; pods on every node ping each other through
// vxlan.brindle (routes via the remote VTEP address, onlink), with the VTEP MAC and address
// published on each node record.
import t from 'tap';
import * as path from 'node:path';
import { Scope, ipJson } from '../helpers/netns';
import { Cluster } from '../helpers/cluster';
import { queryStatus } from '../../lib/agent/status';

t.test('vxlan always across two subnets', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, { nodes: 3, subnets: [0, 1, 0], pools: [{ name: 'vx', spec: { cidr: '10.244.0.0/16', vxlanMode: 'Always' } }] });
  for (const n of c.nodes) c.startAgent(n);
  try {
    await c.waitFor('mesh established and vteps published', async () => {
      const all = await Promise.all(c.nodes.map((n) => queryStatus(path.join(n.runDir, 'agent.sock'))));
      if (!all.every((s) => s.peers.length === 2 && s.peers.every((p) => p.state === 'Established'))) return false;
      const ds = await c.ds();
      const nodes = (await ds.list('Node')).items;
      return nodes.length === 3 && nodes.every((n) => n.spec.vxlanTunnelAddress && n.spec.vxlanTunnelMACAddr);
    }, 40000);
  } catch (err) {
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  for (const n of c.nodes) await c.addPod(n);
  const ds = await c.ds();
  const recs = new Map((await ds.list('Node')).items.map((n) => [n.metadata.name, n.spec]));
  await c.waitFor('routes through vxlan.brindle', () => c.nodes.every((n) => {
    const rs = c.brindleRoutes(n.ns).filter((r: any) => r.dev === 'vxlan.brindle');
    return c.nodes.filter((o) => o !== n).every((o) => rs.some((r: any) => r.gateway === recs.get(o.name)!.vxlanTunnelAddress));
  }), 20000);
  const n1 = c.nodes[0];
  const link = ipJson(n1.ns, ['-d', 'link', 'show', 'vxlan.brindle'])[0];
  t.equal(link.address, recs.get('node1')!.vxlanTunnelMACAddr, 'device MAC is the published VTEP MAC');
  t.equal(link.linkinfo.info_data.id, 4096);
  const neigh = ipJson(n1.ns, ['neigh', 'show', 'dev', 'vxlan.brindle']).map((x: any) => `${x.dst} ${x.lladdr}`).sort();
  t.same(neigh, ['node2', 'node3'].map((n) => `${recs.get(n)!.vxlanTunnelAddress} ${recs.get(n)!.vxlanTunnelMACAddr}`).sort());
  t.notOk(c.brindleRoutes(n1.ns).some((r: any) => r.gateway && r.dev === 'eth0'), 'no unencapsulated pod routes');
  t.same(await c.pingMatrix(), [], 'every pod reaches every pod over vxlan');
});
