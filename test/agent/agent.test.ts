// The agent's wiring on fakes of our own interfaces: a Map-backed store (MemStore), a working
// in-memory speaker and dataplane. Registration, live peers/AS/originations, learned routes
// into the route table, VXLAN publication, NAT, status socket, graceful stop.
import t from 'tap';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Agent, type Dataplane, type SpeakerLike, type SpeakerOptions, type RouteChange, type PeerStatus } from '../../lib/agent/agent';
import type { PeerConfig } from '../../lib/agent/peers';
import { routeKey, type KRoute, type RouteTable } from '../../lib/dataplane/routes';
import { queryStatus } from '../../lib/agent/status';
import { MemStore } from '../helpers/memstore';
import type { Resource } from '../../lib/datastore/types';

class FakeSpeaker extends EventEmitter implements SpeakerLike {
  peers: PeerConfig[] = [];
  asn: number;
  asnChanges = 0;
  originated: string[] = [];
  started = false;
  stoppedGraceful?: boolean;
  constructor(readonly opts: SpeakerOptions) { super(); this.asn = opts.asn; }
  async start() { this.started = true; }
  async stop(o?: { graceful?: boolean }) { this.stoppedGraceful = !!o?.graceful; }
  setPeers(p: PeerConfig[]) { this.peers = p; }
  setAsn(a: number) { this.asn = a; this.asnChanges++; }
  clusterId?: string;
  setClusterId(id: string | undefined) { this.clusterId = id; }
  setOriginated(r: { prefix: string }[]) { this.originated = r.map((x) => x.prefix).sort(); }
  status(): PeerStatus[] { return this.peers.map((p) => ({ address: p.address, asn: p.asn, type: p.type, state: 'Established', since: 0, info: '', received: 0, advertised: 0 })); }
  announce(changes: RouteChange[]) { this.emit('routes', changes); }
}

class FakeTable implements RouteTable {
  readonly routes = new Map<string, KRoute>();
  list(p: number) { return [...this.routes.values()].filter((r) => r.protocol === p); }
  replace(rs: KRoute[]) { for (const r of rs) this.routes.set(routeKey(r), r); return rs.map(() => undefined); }
  del(rs: KRoute[]) { for (const r of rs) this.routes.delete(routeKey(r)); return rs.map(() => undefined); }
}

function fakeDataplane(table: FakeTable) {
  const state = { vxlan: undefined as undefined | { tunnelAddress: string; mac: string }, vteps: [] as any[], nat: [] as any[], natCalls: 0 };
  const dp: Dataplane = {
    routeTable: table,
    detect: () => ({ cidr: '198.18.0.11/24', index: 2 }),
    linkOfAddress: (a) => (a === '198.18.0.11' ? 2 : undefined),
    addressOf: (a) => (a === '198.18.0.11' ? { cidr: '198.18.0.11/24', index: 2 } : undefined),
    resolve: () => ({ gateway: '198.18.0.1', oif: 2 }),
    linkMtu: () => 1500,
    ensureVxlan: (o) => { state.vxlan = o; return 9; },
    removeVxlan: () => { state.vxlan = undefined; },
    syncVteps: (_i, peers) => { state.vteps = peers; return []; },
    tunlIndex: () => undefined,
    applyNat: async (pools) => { state.nat = pools; state.natCalls++; },
    enableForwarding: () => undefined,
  };
  return { dp, state };
}

