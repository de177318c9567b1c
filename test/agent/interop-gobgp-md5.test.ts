// The agent (dist/brindle agent) against GoBGP over iBGP with TCP MD5 (RFC 2385), the peer and
// its password from a BGPPeer in the datastore (as ../shared/lab/gobgpd-ibgp-md5.toml): with
// the right password the session establishes, GoBGP's routes land in our kernel (proto 177,
// via GoBGP, on-link) and our block (a pod made by the real plugin) lands in GoBGP's RIB with
// our node as next hop. A wrong password, and then no password on our side, never gets past
// TCP on either side (and GoBGP's kernel counts the MD5 rejections); putting the right one in
// the datastore establishes without restarting the agent.
import t from 'tap';
import * as path from 'node:path';
import { Scope } from '../helpers/netns';
import { Cluster, type ClusterNode } from '../helpers/cluster';
import { Gobgp, gobgpConfig, gobgpAttr, tcpExtCounters } from '../helpers/peers';
import { queryStatus, type AgentStatus } from '../../lib/agent/status';
import { cidrContains, parseCidr, parseIp } from '../../lib/ip';

process.env.BRINDLE_USE_DIST ??= '1';

const SECRET = 'lab-secret';
const GOBGP_ROUTES = ['10.252.1.0/26', '10.252.2.0/26'];
const status = (n: ClusterNode): Promise<AgentStatus> => queryStatus(path.join(n.runDir, 'agent.sock'));
const PAST_TCP = ['opensent', 'openconfirm', 'established'];

/** A one-node cluster, GoBGP (iBGP, MD5 `SECRET`) on the node's subnet, a BGPPeer with `ours`. */
async function setup(scope: Scope, ours: string | undefined) {
  const c = await Cluster.create(scope, { nodes: 1 });
  const node = c.nodes[0];
  const gns = scope.netns('gobgp');
  const gip = c.nextIp(0);
  c.attach(gns, 'eth0', `${gip}/24`, 0);
  const gobgp = await Gobgp.start(scope, gns, gobgpConfig({ routerId: gip, asn: 64512, localAddress: gip, neighbors: [{ address: node.ip, asn: 64512, password: SECRET }] }));
  await (await c.ds()).create({ kind: 'BGPPeer', metadata: { name: 'gobgp' }, spec: { peerIP: gip, asNumber: 64512, ...(ours ? { password: ours } : {}) } });
  c.startAgent(node);
  const md5Rejected = () => { const e = tcpExtCounters(gns); return (e.TCPMD5Failure ?? 0) + (e.TCPMD5NotFound ?? 0) + (e.TCPMD5Unexpected ?? 0); };
  return { c, node, gobgp, gip, md5Rejected };
}

t.test('ibgp with md5 against gobgp: routes both ways, kernel and gobgp rib', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { c, node, gobgp, gip } = await setup(scope, SECRET);
  try {
    await gobgp.waitEstablished(node.ip, 30000);
    await c.waitFor('agent session established', async () => (await status(node)).peers.some((p) => p.address === gip && p.state === 'Established'), 10000);
  } catch (err) {
    t.comment(gobgp.log().slice(-2000));
    t.comment(c.agentLogTail(node));
    throw err;
  }
  const peer = (await status(node)).peers.find((p) => p.address === gip)!;
  t.match(peer, { type: 'global', asn: 64512 }, 'a global iBGP peer');

  // GoBGP → our kernel.
  for (const r of GOBGP_ROUTES) gobgp.addRoute(r);
  const learned = await c.waitFor('gobgp routes in our kernel', () => {
    const rs = c.brindleRoutes(node.ns).filter((r: any) => GOBGP_ROUTES.includes(r.dst));
    return rs.length === GOBGP_ROUTES.length ? rs : undefined;
  }, 15000) as any[];
  for (const r of learned) {
    t.match(r, { gateway: gip, dev: 'eth0' }, `${r.dst} via gobgp on the uplink`);
    t.ok((r.flags ?? []).includes('onlink'), `${r.dst} on-link`);
  }

  // Our block → GoBGP's RIB.
  const pod = await c.addPod(node);
  const block = await c.waitFor('our block as a blackhole in our kernel', () =>
    c.brindleRoutes(node.ns).find((r: any) => r.type === 'blackhole')?.dst, 10000) as string;
  const rib = await c.waitFor('our block in gobgp', () => { const r = gobgp.rib(4); return r[block] && r; }, 15000);
  t.equal(gobgpAttr(rib[block][0], 3)?.nexthop, node.ip, 'next hop is our node');
  t.equal(gobgpAttr(rib[block][0], 5)?.value, 100, 'iBGP LOCAL_PREF 100');
  t.same(gobgpAttr(rib[block][0], 2)?.as_paths ?? [], [], 'empty AS_PATH over iBGP');
  t.same(Object.keys(gobgp.adjIn(node.ip)), [block], 'gobgp received exactly our block (its own routes not sent back)');
  t.ok(cidrContains(parseCidr(block), parseIp(pod.ip)), `the pod ${pod.ip} is in the advertised block`);

  // Withdrawal from GoBGP leaves our kernel; the other route stays.
  gobgp.delRoute(GOBGP_ROUTES[0]);
  await c.waitFor('withdrawn route leaves our kernel', () => !c.brindleRoutes(node.ns).some((r: any) => r.dst === GOBGP_ROUTES[0]), 10000);
  t.ok(c.brindleRoutes(node.ns).some((r: any) => r.dst === GOBGP_ROUTES[1]), 'the other gobgp route stays');
});

