// Graceful restart (RFC 4724) between the agent (dist/brindle agent) and BIRD 2, both ways,
// sampled every 100-150 ms:
// - BIRD restarts (first `birdc graceful restart`, then SIGKILL) while our agent holds its
//   routes in the kernel: no BIRD route leaves our kernel; after BIRD is back and has sent
//   End-of-RIB the routes are still there, and a route BIRD no longer has after the restart is
//   swept (which only End-of-RIB can do before the 120 s restart time).
// - Our agent restarts (SIGTERM, then SIGKILL) while BIRD holds our block: BIRD keeps it
//   throughout (its session is seen down meanwhile), and our kernel keeps BIRD's routes and our
//   blackhole.
// - BIRD in its default "graceful restart aware" mode (capability with no address family) is
//   killed: its routes leave our kernel at once instead of being held for the restart time.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Scope, ipJson } from '../helpers/netns';
import { sampler } from '../helpers/sampler';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Bird, birdConfig, type BirdConfigOptions } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';

process.env.BRINDLE_USE_DIST ??= '1';

const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(scope: Scope, staticRoutes: string[], gracefulRestart = true) {
  const c = await Cluster.create(scope, { nodes: 1 });
  const node = c.nodes[0];
  const birdNs = scope.netns('bird');
  const birdIp = c.nextIp(0);
  c.attach(birdNs, 'eth0', `${birdIp}/24`, 0);
  const conf = (routes: string[]): BirdConfigOptions => ({
    routerId: birdIp, asn: 64512, staticRoutes: routes,
    neighbors: [{ name: 'brindle', address: node.ip, asn: 64512, password: 'gr-secret', gracefulRestart }],
  });
  const bird = await Bird.start(scope, birdNs, birdConfig(conf(staticRoutes)));
  await (await c.ds()).create({ kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerIP: birdIp, asNumber: 64512, password: 'gr-secret' } });
  c.startAgent(node);
  await c.addPod(node);
  const established = async () => {
    await bird.waitProtocol('brindle', 'Established', 30000);
    await c.waitFor('agent session established', async () => (await status(node)).peers.every((p) => p.state === 'Established'), 30000);
  };
  try { await established(); } catch (err) { throw new Error(`${(err as Error).message}\n${bird.log().slice(-1500)}\n${c.agentLogTail(node)}`); }
  const kernel = (): Set<string> => new Set(ipJson(node.ns, ['route', 'show', 'proto', '177']).map((r: any) => r.dst));
  return { c, node, bird, birdIp, conf, established, kernel };
}

t.test('bird restarts while our agent holds its routes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const KEEP = '10.250.1.0/26', DROP = '10.250.2.0/26';
  const { c, node, bird, conf, established, kernel } = await setup(scope, [KEEP, DROP]);
  await c.waitFor('bird routes in our kernel', () => kernel().has(KEEP) && kernel().has(DROP), 15000);

  // Round 1: `birdc graceful restart`, then BIRD starts again in recovery mode (-R).
  let s = sampler(100, () => { const k = kernel(); return [KEEP, DROP].filter((d) => !k.has(d)); });
  await bird.gracefulRestart();
  await established();
  await sleep(3000); // End-of-RIB both ways, stale sweep done
  let r = await s.stop();
  t.same(r.missing, [], `round 1 (birdc graceful restart): no bird route left our kernel (${r.every})`);
  t.ok(kernel().has(KEEP) && kernel().has(DROP), 'both routes there after bird is back');

  // Round 2: SIGKILL (no NOTIFICATION), and BIRD comes back without DROP.
  fs.writeFileSync(bird.confFile, birdConfig(conf([KEEP])));
  s = sampler(100, () => (kernel().has(KEEP) ? [] : [KEEP]));
  await bird.restart({ signal: 'SIGKILL', downMs: 1000 });
  await established();
  await c.waitFor(`${DROP} swept after bird's end-of-rib`, () => !kernel().has(DROP), 15000);
  await sleep(1000);
  r = await s.stop();
  t.same(r.missing, [], `round 2 (SIGKILL): ${KEEP} never left our kernel (${r.every})`);
  t.ok(kernel().has(KEEP), `${KEEP} there after bird is back`);
  t.pass(`${DROP}, gone from bird, swept well before the 120 s restart time`);
  t.match(c.agentLogTail(node, 200), /graceful restart/, 'the agent logged the peer graceful restart');
});

t.test('our agent restarts while bird holds our routes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const BIRD_ROUTE = '10.250.1.0/26';
  const { c, node, bird, established, kernel } = await setup(scope, [BIRD_ROUTE]);
  const block = await c.waitFor('our block in bird', () => bird.routesFrom('brindle')[0], 15000);
  await c.waitFor('bird route in our kernel', () => kernel().has(BIRD_ROUTE), 15000);
  const ours = [...kernel()].sort();
  t.same(ours, [block, BIRD_ROUTE].sort(), 'our kernel: our blackhole and bird route');

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const birdStates = new Set<string>();
    const s = sampler(150, () => {
      birdStates.add(bird.protocol('brindle')?.info ?? '?');
      const missing = bird.routesFrom('brindle').includes(block) ? [] : [`bird:${block}`];
      const k = kernel();
      for (const d of ours) if (!k.has(d)) missing.push(`kernel:${d}`);
      return missing;
    });
    await c.stopAgent(node, signal);
    await sleep(2000);
    c.startAgent(node);
    await established();
    await sleep(3000);
    const r = await s.stop();
    t.same(r.missing, [], `${signal}: bird kept our block and our kernel kept its routes (${r.every})`);
    t.ok([...birdStates].some((x) => !x.startsWith('Established')), `${signal}: bird saw the session go down (${[...birdStates]})`);
    t.same(bird.routesFrom('brindle'), [block], `${signal}: our block in bird after the restart`);
    t.same([...kernel()].sort(), ours, `${signal}: our kernel routes the same after the restart`);
  }
});

t.test('bird only "graceful restart aware" (its default): its routes are not held', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ROUTE = '10.250.1.0/26';
  const { c, bird, established, kernel } = await setup(scope, [ROUTE], false);
  await c.waitFor('bird route in our kernel', () => kernel().has(ROUTE), 15000);
  const killed = Date.now();
  await bird.stop('SIGKILL');
  await c.waitFor('bird route removed from our kernel', () => !kernel().has(ROUTE), 5000, 50);
  t.ok(Date.now() - killed < 5000, `removed ${Date.now() - killed} ms after bird died (RFC 4724 §4.2: no family listed, nothing kept)`);
  await bird.restart({ recovery: false });
  await established();
  await c.waitFor('bird route back in our kernel', () => kernel().has(ROUTE), 15000);
});
