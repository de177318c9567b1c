// Dual-stack at the agent level, as a Calico user configures it: every node has an IPv4 and an
// IPv6 address (`--node-ip6`, like Calico's IP6), the cluster has an IPv4 and an IPv6 pool, and
// pods get one address of each from the real plugin + brindle-ipam (assign_ipv6). The mesh then
// peers twice per node pair, over the IPv4 and over the IPv6 node addresses; the IPv6 blocks
// travel over the IPv6 sessions (MP_REACH, next hop the node's IPv6 address) and land in each
// node's kernel as `<v6 block> via <node v6> dev eth0 onlink` under protocol 177, and pods on
// different nodes ping each other over IPv6 (and IPv4). Then GoBGP, peered from a BGPPeer with
// an IPv6 peerIP (eBGP), learns our IPv6 blocks and gives us one of its own.
import t from 'tap';
import * as path from 'node:path';
import { Scope, nsExec } from '../helpers/netns';
import { Cluster, addAddr6, ipv6For, type ClusterNode } from '../helpers/cluster';
import { Gobgp, gobgpConfig, gobgpAttr } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';
import { cidrContains, parseCidr, parseIp } from '../../lib/ip';

process.env.BRINDLE_USE_DIST ??= '1';

const POOL6 = 'fd00:10:244::/64';
const DUAL_STACK_POOLS = [
  { name: 'default-ipv4-ippool', spec: { cidr: '10.244.0.0/16' } },
  { name: 'default-ipv6-ippool', spec: { cidr: POOL6, blockSize: 122 } },
];
const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));
const DUAL = { ipam: { type: 'brindle-ipam', assign_ipv4: 'true', assign_ipv6: 'true' } };

/** Established TCP connections on port 179 in a namespace: "local peer" pairs of addresses. */
function bgpConnections(ns: string): string[] {
  const out = nsExec(ns, 'ss', ['-Htn', 'state', 'established', '( sport = :179 or dport = :179 )']);
  return out.split('\n').filter(Boolean).map((l) => {
    const f = l.trim().split(/\s+/);
    const strip = (a: string) => a.replace(/^\[?(.*?)\]?:\d+$/, '$1');
    return `${strip(f[f.length - 2])} ${strip(f[f.length - 1])}`;
  });
}

