// The pod-existence leak check against the fake API server. The fake cannot delete pods, so a
// small proxy in front of it hides "deleted" pods from pod lists (the helper stays untouched).
import t from 'tap';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeApiServer } from '../helpers/fake-apiserver';
import { KubernetesDatastore } from '../../lib/datastore/kubernetes';
import { KubePodInventory } from '../../lib/controller/kube';
import { Controller } from '../../lib/controller/controller';
import { Ipam } from '../../lib/ipam/allocator';
import { createPool } from '../../lib/ipam/pools';
import type { IPPoolSpec } from '../../lib/datastore/types';
import { TestClock, quiet } from './fixtures';

async function hidingProxy(upstream: string, hidden: Set<string>): Promise<{ url: string; stop(): Promise<void> }> {
  const up = new URL(upstream);
  const srv = http.createServer((req, res) => {
    const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      const m = req.url!.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods(\?|$)/);
      if (!m || r.statusCode !== 200) { res.writeHead(r.statusCode!, r.headers); r.pipe(res); return; }
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        json.items = json.items.filter((p: any) => !hidden.has(`${p.metadata.namespace}/${p.metadata.name}`));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    });
    req.pipe(fwd);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, stop: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

t.test('kubernetes: addresses of missing pods are released after two sightings; k8s nodes count as live', async (t) => {
  const api = await startFakeApiServer();
  t.teardown(() => api.stop());
  const hidden = new Set<string>();
  const proxy = await hidingProxy(api.url, hidden);
  t.teardown(() => proxy.stop());
  const ds = new KubernetesDatastore({ timeoutMs: 5000 }, { server: api.url });
  t.teardown(() => ds.close());
  const pods = new KubePodInventory({ server: proxy.url }, 5000);
  t.teardown(() => pods.close());

  api.addNode('n1');
  api.addNode('n2'); // no Brindle Node yet (agent not registered): still live
  await ds.create({ kind: 'Node', metadata: { name: 'n1' }, spec: {} });
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/24', blockSize: 28 } as IPPoolSpec });
  api.addNamespace('default');
  for (const p of ['p1', 'p2', 'p4']) api.addPod('default', p);
  const ipam = new Ipam(ds, { sleep: async () => undefined, blockSearch: 'ordered' });
  const ip = async (handle: string, node: string, pod?: string) =>
    (await ipam.autoAssign({ handle, node, num4: 1, attrs: { node, ...(pod ? { pod, namespace: 'default' } : {}) } })).ips4[0];
  const ip1 = await ip('net.c1', 'n1', 'p1');
  const ip2 = await ip('net.c2', 'n1', 'p2');
  const ip3 = await ip('net.c3', 'n1', 'p3'); // never existed
  const ip4 = await ip('net.c4', 'n2', 'p4');
  const tunnel = await ip('vxlan-tunnel-addr-n1', 'n1'); // no pod attrs: never pod-checked

  const clock = new TestClock();
  const ctl = new Controller({ ds, pods, clock, log: quiet, nodeGraceMs: 0, blockGraceMs: 3_600_000, leakGraceMs: 60_000 });
  hidden.add('default/p2'); // deleted after its ADD, DEL never came
  let s = await ctl.pass();
  t.same(s.errors, []);
  t.same(s.nodes.gone, [], 'n2 has a Kubernetes Node: not gone');
  t.equal(s.leaks.candidates, 2);
  t.same(s.leaks.released, []);
  clock.t += 30_000;
  hidden.delete('default/p2'); // p2 reappears (stale list): its sighting is forgotten
  s = await ctl.pass();
  t.equal(s.leaks.candidates, 1);
  hidden.add('default/p2');
  clock.t += 30_000;
  s = await ctl.pass();
  t.same(s.leaks.released.map((l) => l.ip), [ip3], 'p3 seen twice 60 s apart; p2 only once since it came back');
  t.match(s.leaks.released[0], { handle: 'net.c3', seq: 1, reason: /pod default\/p3 does not exist/ });
  clock.t += 60_000;
  s = await ctl.pass();
  t.same(s.leaks.released.map((l) => l.ip), [ip2]);
  const left = (await ds.list('IPAMBlock')).items.flatMap((b) => Object.values(b.spec.allocations).map((a) => a.handle)).sort();
  t.same(left, ['net.c1', 'net.c4', 'vxlan-tunnel-addr-n1']);
  t.ok(ip1 && ip4 && tunnel);
  t.same((await ds.list('IPAMHandle')).items.map((h) => h.metadata.name).sort(), ['net.c1', 'net.c4', 'vxlan-tunnel-addr-n1']);
});

t.test('kubernetes: an API error listing pods is reported and changes nothing', async (t) => {
  const api = await startFakeApiServer({ token: 'secret' });
  t.teardown(() => api.stop());
  const pods = new KubePodInventory({ server: api.url, token: 'wrong' }, 5000);
  t.teardown(() => pods.close());
  await t.rejects(pods.pods('default'), { name: 'KubernetesError', status: 401 });
  await t.rejects(pods.nodes(), { name: 'KubernetesError', status: 401 });
});
