import t from 'tap';
import { computePeers, splitPeerIp, type PeerConfig } from '../../lib/agent/peers';
import type { BGPPeerSpec, NodeSpec, Resource } from '../../lib/datastore/types';

function node(name: string, ip: string, extra: Partial<NodeSpec['bgp']> = {}, labels: Record<string, string> = {}): Resource<'Node'> {
  return { kind: 'Node', metadata: { name, labels }, spec: { bgp: { ipv4Address: `${ip}/24`, ...extra } } };
}
function peer(name: string, spec: BGPPeerSpec): Resource<'BGPPeer'> {
  return { kind: 'BGPPeer', metadata: { name }, spec };
}
const brief = (ps: PeerConfig[]) => ps.map((p) => `${p.address}:${p.type}:${p.asn}${p.passive ? ':passive' : ''}${p.rrClient ? ':client' : ''}${p.password ? `:pw=${p.password}` : ''}${p.port ? `:port=${p.port}` : ''}`);

const n1 = node('n1', '198.18.0.11', {}, { rack: 'a' });
const n2 = node('n2', '198.18.0.12', {}, { rack: 'b' });
const n3 = node('n3', '198.18.0.13', { asNumber: 65001 }, { rack: 'a' });
const rr = node('rr', '198.18.0.5', { routeReflectorClusterID: '1.0.0.1' }, { 'route-reflector': 'true' });
const rr2 = node('rr2', '198.18.0.6', { routeReflectorClusterID: '1.0.0.1' }, { 'route-reflector': 'true' });

const cases: { name: string; me: Resource<'Node'>; nodes: Resource<'Node'>[]; peers?: Resource<'BGPPeer'>[]; cfg?: any; want: string[] }[] = [
  { name: 'mesh default on, lower address connects', me: n2, nodes: [n1, n2, n3],
    want: ['198.18.0.11:nodeMesh:64512:passive', '198.18.0.13:nodeMesh:65001'] },
  { name: 'mesh uses configured AS', me: n1, nodes: [n1, n2], cfg: { asNumber: 64600 },
    want: ['198.18.0.12:nodeMesh:64600'] },
  { name: 'mesh off, no peers', me: n1, nodes: [n1, n2, n3], cfg: { nodeToNodeMeshEnabled: false }, want: [] },
  { name: 'mesh off keeps global peer', me: n1, nodes: [n1, n2], cfg: { nodeToNodeMeshEnabled: false },
    peers: [peer('tor', { peerIP: '198.18.0.1', asNumber: 65000, password: 's3' })],
    want: ['198.18.0.1:global:65000:pw=s3'] },
  { name: 'listen port applies to cluster peers', me: n1, nodes: [n1, n2], cfg: { listenPort: 1179 },
    want: ['198.18.0.12:nodeMesh:64512:port=1179'] },
  { name: 'global peer filtered by nodeSelector', me: n2, nodes: [n1, n2],
    peers: [peer('tor', { peerIP: '198.18.0.1', asNumber: 65000, nodeSelector: "rack == 'a'" })],
    want: ['198.18.0.11:nodeMesh:64512:passive'] },
  { name: 'node-specific peer for this node only', me: n1, nodes: [n1],
    peers: [peer('a', { node: 'n1', peerIP: '10.0.0.1:1179', asNumber: 65000 }), peer('b', { node: 'n2', peerIP: '10.0.0.2', asNumber: 65000 })],
    want: ['10.0.0.1:nodeSpecific:65000:port=1179'] },
  { name: 'explicit peer outranks mesh for the same address', me: n1, nodes: [n1, n2],
    peers: [peer('p', { node: 'n1', peerIP: '198.18.0.12', asNumber: 64512, password: 'x' })],
    want: ['198.18.0.12:nodeSpecific:64512:pw=x'] },
  { name: 'peer without AS is iBGP', me: n3, nodes: [n3],
    peers: [peer('p', { peerIP: '10.0.0.9' })], want: ['10.0.0.9:global:65001'] },
  { name: 'peerSelector expands to nodes', me: n1, nodes: [n1, n2, n3], cfg: { nodeToNodeMeshEnabled: false },
    peers: [peer('s', { peerSelector: "rack == 'a'" })], want: ['198.18.0.13:global:65001'] },
  { name: 'client peers with reflectors, mesh skips them', me: n1, nodes: [n1, n2, rr, rr2],
    want: ['198.18.0.12:nodeMesh:64512', '198.18.0.5:routeReflector:64512:passive', '198.18.0.6:routeReflector:64512:passive'] },
  { name: 'reflector peers with clients and reflectors', me: rr, nodes: [n1, n2, rr, rr2],
    want: ['198.18.0.11:rrClient:64512:client', '198.18.0.12:rrClient:64512:client', '198.18.0.6:routeReflector:64512'] },
  { name: 'reflector with mesh off still serves clients', me: rr2, nodes: [n1, rr, rr2], cfg: { nodeToNodeMeshEnabled: false },
    want: ['198.18.0.11:rrClient:64512:client', '198.18.0.5:routeReflector:64512:passive'] },
  { name: 'bad selector selects nothing', me: n1, nodes: [n1, n2], cfg: { nodeToNodeMeshEnabled: false },
    peers: [peer('s', { peerSelector: "rack == " })], want: [] },
  { name: 'peer equal to own address skipped', me: n1, nodes: [n1],
    peers: [peer('s', { peerIP: '198.18.0.11', asNumber: 1 })], want: [] },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = computePeers({ thisNode: c.me, nodes: c.nodes, bgpPeers: c.peers ?? [], bgpConfig: c.cfg });
    t.same(brief(got), c.want);
    for (const p of got) if (p.type === 'nodeMesh') t.equal(p.localAddress, c.me.spec.bgp!.ipv4Address!.split('/')[0]);
  });
}

t.test('mesh pair: exactly one side connects', async (t) => {
  const a = computePeers({ thisNode: n1, nodes: [n1, n2], bgpPeers: [] })[0];
  const b = computePeers({ thisNode: n2, nodes: [n1, n2], bgpPeers: [] })[0];
  t.not(!!a.passive, !!b.passive);
});

t.test('IPv6 mesh when both nodes have IPv6 addresses', async (t) => {
  const a = node('a', '198.18.0.21'); a.spec.bgp!.ipv6Address = 'fd00:18::21/64';
  const b = node('b', '198.18.0.22'); b.spec.bgp!.ipv6Address = 'fd00:18::22/64';
  t.same(computePeers({ thisNode: a, nodes: [a, b], bgpPeers: [] }).map((p) => p.address), ['198.18.0.22', 'fd00:18::22']);
});

t.test('splitPeerIp', async (t) => {
  t.same(splitPeerIp('10.0.0.1'), { address: '10.0.0.1' });
  t.same(splitPeerIp('10.0.0.1:1179'), { address: '10.0.0.1', port: 1179 });
  t.same(splitPeerIp('[fd00::1]:1179'), { address: 'fd00::1', port: 1179 });
  t.same(splitPeerIp('fd00::1'), { address: 'fd00::1' });
  t.equal(splitPeerIp('nope'), undefined);
});
