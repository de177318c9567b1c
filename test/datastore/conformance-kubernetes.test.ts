// The conformance suite on the kubernetes backend against the stand-in API server, plus
// what only this backend has: name mapping, Node annotations, 410 Gone, token auth.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubernetesDatastore, KubernetesError, NAME_ANNOTATION, k8sName } from '../../lib/datastore/kubernetes';
import { ExpiredError, UnavailableError } from '../../lib/datastore/types';
import { startFakeApiServer, type FakeApiServer } from '../helpers/fake-apiserver';
import { freePort } from '../helpers/etcd';
import { runConformance } from './conformance';

const TOKEN = 'brindle-test-token';
let api: FakeApiServer;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-k8s-'));
const kubeconfig = path.join(dir, 'kubeconfig');

t.before(async () => {
  api = await startFakeApiServer({ token: TOKEN });
  fs.writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: ${api.url}
  name: test   # a comment
contexts:
- context:
    cluster: test
    user: brindle
  name: test
current-context: test
preferences: {}
users:
- name: brindle
  user:
    token: "${TOKEN}"
`);
});
t.teardown(async () => { await api?.stop(); fs.rmSync(dir, { recursive: true, force: true }); });

t.test('conformance', async (t) => {
  runConformance(t, {
    atomicApply: false,
    async fresh() { api.reset(); return new KubernetesDatastore({ kubeconfig }); },
    async another() { return new KubernetesDatastore({ kubeconfig }); },
    async prepareNode(name) { api.addNode(name, { zone: 'z1' }); },
  });
});

t.test('k8sName', async (t) => {
  const cases = [
    { name: 'valid name kept', input: 'default-ipv4-ippool', same: true },
    { name: 'dotted handle kept', input: 'k8s-pod-network.abc123', same: true },
    { name: 'ipv4 block', input: '10.244.0.0/26', same: false },
    { name: 'ipv6 block', input: 'fd00:10:244::/122', same: false },
    { name: 'capitals', input: 'My_Net.C1', same: false },
  ];
  for (const c of cases) {
    const n = k8sName(c.input);
    t.equal(n === c.input, c.same, c.name);
    t.match(n, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, `${c.name}: a DNS subdomain`);
  }
  t.not(k8sName('a_b'), k8sName('a-b'), 'no collision with a valid name');
  t.not(k8sName('A'), k8sName('a_'), 'distinct invalid names differ');
});

t.test('stored shape: CRD objects and Node annotations', async (t) => {
  api.reset();
  const ds = new KubernetesDatastore({ kubeconfig });
  t.teardown(() => ds.close());
  await ds.create({ kind: 'IPAMBlock', metadata: { name: '10.244.0.0/26' }, spec: { cidr: '10.244.0.0/26', allocations: {}, unallocated: [], sequence: {}, seqNumber: 0 } });
  const raw: any = await (await fetch(`${api.url}/apis/brindle.dev/v1/ipamblocks/${k8sName('10.244.0.0/26')}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
  t.equal(raw.apiVersion, 'brindle.dev/v1');
  t.equal(raw.kind, 'IPAMBlock');
  t.equal(raw.metadata.annotations[NAME_ANNOTATION], '10.244.0.0/26');

  api.addNode('n1');
  await ds.create({ kind: 'Node', metadata: { name: 'n1' }, spec: { bgp: { ipv4Address: '198.18.0.11/24', asNumber: 64513 }, vxlanTunnelMACAddr: '66:00:00:00:00:01' } });
  const node: any = await (await fetch(`${api.url}/api/v1/nodes/n1`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
  t.same(node.metadata.annotations, {
    'brindle.dev/node': 'true', 'brindle.dev/ipv4-address': '198.18.0.11/24', 'brindle.dev/as-number': '64513',
    'brindle.dev/vxlan-tunnel-mac': '66:00:00:00:00:01',
  });
  t.equal(node.metadata.labels['kubernetes.io/hostname'], 'n1', 'kubelet labels kept');
  // Nodes without Brindle annotations are not Brindle Nodes.
  api.addNode('n2');
  t.same((await ds.list('Node')).items.map((n) => n.metadata.name), ['n1']);
  await t.rejects(ds.create({ kind: 'Node', metadata: { name: 'ghost' }, spec: {} }), { name: 'NotFoundError' }, 'no kubelet node');
  // A kubelet heartbeat changes the revision; an unconditional update still lands.
  const n1 = await ds.get('Node', 'n1');
  api.touchNode('n1');
  await t.rejects(ds.update(n1), { name: 'ConflictError' });
  const n1b = await ds.update({ ...n1, metadata: { ...n1.metadata, revision: undefined }, spec: { bgp: { ipv4Address: '198.18.0.12/24' } } });
  t.same(n1b.spec, { bgp: { ipv4Address: '198.18.0.12/24' } });
});

t.test('node watch reports annotation changes', async (t) => {
  api.reset();
  const ds = new KubernetesDatastore({ kubeconfig });
  t.teardown(() => ds.close());
  api.addNode('w1');
  const from = (await ds.list('Node')).revision;
  const events: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const w = ds.watch('Node', from, {
      onEvent: (e) => { events.push(`${e.type} ${e.object.metadata.name}`); if (events.length === 3) { w.close(); resolve(); } },
      onError: reject,
    });
  });
  const a = await ds.create({ kind: 'Node', metadata: { name: 'w1' }, spec: { bgp: { asNumber: 64600 } } });
  await ds.update(a);
  await ds.delete('Node', 'w1');
  await done;
  t.same(events, ['MODIFIED w1', 'MODIFIED w1', 'DELETED w1']);
});