t.test('dual-stack mesh: ipv6 blocks over ipv6 sessions, pods ping over ipv6', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, {
    nodes: 3, ipv6: true,
    pools: DUAL_STACK_POOLS,
  });
  for (const n of c.nodes) c.startAgent(n);
  try {
    await c.waitFor('dual-stack mesh established', async () => {
      const all = await Promise.all(c.nodes.map(status));
      return all.every((s) => s.peers.length === 4 && s.peers.every((p) => p.state === 'Established' && p.type === 'nodeMesh'));
    }, 40000);
  } catch (err) {
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  const st1 = await status(c.nodes[0]);
  t.same(st1.peers.map((p) => p.address).sort(),
    c.nodes.slice(1).flatMap((n) => [n.ip, n.ip6!]).sort(), 'node1 peers with both addresses of every other node');
  // The TCP connections themselves: one per peer pair and family, IPv6 ones between node IPv6 addresses.
  const conns = bgpConnections(c.nodes[0].ns);
  for (const o of c.nodes.slice(1)) {
    t.ok(conns.includes(`${c.nodes[0].ip6} ${o.ip6}`), `bgp over tcp/ipv6 ${c.nodes[0].ip6} ↔ ${o.ip6} (${conns.join('; ')})`);
    t.ok(conns.includes(`${c.nodes[0].ip} ${o.ip}`), `bgp over tcp/ipv4 ${c.nodes[0].ip} ↔ ${o.ip}`);
  }

  for (const n of c.nodes) await c.addPod(n, DUAL);
  for (const p of c.nodes.flatMap((n) => n.pods)) {
    t.ok(p.ip6 && p.ip6.startsWith('fd00:10:244:'), `${p.name} has an ipv6 address from the pool (${p.ip6})`);
  }

  // Every node: its own IPv6 block as a blackhole, every other node's IPv6 block via that
  // node's IPv6 address on eth0, on-link, protocol 177.
  const v6Routes = (n: ClusterNode) => c.brindleRoutes(n.ns, 6);
  try {
    await c.waitFor('ipv6 routes to every other node', () => c.nodes.every((n) => {
      const rs = v6Routes(n).filter((r: any) => r.gateway);
      return c.nodes.filter((o) => o !== n).every((o) => rs.some((r: any) => r.gateway === o.ip6));
    }), 20000);
  } catch (err) {
    for (const n of c.nodes) t.comment(`${n.name}: ${JSON.stringify(v6Routes(n))}\n${c.agentLogTail(n)}`);
    throw err;
  }
  for (const n of c.nodes) {
    const rs = v6Routes(n);
    const own = rs.filter((r: any) => r.type === 'blackhole');
    t.equal(own.length, 1, `${n.name}: one ipv6 blackhole (its block)`);
    t.ok(own.every((r: any) => /^fd00:10:244:/.test(r.dst) && r.dst.endsWith('/122')), `${n.name}: the blackhole is a /122 of the ipv6 pool`);
    const learned = rs.filter((r: any) => r.gateway);
    t.equal(learned.length, 2, `${n.name}: two learned ipv6 blocks`);
    for (const r of learned) {
      const from = c.nodes.find((o) => o.ip6 === r.gateway)!;
      t.ok(from.pods.some((p) => p.ip6 && cidrContains(parseCidr(r.dst), parseIp(p.ip6))), `${n.name}: ${r.dst} holds ${from.name}'s pod`);
      t.equal(r.dev, 'eth0', `${n.name}: ${r.dst} on the uplink`);
      t.ok((r.flags ?? []).includes('onlink'), `${n.name}: ${r.dst} on-link`);
    }
    // No IPv6 prefix went over an IPv4 session and no IPv4 prefix over an IPv6 one.
    const s = await status(n);
    for (const p of s.peers) {
      t.equal(p.received, 1, `${n.name}: one prefix received from ${p.address}`);
      t.equal(p.advertised, 1, `${n.name}: one prefix advertised to ${p.address}`);
    }
    t.same(s.problems, [], `${n.name}: no problems`);
  }
  await c.waitFor('pods reachable over ipv6', async () => (await c.pingMatrix(6)).length === 0, 20000, 500);
  t.same(await c.pingMatrix(6), [], 'every pod reaches every pod over ipv6');
  t.same(await c.pingMatrix(4), [], 'and over ipv4');

  // ---- an external eBGP peer over IPv6 (BGPPeer peerIP = its IPv6 address): GoBGP ----
  const gns = scope.netns('gobgp');
  const gip = c.nextIp(0);
  const gip6 = ipv6For(gip);
  c.attach(gns, 'eth0', `${gip}/24`, 0);
  addAddr6(gns, 'eth0', `${gip6}/64`);
  const node = c.nodes[0];
  const gobgp = await Gobgp.start(scope, gns, gobgpConfig({ routerId: gip, asn: 64513, localAddress: gip6, neighbors: [{ address: node.ip6!, asn: 64512 }] }));
  await (await c.ds()).create({ kind: 'BGPPeer', metadata: { name: 'gobgp6' }, spec: { node: node.name, peerIP: gip6, asNumber: 64513 } });
  try {
    await gobgp.waitEstablished(node.ip6!, 30000);
  } catch (err) {
    t.comment(gobgp.log().slice(-2000));
    t.comment(c.agentLogTail(node));
    throw err;
  }
  const ours = c.brindleRoutes(node.ns, 6).find((r: any) => r.type === 'blackhole').dst as string;
  const rib = await c.waitFor('our ipv6 block in gobgp', () => { const r = gobgp.rib(6); return r[ours] && r; }, 15000);
  t.equal(gobgpAttr(rib[ours][0], 14)?.nexthop ?? gobgpAttr(rib[ours][0], 14)?.nexthops?.[0], node.ip6, 'MP_REACH next hop is our node ipv6 address');
  t.same(gobgpAttr(rib[ours][0], 2)?.as_paths?.[0]?.asns, [64512], 'AS_PATH is our AS');
  t.same(Object.keys(gobgp.rib(4)), [], 'no ipv4 prefix over the ipv6 session');
  t.equal((await status(node)).peers.find((p) => p.address === gip6)?.type, 'nodeSpecific', 'reported as a node-specific peer');
  gobgp.addRoute('fd00:251::/64');
  const r = await c.waitFor('gobgp ipv6 route in our kernel', () => c.brindleRoutes(node.ns, 6).find((x: any) => x.dst === 'fd00:251::/64'), 15000);
  t.match(r, { gateway: gip6, dev: 'eth0' }, 'fd00:251::/64 via gobgp ipv6 address');
  gobgp.delRoute('fd00:251::/64');
  await c.waitFor('withdrawn ipv6 route leaves our kernel', () => !c.brindleRoutes(node.ns, 6).some((x: any) => x.dst === 'fd00:251::/64'), 10000);
  t.pass('ipv6 withdrawal from gobgp removes the kernel route');
});

// An IPv6 node address written out in full or half-compressed (`--node-ip6 fd00:198:18:0::11`,
// as a Calico user may write IP6) is the same address the other node's kernel reports for the
// connection (fd00:198:18::11): the higher node, which only listens, must still accept it.
t.test('dual-stack mesh with a non-canonical ipv6 node address', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, {
    nodes: 2, ipv6: true,
    pools: DUAL_STACK_POOLS,
  });
  const [n1, n2] = c.nodes;
  const spelled = n1.ip6!.replace('::', ':0::');
  t.not(spelled, n1.ip6, `node1 registers as ${spelled}`);
  c.startAgent(n1, ['--node-ip6', spelled]);
  c.startAgent(n2);
  try {
    await c.waitFor('both ipv6 sessions established', async () => {
      const all = await Promise.all([status(n1), status(n2)]);
      return all.every((s) => s.peers.length === 2 && s.peers.every((p) => p.state === 'Established'));
    }, 30000);
  } catch (err) {
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  // The node record holds the canonical text with the interface's prefix, as the kernel has it.
  const rec = await (await c.ds()).get('Node', n1.name) as { spec: { bgp?: { ipv6Address?: string } } };
  t.equal(rec.spec.bgp?.ipv6Address, `${n1.ip6}/64`, 'node record: canonical ipv6 address with its interface prefix');
  for (const n of c.nodes) await c.addPod(n, DUAL);
  await c.waitFor('ipv6 routes both ways', () => c.brindleRoutes(n1.ns, 6).some((r: any) => r.gateway === n2.ip6)
    && c.brindleRoutes(n2.ns, 6).some((r: any) => r.gateway === n1.ip6), 15000);
  await c.waitFor('pods reachable over ipv6', async () => (await c.pingMatrix(6)).length === 0, 15000, 500);
  t.same(await c.pingMatrix(6), [], 'pods reach each other over ipv6');
});
