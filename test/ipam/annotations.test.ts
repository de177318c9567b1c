// Pod and namespace annotations (kubernetes backend): brindle.dev/ipv4pools, ipv6pools and
// ipAddrs choose pools and addresses, end to end through ipamAdd against the stand-in API
// server (pods and namespaces served by GET, as the real one does).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ipamAdd, ipamDel } from '../../lib/ipam/cni';
import { createPool } from '../../lib/ipam/pools';
import { CniError, ERR_INVALID_CONFIG } from '../../lib/cni/errors';
import type { CniRequest, NetConf } from '../../lib/cni/types';
import { KubernetesDatastore } from '../../lib/datastore/kubernetes';
import type { IPPoolSpec } from '../../lib/datastore/types';
import { cidrContains, parseCidr, parseIp } from '../../lib/ip';
import { startFakeApiServer, type FakeApiServer } from '../helpers/fake-apiserver';

const TOKEN = 'annotations-token';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-ipam-ann-'));
const kubeconfig = path.join(dir, 'kubeconfig');
process.env.BRINDLE_RUN_DIR = dir;
let api: FakeApiServer;

t.before(async () => {
  api = await startFakeApiServer({ token: TOKEN });
  fs.writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters:
- cluster: {server: "${api.url}"}
  name: c
contexts:
- context: {cluster: c, user: u}
  name: c
current-context: c
users:
- name: u
  user: {token: "${TOKEN}"}
`);
  api.addNode('node1');
  const ds = new KubernetesDatastore({ kubeconfig });
  const pools: [string, string][] = [['default4', '10.244.0.0/16'], ['blue4', '10.50.0.0/16'], ['red4', '10.60.0.0/16'], ['default6', 'fd00:10:244::/48'], ['blue6', 'fd00:50::/48']];
  for (const [name, cidr] of pools) await createPool(ds, { kind: 'IPPool', metadata: { name }, spec: { cidr } as IPPoolSpec });
  await ds.close();
  api.addNamespace('plain');
  api.addNamespace('blue', { 'brindle.dev/ipv4pools': '["blue4"]', 'brindle.dev/ipv6pools': '["blue6"]' });
  api.addPod('plain', 'p-default');
  api.addPod('blue', 'p-inherits');
  api.addPod('blue', 'p-red', { 'brindle.dev/ipv4pools': '["10.60.0.0/16"]' });
  api.addPod('plain', 'p-fixed', { 'brindle.dev/ipAddrs': '["10.244.200.7", "fd00:10:244::77"]' });
  api.addPod('plain', 'p-bad', { 'brindle.dev/ipv4pools': 'blue4' });
  api.addPod('plain', 'p-nopool', { 'brindle.dev/ipv4pools': '["missing"]' });
});
t.teardown(async () => { await api?.stop(); fs.rmSync(dir, { recursive: true, force: true }); });

function req(verb: CniRequest['verb'], containerId: string, ns: string, pod: string, ipam: Record<string, unknown> = {}): CniRequest {
  const config = {
    cniVersion: '1.0.0', name: 'k8snet', type: 'brindle-ipam', nodename: 'node1',
    datastore_type: 'kubernetes', kubernetes: { kubeconfig },
    ipam: { type: 'brindle-ipam', ...ipam },
  } as unknown as NetConf;
  return { verb, containerId, netns: '/var/run/netns/x', ifname: 'eth0', args: { K8S_POD_NAMESPACE: ns, K8S_POD_NAME: pod, IgnoreUnknown: '1' }, path: [], config };
}

const inCidr = (addr: string, cidr: string) => cidrContains(parseCidr(cidr), parseIp(addr.split('/')[0]));

t.test('the backend reads pod and namespace annotations; missing objects have none', async (t) => {
  const ds = new KubernetesDatastore({ kubeconfig });
  t.same(await ds.namespaceAnnotations('blue'), { 'brindle.dev/ipv4pools': '["blue4"]', 'brindle.dev/ipv6pools': '["blue6"]' });
  t.same(await ds.podAnnotations('blue', 'p-red'), { 'brindle.dev/ipv4pools': '["10.60.0.0/16"]' });
  t.same(await ds.podAnnotations('blue', 'nope'), {});
  t.same(await ds.namespaceAnnotations('nope'), {});
  await ds.close();
});

const cases: { name: string; ns: string; pod: string; ipam?: Record<string, unknown>; want?: string[]; exact?: string[]; code?: number }[] = [
  { name: 'no annotations: the config\'s pools', ns: 'plain', pod: 'p-default', ipam: { assign_ipv6: 'true', ipv4_pools: ['default4'], ipv6_pools: ['default6'] }, want: ['10.244.0.0/16', 'fd00:10:244::/48'] },
  { name: 'pod not in the API: the config\'s pools', ns: 'plain', pod: 'ghost', ipam: { ipv4_pools: ['default4'] }, want: ['10.244.0.0/16'] },
  { name: 'namespace ipv4pools + ipv6pools apply to its pods', ns: 'blue', pod: 'p-inherits', ipam: { assign_ipv6: 'true' }, want: ['10.50.0.0/16', 'fd00:50::/48'] },
  { name: 'the pod annotation overrides the namespace (pool by CIDR)', ns: 'blue', pod: 'p-red', ipam: { assign_ipv6: 'true', ipv4_pools: ['default4'], ipv6_pools: ['default6'] }, want: ['10.60.0.0/16', 'fd00:50::/48'] },
  { name: 'annotations override ipv4_pools of the config', ns: 'blue', pod: 'p-inherits', ipam: { ipv4_pools: ['red4'] }, want: ['10.50.0.0/16'] },
  { name: 'ipAddrs: exactly these addresses', ns: 'plain', pod: 'p-fixed', exact: ['10.244.200.7/32', 'fd00:10:244::77/128'] },
  { name: 'malformed annotation: invalid config (7)', ns: 'plain', pod: 'p-bad', code: ERR_INVALID_CONFIG },
  { name: 'annotation naming no pool: 122', ns: 'plain', pod: 'p-nopool', code: 122 },
];

for (const [i, c] of cases.entries()) {
  t.test(c.name, async (t) => {
    const id = `c${i}`;
    let got: string[] = [];
    try {
      const r = await ipamAdd(req('ADD', id, c.ns, c.pod, c.ipam));
      got = (r.ips ?? []).map((x) => x.address);
      t.notOk(c.code, `expected code ${c.code}, got ${got.join(', ')}`);
    } catch (err) {
      if (!(err instanceof CniError)) throw err;
      t.equal(err.code, c.code, err.msg);
    }
    if (c.want) {
      t.equal(got.length, c.want.length, got.join(', '));
      c.want.forEach((cidr, k) => t.ok(got[k] && inCidr(got[k], cidr), `${got[k]} in ${cidr}`));
    }
    if (c.exact) t.same(got, c.exact);
    await ipamDel(req('DEL', id, c.ns, c.pod, c.ipam));
    const ds = new KubernetesDatastore({ kubeconfig });
    const handles = (await ds.list('IPAMHandle')).items.map((h) => h.spec.handleID);
    t.notOk(handles.includes(`k8snet.${id}`), 'released by DEL (nothing left on failure)');
    await ds.close();
  });
}
