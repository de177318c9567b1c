// The agent (dist/brindle agent) against GoBGP over eBGP (our AS 64512, GoBGP AS 64513), the
// peer from a BGPPeer in the datastore: a route added to GoBGP's global RIB lands in our
// node's kernel (proto 177, via GoBGP), our node's block (a pod made by the real plugin) lands
// in GoBGP's RIB with our AS in the path and our node as next hop; withdrawals both ways.
import t from 'tap';
import * as path from 'node:path';
import { Scope } from '../helpers/netns';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Gobgp, gobgpConfig, gobgpAttr } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';

process.env.BRINDLE_USE_DIST ??= '1';

const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));

t.test('ebgp against gobgp: routes both ways, kernel and gobgp rib', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, { nodes: 1 });
  const node = c.nodes[0];
  const gns = scope.netns('gobgp');
  const gip = c.nextIp(0);
  c.attach(gns, 'eth0', `${gip}/24`, 0);
  const gobgp = await Gobgp.start(scope, gns, gobgpConfig({ routerId: gip, asn: 64513, localAddress: gip, neighbors: [{ address: node.ip, asn: 64512 }] }));
  const ds = await c.ds();
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'gobgp' }, spec: { peerIP: gip, asNumber: 64513 } });
  c.startAgent(node);
  try {
    await gobgp.waitEstablished(node.ip, 30000);
    await c.waitFor('agent session established', async () => (await status(node)).peers.some((p) => p.address === gip && p.state === 'Established' && p.asn === 64513), 10000);
  } catch (err) {
    t.comment(gobgp.log().slice(-2000));
    t.comment(c.agentLogTail(node));
    throw err;
  }

  // GoBGP → our kernel.
  gobgp.addRoute('10.251.0.0/26');
  gobgp.addRoute('10.251.0.64/26', { communities: ['64513:7'] });
  const learned = await c.waitFor('gobgp routes in our kernel', () => {
    const rs = c.brindleRoutes(node.ns).filter((r: any) => r.dst.startsWith('10.251.'));
    return rs.length === 2 ? rs : undefined;
  }, 15000) as any[];
  for (const r of learned) t.match(r, { gateway: gip, dev: 'eth0' }, `${r.dst} via gobgp on the uplink`);

  // Our block → GoBGP's RIB.
  const pod = await c.addPod(node);
  const block = await c.waitFor('our block as a blackhole in our kernel', () =>
    c.brindleRoutes(node.ns).find((r: any) => r.type === 'blackhole')?.dst, 10000);
  const rib = await c.waitFor('our block in gobgp', () => { const r = gobgp.rib(4); return r[block] && r; }, 15000);
  const p = rib[block][0];
  t.equal(gobgpAttr(p, 3)?.nexthop, node.ip, 'next hop is our node');
  t.same(gobgpAttr(p, 2)?.as_paths?.[0]?.asns, [64512], 'AS_PATH is our AS');
  t.notOk(gobgpAttr(p, 5), 'no LOCAL_PREF over eBGP');
  // Nothing of GoBGP's own comes back to it (no re-advertisement to the AS it came from).
  const fromUs = Object.keys(gobgp.adjIn(node.ip));
  t.same(fromUs, [block], 'gobgp receives only our block from us');
  t.ok(pod.ip.startsWith(block.split('.').slice(0, 3).join('.')), 'the pod is in the advertised block');

  // Withdrawals both ways.
  gobgp.delRoute('10.251.0.0/26');
  await c.waitFor('withdrawn gobgp route leaves our kernel', () => !c.brindleRoutes(node.ns).some((r: any) => r.dst === '10.251.0.0/26'), 10000);
  t.ok(c.brindleRoutes(node.ns).some((r: any) => r.dst === '10.251.0.64/26'), 'the other gobgp route stays');
  await c.delPod(pod);
  // The block stays affine to the node after its last pod goes (Calico keeps it): release it
  // by deleting block and affinity, as IPAM garbage collection would.
  for (const b of (await ds.list('IPAMBlock')).items) await ds.delete('IPAMBlock', b.metadata.name);
  for (const a of (await ds.list('BlockAffinity')).items) await ds.delete('BlockAffinity', a.metadata.name);
  await c.waitFor('our withdrawn block leaves gobgp', () => !gobgp.rib(4)[block], 15000);
  await c.waitFor('our blackhole removed', () => !c.brindleRoutes(node.ns).some((r: any) => r.type === 'blackhole'), 10000);
  t.pass('withdrawn both ways');
});