t.test('watch from a revision the server no longer keeps: ExpiredError', async (t) => {
  api.reset();
  const ds = new KubernetesDatastore({ kubeconfig });
  t.teardown(() => ds.close());
  const p = await ds.create({ kind: 'BGPPeer', metadata: { name: 'p1' }, spec: {} });
  await ds.update(p);
  api.compact();
  const err = await new Promise<Error>((resolve) => ds.watch('BGPPeer', p.metadata.revision!, { onEvent: () => {}, onError: resolve }));
  t.type(err, ExpiredError);
});

t.test('authentication and reachability', async (t) => {
  const bad = new KubernetesDatastore({}, { server: api.url, token: 'wrong' });
  const err = await bad.ping().catch((e) => e);
  t.type(err, KubernetesError);
  t.equal(err.status, 401);
  await bad.close();
  const port = await freePort();
  const gone = new KubernetesDatastore({ timeoutMs: 500 }, { server: `http://127.0.0.1:${port}` });
  await t.rejects(gone.get('IPPool', 'x'), UnavailableError);
  await gone.close();
});

t.test('label selectors go to the API server, which selects', async (t) => {
  api.reset();
  const ds = new KubernetesDatastore({ kubeconfig });
  t.teardown(() => ds.close());
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'a', labels: { rack: 'r1' } }, spec: {} });
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'b', labels: { rack: 'r2' } }, spec: {} });
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'c' }, spec: {} });
  const sel = 'rack notin (r1),rack';
  const n = api.selectors.length;
  t.same((await ds.list('BGPPeer', { labelSelector: sel })).items.map((r) => r.metadata.name), ['b']);
  t.same(api.selectors.slice(n), [sel], 'sent as the labelSelector query parameter');
  await t.rejects(ds.list('BGPPeer', { labelSelector: 'rack in (' }), { name: 'LabelSelectorError' });
  t.equal(api.selectors.length, n + 1, 'a malformed selector is not sent');

  // The stand-in answers what the real server does, on its own (raw requests).
  const raw = async (q: string) => {
    const r = await fetch(`${api.url}/apis/brindle.dev/v1/bgppeers?labelSelector=${encodeURIComponent(q)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const j: any = await r.json();
    return r.status === 200 ? j.items.map((o: any) => o.metadata.name) : [r.status, j.reason];
  };
  const cases = [
    { q: 'rack in (r1, r2)', want: ['a', 'b'] },
    { q: 'rack notin (r1)', want: ['b', 'c'] },
    { q: '!rack', want: ['c'] },
    { q: 'rack!=r2', want: ['a', 'c'] },
    { q: 'rack in ()', want: [400, 'BadRequest'] },
    { q: 'rack >> r1', want: [400, 'BadRequest'] },
  ];
  for (const c of cases) t.same(await raw(c.q), c.want, `stand-in: ${c.q}`);
});
