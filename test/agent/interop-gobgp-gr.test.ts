// Graceful restart (RFC 4724) between the agent (dist/brindle agent) and GoBGP, both ways,
// sampled every 100-150 ms:
// - GoBGP is killed (SIGKILL: no NOTIFICATION) and started again with `-r` (restart state and
//   forwarding bit set) while our agent holds its routes in the kernel: no route leaves our
//   kernel; a route GoBGP no longer has when it is back is swept at its End-of-RIB, long before
//   the 120 s restart time. Then, on a session whose GoBGP advertised a 4 s restart time,
//   GoBGP is killed for good: its routes stay for those 4 s and are swept after them.
//   GoBGP's routes come from its API (`gobgp global rib add`), which only answers once gobgpd
//   runs, so while it restarts the test holds BGP off in GoBGP's namespace (nft drop on port
//   179) until the routes are back in, as a router's configured routes are before it peers.
// - GoBGP started again without `-r` (no forwarding state kept): our agent drops the stale
//   routes as the session comes up (RFC 4724 §4.2) and takes them again from the new table.
// - Our agent restarts (SIGTERM, then SIGKILL) while GoBGP holds our block: GoBGP's RIB (read
//   with the `gobgp` CLI) keeps it throughout, marked stale meanwhile, and our kernel keeps
//   GoBGP's routes and our blackhole.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Scope, ipJson, nsExec } from '../helpers/netns';
import { sampler } from '../helpers/sampler';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Gobgp, gobgpConfig } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';

process.env.BRINDLE_USE_DIST ??= '1';

const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

/** `gobgp -j <args>` in GoBGP's namespace without blocking the event loop (the kernel sampler runs beside it). */
async function gobgpJsonAsync(ns: string, ...args: string[]): Promise<any> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'gobgp', '-u', '127.0.0.1', ...args, '-j']);
  return stdout.trim() ? JSON.parse(stdout) : null;
}

/** Drops BGP (TCP port 179 either way) arriving in `ns` until the returned function is called. */
function holdBgp(ns: string): () => void {
  nsExec(ns, 'nft', ['-f', '-'], { input: [
    'table inet brindle_test_gate {',
    '  chain in { type filter hook input priority 0; policy accept; tcp dport 179 drop; tcp sport 179 drop; }',
    '}',
  ].join('\n') + '\n' });
  return () => nsExec(ns, 'nft', ['delete', 'table', 'inet', 'brindle_test_gate']);
}

