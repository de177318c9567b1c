// The agent-level proof on a three-node virtual cluster (test/helpers/cluster.ts): pods made
// by the real plugin + brindle-ipam ping each other across nodes over BGP routes with no
// encapsulation; a live AS change re-establishes sessions without restarting agents; a
// graceful restart of one agent loses no route from any kernel (sampled every 100 ms).
import t from 'tap';
import { Scope, ipJson } from '../helpers/netns';
import { Cluster } from '../helpers/cluster';
import { queryStatus } from '../../lib/agent/status';
import * as path from 'node:path';

t.test('three nodes, plain BGP routing', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const c = await Cluster.create(scope, { nodes: 3 });
  for (const n of c.nodes) c.startAgent(n);
  const status = (n: (typeof c.nodes)[number]) => queryStatus(path.join(n.runDir, 'agent.sock'));
  try {
    await c.waitFor('mesh established', async () => {
      const all = await Promise.all(c.nodes.map(status));
      return all.every((s) => s.peers.length === 2 && s.peers.every((p) => p.state === 'Established' && p.type === 'nodeMesh'));
    }, 40000);
  } catch (err) {
    for (const n of c.nodes) t.comment(`${n.name}:\n${c.agentLogTail(n)}`);
    throw err;
  }
  for (const n of c.nodes) { await c.addPod(n); await c.addPod(n); }
  // every node learns the other two nodes' blocks, via the node address, on-link
  await c.waitFor('routes to every other block', () => c.nodes.every((n) => {
    const rs = c.brindleRoutes(n.ns).filter((r: any) => r.gateway);
    return c.nodes.filter((o) => o !== n).every((o) => rs.some((r: any) => r.gateway === o.ip));
  }), 20000);
  const r1 = c.brindleRoutes(c.nodes[0].ns);
  t.ok(r1.some((r: any) => r.type === 'blackhole'), 'own block as blackhole');
  t.ok(r1.filter((r: any) => r.gateway).every((r: any) => r.dev === 'eth0' && (r.flags ?? []).includes('onlink')), 'via node ip on eth0, no tunnel');
  t.same(await c.pingMatrix(), [], 'every pod reaches every pod');

  // ---- live AS change: sessions re-establish, PIDs unchanged ----
  const pids = c.nodes.map((n) => c.agentPid(n));
  await c.edit('BGPConfiguration', 'default', (cur) => ({ kind: 'BGPConfiguration', metadata: { name: 'default', ...(cur ? { revision: cur.metadata.revision } : {}) }, spec: { ...(cur?.spec ?? {}), asNumber: 64600 } }));
  await c.waitFor('sessions re-established in AS 64600', async () => {
    const all = await Promise.all(c.nodes.map(status));
    return all.every((s) => s.asn === 64600 && s.peers.length === 2 && s.peers.every((p) => p.state === 'Established' && p.asn === 64600));
  }, 40000);
  t.same(c.nodes.map((n) => c.agentPid(n)), pids, 'agents not restarted');
  t.ok(c.nodes.every((n) => n.agent!.exitCode === null));
  await c.waitFor('pods reachable after the AS change', async () => (await c.pingMatrix()).length === 0, 20000, 500);
  t.pass('pods reachable after AS change');

  // ---- graceful restart of node1's agent: no route disappears anywhere ----
  const before = c.nodes.map((n) => c.brindleRoutes(n.ns).map((r: any) => r.dst).sort());
  const lost: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      c.nodes.forEach((n, i) => {
        const now = new Set(ipJson(n.ns, ['route', 'show', 'proto', '177']).map((r: any) => r.dst));
        for (const d of before[i]) if (!now.has(d)) lost.push(`${n.name}:${d}`);
      });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await c.stopAgent(c.nodes[0], 'SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  c.startAgent(c.nodes[0]);
  await c.waitFor('node1 back and established', async () => {
    const s = await status(c.nodes[0]);
    return s.peers.length === 2 && s.peers.every((p) => p.state === 'Established');
  }, 40000);
  await new Promise((r) => setTimeout(r, 2000));
  sampling = false;
  await sampler;
  t.same([...new Set(lost)], [], 'no route left any kernel during the restart');
  t.same(await c.pingMatrix(), [], 'pods reachable after the restart');
});
