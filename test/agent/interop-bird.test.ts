// The agent (dist/brindle agent, the whole process) against BIRD 2 over iBGP with TCP MD5,
// configured through a BGPPeer with a password in the datastore: BIRD's static /26 lands in
// our node's kernel (proto 177, via BIRD, on-link), our node's block (a pod made by the real
// plugin) lands in BIRD's table with our node as next hop. A wrong password never gets past
// TCP: no session on either side for several seconds, no route either way, and the kernel of
// BIRD's namespace counts MD5 failures (so MD5 really was in play).
import t from 'tap';
import * as path from 'node:path';
import { Scope, nsExec } from '../helpers/netns';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Bird, birdConfig } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';

process.env.BRINDLE_USE_DIST ??= '1';

const BIRD_ROUTES = ['10.250.1.0/26', '10.250.2.0/26'];

/** A one-node cluster and BIRD in its own namespace on the node's subnet. */
async function setup(scope: Scope, password: { ours: string; bird: string }) {
  const c = await Cluster.create(scope, { nodes: 1 });
  const node = c.nodes[0];
  const birdNs = scope.netns('bird');
  const birdIp = c.nextIp(0);
  c.attach(birdNs, 'eth0', `${birdIp}/24`, 0);
  const bird = await Bird.start(scope, birdNs, birdConfig({
    routerId: birdIp, asn: 64512, staticRoutes: BIRD_ROUTES,
    neighbors: [{ name: 'brindle', address: node.ip, asn: 64512, password: password.bird }],
  }));
  const ds = await c.ds();
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerIP: birdIp, asNumber: 64512, password: password.ours } });
  c.startAgent(node);
  return { c, node, bird, birdNs, birdIp };
}

const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));

/** TcpExt counters of a namespace's kernel (read from inside it). */
function tcpExt(ns: string): Record<string, number> {
  const lines = nsExec(ns, 'cat', ['/proc/net/netstat']).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const keys = lines[0].split(/\s+/).slice(1), vals = lines[1].split(/\s+/).slice(1);
  return Object.fromEntries(keys.map((k, i) => [k, Number(vals[i])]));
}

t.test('ibgp with md5 against bird: routes both ways, kernel and bird table', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { c, node, bird, birdIp } = await setup(scope, { ours: 'lab-secret', bird: 'lab-secret' });
  try {
    await c.waitFor('agent session to bird established', async () => {
      const s = await status(node);
      return s.peers.length === 1 && s.peers[0].address === birdIp && s.peers[0].state === 'Established';
    }, 30000);
    await bird.waitProtocol('brindle');
  } catch (err) {
    t.comment(bird.log().slice(-2000));
    t.comment(c.agentLogTail(node));
    throw err;
  }
  t.equal((await status(node)).peers[0].type, 'global', 'reported as a global peer');

  // BIRD → our kernel.
  const learned = await c.waitFor('bird routes in our kernel', () => {
    const rs = c.brindleRoutes(node.ns).filter((r: any) => BIRD_ROUTES.includes(r.dst));
    return rs.length === BIRD_ROUTES.length ? rs : undefined;
  }, 15000) as any[];
  for (const r of learned) {
    t.equal(r.gateway, birdIp, `${r.dst} via bird`);
    t.equal(r.dev, 'eth0', `${r.dst} on the uplink`);
  }

  // Our block → BIRD's table, next hop our node.
  const pod = await c.addPod(node);
  const block = await c.waitFor('our block as a blackhole in our kernel', () =>
    c.brindleRoutes(node.ns).find((r: any) => r.type === 'blackhole')?.dst, 10000);
  t.match(block, /^10\.244\.\d+\.\d+\/26$/, 'block from the default pool');
  await c.waitFor('our block in bird', () => bird.routesFrom('brindle').includes(block), 15000);
  t.same(bird.routesFrom('brindle'), [block], 'bird learned exactly our block from us');
  t.match(bird.routes(block), new RegExp(`BGP\\.next_hop: ${node.ip.replace(/\./g, '\\.')}`), 'next hop is our node');
  t.match(bird.routes(block), /BGP\.local_pref: 100/, 'iBGP LOCAL_PREF present');
  // BIRD put it in its kernel too: the pod answers from BIRD's namespace.
  t.ok(await c.ping(bird.ns, pod.ip, 2), 'pod reachable from bird over the route it learned');

  // The BGPPeer goes: the session ends and BIRD's routes leave our kernel.
  await (await c.ds()).delete('BGPPeer', 'bird');
  await c.waitFor('bird routes removed from our kernel after the peer was deleted', () =>
    !c.brindleRoutes(node.ns).some((r: any) => BIRD_ROUTES.includes(r.dst)), 15000);
  await c.waitFor('session down in bird', () => bird.protocol('brindle')?.info !== 'Established', 10000);
  t.pass('deleting the BGPPeer ends the session and removes its routes');
});

t.test('wrong md5 password never establishes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { c, node, bird, birdNs, birdIp } = await setup(scope, { ours: 'wrong-secret', bird: 'lab-secret' });
  await c.addPod(node);
  const seen = new Set<string>();
  const birdSeen = new Set<string>();
  // Sample both sides for 8 s (BIRD retries every 2 s, our agent on its connect-retry timer).
  const end = Date.now() + 8000;
  let sawPeer = false;
  while (Date.now() < end) {
    try {
      const s = await status(node);
      for (const p of s.peers) { if (p.address === birdIp) { sawPeer = true; seen.add(p.state); } }
    } catch { /* agent still starting */ }
    birdSeen.add(bird.protocol('brindle')?.info ?? '?');
    await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(sawPeer, 'the agent configured the peer');
  t.notOk(seen.has('OpenSent') || seen.has('OpenConfirm') || seen.has('Established'), `agent never past TCP (saw ${[...seen]})`);
  t.notOk([...birdSeen].some((s) => s.startsWith('Established') || s.startsWith('OpenSent') || s.startsWith('OpenConfirm')), `bird never past TCP (saw ${[...birdSeen]})`);
  t.same(c.brindleRoutes(node.ns).filter((r: any) => BIRD_ROUTES.includes(r.dst)), [], 'no bird route in our kernel');
  t.same(bird.routesFrom('brindle'), [], 'no route of ours in bird');
  const ext = tcpExt(birdNs);
  t.ok((ext.TCPMD5Failure ?? 0) + (ext.TCPMD5NotFound ?? 0) + (ext.TCPMD5Unexpected ?? 0) > 0, `bird's kernel rejected segments for MD5 (${JSON.stringify({ f: ext.TCPMD5Failure, nf: ext.TCPMD5NotFound, u: ext.TCPMD5Unexpected })})`);

  // Fixing the password in the datastore establishes the session without restarting anything.
  const pid = c.agentPid(node);
  await c.edit('BGPPeer', 'bird', (cur) => ({ ...cur!, spec: { ...cur!.spec, password: 'lab-secret' } }));
  await bird.waitProtocol('brindle', 'Established', 20000);
  t.equal(c.agentPid(node), pid, 'same agent process');
  await c.waitFor('bird routes in our kernel after the fix', () => c.brindleRoutes(node.ns).filter((r: any) => BIRD_ROUTES.includes(r.dst)).length === 2, 15000);
});