t.test('wrong or missing md5 password never establishes with gobgp', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { c, node, gobgp, gip, md5Rejected } = await setup(scope, 'wrong-secret');
  gobgp.addRoute(GOBGP_ROUTES[0]);
  await c.addPod(node);

  /** Samples both sides for `ms`; returns the states seen. */
  const watch = async (ms: number) => {
    const ours = new Set<string>(), theirs = new Set<string>();
    let configured = false;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      try {
        for (const p of (await status(node)).peers) if (p.address === gip) { configured = true; ours.add(p.state); }
      } catch { /* agent still starting */ }
      theirs.add(gobgp.neighborState(node.ip) ?? '?');
      await new Promise((r) => setTimeout(r, 200));
    }
    return { ours: [...ours], theirs: [...theirs], configured };
  };

  for (const label of ['wrong password', 'no password on our side']) {
    if (label !== 'wrong password') {
      await c.edit('BGPPeer', 'gobgp', (cur) => { const spec = { ...cur!.spec }; delete spec.password; return { ...cur!, spec }; });
    }
    const before = md5Rejected();
    // GoBGP retries every 2 s, our agent on its connect-retry timer (5 s): 7 s sees both try.
    const seen = await watch(7000);
    t.ok(seen.configured, `${label}: the agent configured the peer`);
    t.notOk(seen.ours.some((s) => ['OpenSent', 'OpenConfirm', 'Established'].includes(s)), `${label}: agent never past TCP (saw ${seen.ours})`);
    t.notOk(seen.theirs.some((s) => PAST_TCP.includes(s)), `${label}: gobgp never past TCP (saw ${seen.theirs})`);
    t.ok(md5Rejected() > before, `${label}: gobgp's kernel rejected segments for md5 (${md5Rejected() - before} more)`);
    t.same(c.brindleRoutes(node.ns).filter((r: any) => r.dst === GOBGP_ROUTES[0]), [], `${label}: no gobgp route in our kernel`);
    t.same(Object.keys(gobgp.rib(4)), [GOBGP_ROUTES[0]], `${label}: nothing of ours in gobgp`);
  }

  // The right password in the datastore: established, routes both ways, same agent process.
  const pid = c.agentPid(node);
  await c.edit('BGPPeer', 'gobgp', (cur) => ({ ...cur!, spec: { ...cur!.spec, password: SECRET } }));
  await gobgp.waitEstablished(node.ip, 20000);
  t.equal(c.agentPid(node), pid, 'same agent process');
  await c.waitFor('gobgp route in our kernel after the fix', () => c.brindleRoutes(node.ns).some((r: any) => r.dst === GOBGP_ROUTES[0]), 15000);
  await c.waitFor('our block in gobgp after the fix', () => Object.keys(gobgp.rib(4)).length === 2, 15000);
  t.pass('routes both ways once the password matches');
});