async function setup(scope: Scope, restartTime = 120) {
  const c = await Cluster.create(scope, { nodes: 1 });
  const node = c.nodes[0];
  const gns = scope.netns('gobgp');
  const gip = c.nextIp(0);
  c.attach(gns, 'eth0', `${gip}/24`, 0);
  const conf = (rt: number) => gobgpConfig({ routerId: gip, asn: 64512, localAddress: gip, neighbors: [{ address: node.ip, asn: 64512, gracefulRestart: true, restartTime: rt }] });
  const gobgp = await Gobgp.start(scope, gns, conf(restartTime));
  await (await c.ds()).create({ kind: 'BGPPeer', metadata: { name: 'gobgp' }, spec: { peerIP: gip, asNumber: 64512 } });
  c.startAgent(node);
  await c.addPod(node);
  const established = async () => {
    try {
      await gobgp.waitEstablished(node.ip, 30000);
      await c.waitFor('agent session established', async () => (await status(node)).peers.every((p) => p.state === 'Established'), 30000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${gobgp.log().slice(-1500)}\n${c.agentLogTail(node)}`);
    }
  };
  await established();
  const kernel = (): Set<string> => new Set(ipJson(node.ns, ['route', 'show', 'proto', '177']).map((r: any) => r.dst));
  return { c, node, gobgp, gns, gip, conf, established, kernel };
}

t.test('gobgp restarts while our agent holds its routes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const KEEP = '10.253.1.0/26', DROP = '10.253.2.0/26';
  const { c, node, gobgp, gns, conf, established, kernel } = await setup(scope);
  gobgp.addRoute(KEEP);
  gobgp.addRoute(DROP);
  await c.waitFor('gobgp routes in our kernel', () => kernel().has(KEEP) && kernel().has(DROP), 15000);
  const shown = gobgp.gobgp('neighbor', node.ip);
  t.match(shown, /graceful-restart:\s+advertised and received/i, 'graceful restart capability both ways (gobgp neighbor)');

  // Round 1: SIGKILL, back with -r and KEEP only. The next session advertises a 4 s restart time.
  fs.writeFileSync(gobgp.confFile, conf(4));
  // Until gobgpd talks BGP again both routes must stay; after that DROP may go (End-of-RIB).
  let released = false;
  let s = sampler(100, () => { const k = kernel(); return (released ? [KEEP] : [KEEP, DROP]).filter((d) => !k.has(d)); });
  const release = holdBgp(gns);
  const killedAt = Date.now();
  await gobgp.restart({ signal: 'SIGKILL', recovery: true });
  gobgp.addRoute(KEEP);
  await sleep(1000);
  const downMs = Date.now() - killedAt;
  released = true;
  release();
  await established();
  await c.waitFor(`${DROP} swept after gobgp's end-of-rib`, () => !kernel().has(DROP), 15000);
  const sweptAfter = Date.now() - killedAt;
  await sleep(1000);
  let r = await s.stop();
  t.same(r.missing, [], `both routes held while gobgp was down (${downMs} ms), ${KEEP} never left our kernel (${r.every})`);
  t.ok(kernel().has(KEEP), `${KEEP} there after gobgp is back`);
  t.ok(sweptAfter < 60_000, `${DROP}, gone from gobgp, swept ${sweptAfter} ms after the kill, well before the 120 s restart time`);
  t.match(c.agentLogTail(node, 200), /graceful restart/, 'the agent logged the peer graceful restart');

  // Round 2: killed for good on a session with a 4 s restart time: held for 4 s, then swept.
  const killed = Date.now();
  let goneAt = 0;
  s = sampler(100, () => {
    if (kernel().has(KEEP)) return [];
    goneAt ||= Date.now();
    return Date.now() - killed < 3500 ? [`${KEEP} at ${Date.now() - killed} ms`] : [];
  });
  await gobgp.kill('SIGKILL');
  await c.waitFor(`${KEEP} swept after the restart time`, () => !kernel().has(KEEP), 12000, 100);
  r = await s.stop();
  t.same(r.missing, [], `${KEEP} held during the restart time (${r.every})`);
  const held = (goneAt || Date.now()) - killed;
  t.ok(held >= 3500 && held < 9000, `${KEEP} swept ${held} ms after gobgp died (restart time 4 s)`);
});

t.test('gobgp back without -r and without its route: the stale route goes as the session comes up', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ROUTE = '10.253.1.0/26';
  const { c, gobgp, gns, established, kernel } = await setup(scope);
  gobgp.addRoute(ROUTE);
  await c.waitFor('gobgp route in our kernel', () => kernel().has(ROUTE), 15000);
  const release = holdBgp(gns);
  await gobgp.restart({ signal: 'SIGKILL', recovery: false });
  t.ok(kernel().has(ROUTE), 'held while gobgp is down');
  release();
  await established();
  // No restart state, no forwarding bit, an empty table: the stale route goes when the session is
  // up (not after the 120 s restart time).
  const upAt = Date.now();
  await c.waitFor('stale route dropped when gobgp comes back without forwarding state', () => !kernel().has(ROUTE), 10000, 100);
  t.ok(Date.now() - upAt < 3000, `dropped ${Date.now() - upAt} ms after the session came up`);
  gobgp.addRoute(ROUTE);
  await c.waitFor('route learned again', () => kernel().has(ROUTE), 10000);
  t.pass('dropped, then learned again');
});

t.test('our agent restarts while gobgp holds our routes', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const GOBGP_ROUTE = '10.253.1.0/26';
  const { c, node, gobgp, established, kernel } = await setup(scope);
  gobgp.addRoute(GOBGP_ROUTE);
  const block = await c.waitFor('our block in gobgp', () => Object.keys(gobgp.rib(4)).find((p) => p !== GOBGP_ROUTE), 15000) as string;
  await c.waitFor('gobgp route in our kernel', () => kernel().has(GOBGP_ROUTE), 15000);
  const ours = [...kernel()].sort();
  t.same(ours, [block, GOBGP_ROUTE].sort(), 'our kernel: our blackhole and gobgp route');

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const states = new Set<string>();
    let staleSeen = false;
    // GoBGP's RIB through its CLI (two commands a sample), our kernel on its own every 100 ms.
    const g = sampler(150, async () => {
      const nb = ((await gobgpJsonAsync(gobgp.ns, 'neighbor')) ?? [])[0];
      const st = nb?.state?.session_state;
      states.add(typeof st === 'number' ? ['unknown', 'idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'][st] : String(st));
      const paths = ((await gobgpJsonAsync(gobgp.ns, 'global', 'rib', '-a', 'ipv4')) ?? {})[block];
      if (paths?.some((p: any) => p.stale)) staleSeen = true;
      return paths?.length ? [] : [`gobgp:${block}`];
    });
    const k = sampler(100, () => { const now = kernel(); return ours.filter((d) => !now.has(d)).map((d) => `kernel:${d}`); });
    await c.stopAgent(node, signal);
    await sleep(2000);
    c.startAgent(node);
    await established();
    await sleep(2000);
    const rg = await g.stop(), rk = await k.stop();
    t.same(rg.missing, [], `${signal}: gobgp's rib kept our block (${rg.every})`);
    t.same(rk.missing, [], `${signal}: our kernel kept gobgp's route and our blackhole (${rk.every})`);
    t.ok([...states].some((x) => x !== 'established'), `${signal}: gobgp saw the session go down (${[...states]})`);
    t.ok(staleSeen, `${signal}: gobgp held our block as stale meanwhile`);
    const after = gobgp.rib(4)[block];
    t.ok(after?.length && !after.some((p: any) => p.stale), `${signal}: our block in gobgp, no longer stale`);
    t.same([...kernel()].sort(), ours, `${signal}: our kernel routes the same after the restart`);
  }
});