const node = (name: string, ip: string, spec: any = {}): Resource<'Node'> => ({ kind: 'Node', metadata: { name, labels: {} }, spec: { bgp: { ipv4Address: `${ip}/24` }, ...spec } });
const pool = (cidr: string, extra: any = {}): Resource<'IPPool'> => ({ kind: 'IPPool', metadata: { name: cidr.replace(/[./]/g, '-') }, spec: { cidr, blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()', disabled: false, ...extra } });

async function setup(t: any, opts: { nodeIp?: string } = {}) {
  const ds = new MemStore();
  const table = new FakeTable();
  const { dp, state } = fakeDataplane(table);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-test-'));
  t.teardown(() => fs.rmSync(runDir, { recursive: true, force: true }));
  let speaker!: FakeSpeaker;
  const lines: string[] = [];
  const log = { debug: () => {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
  const mk = () => new Agent({
    nodeName: 'n1', ds, runDir, log, dataplane: dp, nodeIp: opts.nodeIp,
    newSpeaker: (o) => (speaker = new FakeSpeaker(o)),
    allocTunnelAddress: async () => '10.250.0.1',
    staleTimeMs: 60_000,
  });
  return { ds, table, state, runDir, mk, get speaker() { return speaker; }, lines };
}

t.test('registers, peers, originates and programs live', async (t) => {
  const s = await setup(t, { nodeIp: '198.18.0.11' });
  await s.ds.create(node('n2', '198.18.0.12'));
  await s.ds.create(pool('10.244.0.0/16'));
  await s.ds.create({ kind: 'IPAMBlock', metadata: { name: 'b1' }, spec: { cidr: '10.244.0.0/26', affinity: 'host:n1', allocations: {}, unallocated: [], sequence: {}, seqNumber: 1 } });
  await s.ds.create({ kind: 'BlockAffinity', metadata: { name: 'a1' }, spec: { node: 'n1', cidr: '10.244.0.0/26', state: 'confirmed' } });
  // an existing node spec is updated, not clobbered
  await s.ds.create({ kind: 'Node', metadata: { name: 'n1', labels: { rack: 'a' } }, spec: { bgp: { asNumber: 65010 }, ipv4IPIPTunnelAddr: '1.2.3.4' } });
  const agent = s.mk();
  await agent.start();
  t.teardown(() => agent.stop());
  const me = await s.ds.get('Node', 'n1');
  t.same(me.spec.bgp, { asNumber: 65010, ipv4Address: '198.18.0.11/24' });
  t.equal(me.spec.ipv4IPIPTunnelAddr, '1.2.3.4');
  t.same(me.metadata.labels, { rack: 'a' });
  t.equal(s.speaker.opts.routerId, '198.18.0.11');
  t.equal(s.speaker.opts.asn, 65010);
  t.same(s.speaker.peers.map((p) => `${p.address}/${p.type}/${p.asn}`), ['198.18.0.12/nodeMesh/64512']);
  t.same(s.speaker.originated, ['10.244.0.0/26']);
  t.equal(s.table.routes.get('4|10.244.0.0/26')?.type, 'blackhole');

  // learned routes go to the kernel, withdrawals remove them
  s.speaker.announce([{ prefix: '10.244.1.0/26', family: 4, nextHops: ['198.18.0.12'] }, { prefix: '10.244.0.0/26', family: 4, nextHops: ['198.18.0.12'] }]);
  await new Promise((r) => setImmediate(r));
  t.same(s.table.routes.get('4|10.244.1.0/26'), { family: 4, dst: '10.244.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true, protocol: 177 });
  t.equal(s.table.routes.get('4|10.244.0.0/26')?.type, 'blackhole', 'own block never replaced by a learned route');

  // live AS change: node's AS removed → cluster AS applies without restart
  let applied = agent.onceApplied();
  await s.ds.create({ kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { asNumber: 64999 } });
  const cur = await s.ds.get('Node', 'n1');
  delete cur.spec.bgp!.asNumber;
  await s.ds.update(cur);
  await applied;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(s.speaker.asn, 64999);
  t.ok(s.speaker.asnChanges >= 1);
  t.same(s.speaker.peers.map((p) => p.asn), [64999]);

  // mesh off removes the mesh peer; a global BGPPeer is added
  applied = agent.onceApplied();
  await s.ds.update({ ...(await s.ds.get('BGPConfiguration', 'default')), spec: { asNumber: 64999, nodeToNodeMeshEnabled: false } });
  await s.ds.create({ kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: '198.18.0.2', asNumber: 65000 } });
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.same(s.speaker.peers.map((p) => `${p.address}/${p.type}`), ['198.18.0.2/global']);

  // becoming a route reflector live: the speaker gets the cluster ID; giving it up clears it
  applied = agent.onceApplied();
  const rr = await s.ds.get('Node', 'n1');
  await s.ds.update({ ...rr, spec: { ...rr.spec, bgp: { ...rr.spec.bgp, routeReflectorClusterID: '224.0.0.1' } } });
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.equal(s.speaker.clusterId, '224.0.0.1', 'cluster id applied without restart');
  applied = agent.onceApplied();
  const unrr = await s.ds.get('Node', 'n1');
  delete unrr.spec.bgp!.routeReflectorClusterID;
  await s.ds.update(unrr);
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.equal(s.speaker.clusterId, undefined, 'cluster id cleared');

  // borrowed address originated as /32, withdrawn when released
  applied = agent.onceApplied();
  await s.ds.create({ kind: 'IPAMBlock', metadata: { name: 'b2' }, spec: { cidr: '10.244.1.0/26', affinity: 'host:n2', allocations: { '5': { ordinal: 5, handle: 'h', seq: 1, attrs: { node: 'n1' } } }, unallocated: [], sequence: {}, seqNumber: 1 } });
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.same(s.speaker.originated, ['10.244.0.0/26', '10.244.1.5/32']);
  applied = agent.onceApplied();
  await s.ds.delete('IPAMBlock', 'b2');
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.same(s.speaker.originated, ['10.244.0.0/26']);

  // natOutgoing on: rules applied; off: removed
  applied = agent.onceApplied();
  const p = await s.ds.get('IPPool', '10-244-0-0-16');
  await s.ds.update({ ...p, spec: { ...p.spec, natOutgoing: true } });
  await applied; await new Promise((r) => setTimeout(r, 50));
  t.same(s.state.nat, [{ cidr: '10.244.0.0/16', natOutgoing: true, disabled: false }]);

  // status socket
  const st = await queryStatus(path.join(s.runDir, 'agent.sock'));
  t.equal(st.node, 'n1'); t.equal(st.asn, 64999); t.equal(st.peers[0].type, 'global');

  // graceful stop: speaker told graceful, kernel routes kept
  await agent.stop();
  t.equal(s.speaker.stoppedGraceful, true);
  t.ok(s.table.routes.has('4|10.244.1.0/26'));
});

t.test('vxlan: tunnel address published, routes through the vtep', async (t) => {
  const s = await setup(t, { nodeIp: '198.18.0.11' });
  await s.ds.create(pool('10.250.0.0/16', { vxlanMode: 'Always' }));
  await s.ds.create(node('n2', '198.18.1.12', { vxlanTunnelAddress: '10.250.0.65', vxlanTunnelMACAddr: '66:00:00:00:00:02' }));
  const agent = s.mk();
  await agent.start();
  t.teardown(() => agent.stop());
  const me = await (async () => { for (let i = 0; i < 50; i++) { const n = await s.ds.get('Node', 'n1'); if (n.spec.vxlanTunnelAddress) return n; await new Promise((r) => setTimeout(r, 20)); } throw new Error('no tunnel address'); })();
  t.equal(me.spec.vxlanTunnelAddress, '10.250.0.1');
  t.match(me.spec.vxlanTunnelMACAddr, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  for (let i = 0; i < 50 && !s.state.vxlan; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(s.state.vxlan, { localIp: '198.18.0.11', mac: me.spec.vxlanTunnelMACAddr, tunnelAddress: '10.250.0.1', mtu: 1450 });
  t.same(s.state.vteps, [{ nodeIp: '198.18.1.12', tunnelAddress: '10.250.0.65', mac: '66:00:00:00:00:02' }]);
  s.speaker.announce([{ prefix: '10.250.0.64/26', family: 4, nextHops: ['198.18.1.12'] }]);
  await new Promise((r) => setImmediate(r));
  t.same(s.table.routes.get('4|10.250.0.64/26'), { family: 4, dst: '10.250.0.64/26', gateway: '10.250.0.65', oif: 9, onlink: true, protocol: 177 });
});

t.test('restart adopts the kernel routes and keeps them', async (t) => {
  const s = await setup(t, { nodeIp: '198.18.0.11' });
  await s.ds.create(node('n2', '198.18.0.12'));
  s.table.routes.set('4|10.244.1.0/26', { family: 4, dst: '10.244.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true, protocol: 177 });
  s.table.routes.set('4|10.244.7.0/26', { family: 4, dst: '10.244.7.0/26', gateway: '198.18.0.12', oif: 2, onlink: true, protocol: 177 });
  const agent = s.mk();
  await agent.start();
  t.teardown(() => agent.stop());
  t.equal(s.table.routes.size, 2, 'nothing flushed at start');
  s.speaker.announce([{ prefix: '10.244.1.0/26', family: 4, nextHops: ['198.18.0.12'] }]);
  await new Promise((r) => setImmediate(r));
  t.equal(s.table.routes.size, 2, 'stale route held');
  // End-of-RIB from every peer ends the hold (checked every second)
  s.speaker.emit('endOfRib', '198.18.0.12', 4);
  await new Promise((r) => setTimeout(r, 1500));
  t.same([...s.table.routes.keys()], ['4|10.244.1.0/26']);
});
