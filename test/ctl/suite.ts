// Every brindlectl command against one backend (embedded or etcd): apply/get/delete,
// config set/get, ipam show/check/release — through the real binary, checking the store
// with the library afterwards.
import type { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDatastore } from '../../lib/datastore/open';
import { datastoreSettings } from '../../lib/datastore/settings';
import type { Datastore } from '../../lib/datastore/types';
import { Ipam } from '../../lib/ipam/allocator';
import { parseYamlDocuments } from '../../lib/ctl/yaml';
import { POOL_A, brindlectl } from './helpers';

export function ctlSuite(t: Test, env: () => Record<string, string>): void {
  const ctl = (args: string[], input?: string) => brindlectl(args, { env: env(), input });
  const store = (): Datastore => openDatastore(datastoreSettings({}, env()));

  t.test('apply creates, re-apply is unchanged, a change configures', async (t) => {
    let r = await ctl(['apply', '-f', '-'], POOL_A);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /ippool\/pool-a created/);
    r = await ctl(['apply', '-f', '-'], POOL_A);
    t.match(r.stdout, /ippool\/pool-a unchanged/);
    r = await ctl(['apply', '-f', '-'], POOL_A.replace('blockSize: 26', 'blockSize: 26\n  natOutgoing: true'));
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /ippool\/pool-a configured/);
    const ds = store();
    t.teardown(() => ds.close());
    const p = await ds.get('IPPool', 'pool-a');
    t.same(p.spec, { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, nodeSelector: 'all()', disabled: false });
  });

  t.test('apply many kinds from a file, JSON too', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'all.yaml');
    fs.writeFileSync(file, `# several kinds
apiVersion: brindle.dev/v1
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 198.18.0.1
  asNumber: 64600
  password: s3cret
---
apiVersion: brindle.dev/v1
kind: IPAMConfig
metadata: {name: default}
spec:
  strictAffinity: true
  maxBlocksPerHost: 4
---
apiVersion: brindle.dev/v1
kind: Node
metadata:
  name: node-a
  labels: {route-reflector: "true"}
spec:
  bgp:
    ipv4Address: 198.18.0.11/24
    routeReflectorClusterID: 224.0.0.1
`);
    let r = await ctl(['apply', '-f', file]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /bgppeer\/tor created\nipamconfig\/default created\nnode\/node-a created/);
    // A Node document merges: the address the agent registered stays.
    r = await ctl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'brindle.dev/v1', kind: 'Node', metadata: { name: 'node-a', labels: { zone: 'b' } }, spec: { bgp: { asNumber: 64700 } } }));
    t.equal(r.code, 0, r.stderr);
    const ds = store();
    t.teardown(() => ds.close());
    const n = await ds.get('Node', 'node-a');
    t.same(n.spec.bgp, { ipv4Address: '198.18.0.11/24', routeReflectorClusterID: '224.0.0.1', asNumber: 64700 });
    t.same(n.metadata.labels, { zone: 'b' });
    const c = await ds.get('IPAMConfig', 'default');
    t.same(c.spec, { strictAffinity: true, maxBlocksPerHost: 4, autoAllocateBlocks: true });
  });

  t.test('get: tables, kinds by any name, yaml and json round-trip through apply', async (t) => {
    for (const kind of ['ippool', 'IPPools', 'pool', 'ipp']) {
      const r = await ctl(['get', kind]);
      t.equal(r.code, 0, r.stderr);
      t.match(r.stdout, /^NAME\s+CIDR\s+SELECTOR\npool-a\s+10\.244\.0\.0\/16\s+all\(\)\n$/, kind);
    }
    let r = await ctl(['get', 'pools', '-o', 'wide']);
    t.match(r.stdout, /NAT\s+IPIPMODE\s+VXLANMODE/);
    r = await ctl(['get', 'bgppeers']);
    t.match(r.stdout, /tor\s+198\.18\.0\.1\s+\(global\)\s+64600/);
    r = await ctl(['get', 'peer', 'tor', '-o', 'wide']);
    t.match(r.stdout, /PASSWORD/);
    t.notMatch(r.stdout, /s3cret/, 'passwords are not printed in tables');
    r = await ctl(['get', 'nodes', '-o', 'wide']);
    t.match(r.stdout, /node-a\s+64700\s+198\.18\.0\.11\/24/);
    r = await ctl(['get', 'ipamconfig']);
    t.match(r.stdout, /default\s+true\s+4\s+true/);

    r = await ctl(['get', 'ippool', 'pool-a', '-o', 'yaml']);
    t.equal(r.code, 0, r.stderr);
    const doc = parseYamlDocuments(r.stdout)[0].value as any;
    t.equal(doc.kind, 'IPPool');
    t.equal(doc.spec.cidr, '10.244.0.0/16');
    r = await ctl(['apply', '-f', '-'], r.stdout);
    t.match(r.stdout, /ippool\/pool-a unchanged/, 'yaml output applies back unchanged');

    r = await ctl(['get', 'pools', '-o', 'json']);
    const list = JSON.parse(r.stdout);
    t.equal(list.kind, 'List');
    t.equal(list.items[0].metadata.name, 'pool-a');
    r = await ctl(['apply', '-f', '-'], r.stdout);
    t.match(r.stdout, /ippool\/pool-a unchanged/, 'json List applies back unchanged');

    r = await ctl(['get', 'ippool', 'nope']);
    t.equal(r.code, 1);
    t.match(r.stderr, /nope/);
    r = await ctl(['get', 'bgpconfig']);
    t.equal(r.code, 0);
    t.match(r.stderr, /No BGPConfiguration resources found/);
  });

  t.test('config set/get', async (t) => {
    let r = await ctl(['config', 'get', 'node-to-node-mesh']);
    t.equal(r.stdout, 'on\n', 'mesh on by default');
    r = await ctl(['config', 'get', 'as']);
    t.equal(r.stdout, '64512\n', 'AS 64512 by default');
    r = await ctl(['config', 'set', 'node-to-node-mesh', 'off']);
    t.equal(r.code, 0, r.stderr);
    r = await ctl(['config', 'set', 'as', '64513']);
    t.equal(r.code, 0, r.stderr);
    t.equal((await ctl(['config', 'get', 'node-to-node-mesh'])).stdout, 'off\n');
    t.equal((await ctl(['config', 'get', 'as'])).stdout, '64513\n');
    r = await ctl(['config', 'set', 'as', '64513']);
    t.match(r.stdout, /already/);
    const ds = store();
    t.teardown(() => ds.close());
    const c = await ds.get('BGPConfiguration', 'default');
    t.same(c.spec, { nodeToNodeMeshEnabled: false, asNumber: 64513 });
    r = await ctl(['get', 'bgpconfig']);
    t.match(r.stdout, /default\s+Info\s+false\s+64513/);
    r = await ctl(['config', 'set', 'node-to-node-mesh', 'on']);
    t.equal((await ctl(['config', 'get', 'node-to-node-mesh'])).stdout, 'on\n');
  });

  t.test('ipam show, --show-blocks, --ip, check, release', async (t) => {
    const ds = store();
    t.teardown(() => ds.close());
    const ipam = new Ipam(ds);
    const a = await ipam.autoAssign({ handle: 'net.c1', node: 'node-a', num4: 1, attrs: { pod: 'web-1', namespace: 'shop', node: 'node-a' } });
    const b = await ipam.autoAssign({ handle: 'net.c2', node: 'node-b', num4: 2, attrs: { pod: 'db-1', namespace: 'shop', node: 'node-b' } });
    let r = await ctl(['ipam', 'show']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /IP Pool\s+\|\s+10\.244\.0\.0\/16\s+\|\s+pool-a\s+\|\s+65536\s+\|\s+3 \(<0\.1%\)/);
    t.match(r.stdout, /\[█░+\]/);
    t.notMatch(r.stdout, /Block/);
    r = await ctl(['ipam', 'show', '--show-blocks']);
    t.match(r.stdout, /Block\s+\|\s+10\.244\.\S+\/26\s+\|\s+node-a\s+\|\s+64\s+\|\s+1\/64/);
    t.match(r.stdout, /Block\s+\|\s+10\.244\.\S+\/26\s+\|\s+node-b\s+\|\s+64\s+\|\s+2\/64/);
    r = await ctl(['ipam', 'show', '-o', 'json']);
    t.equal(JSON.parse(r.stdout)[0].inUse, 3);

    r = await ctl(['ipam', 'show', '--ip', a.ips4[0]]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /handle:\s+net\.c1/);
    t.match(r.stdout, /pod:\s+web-1/);
    t.match(r.stdout, /namespace:\s+shop/);
    t.match(r.stdout, /node:\s+node-a/);
    r = await ctl(['ipam', 'show', '--ip', '10.99.0.1']);
    t.match(r.stdout, /not in any IP pool/);

    r = await ctl(['ipam', 'check']);
    t.equal(r.code, 0, r.stdout + r.stderr);
    t.match(r.stdout, /consistent/);

    r = await ctl(['ipam', 'release', '--ip', a.ips4[0]]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`released ${a.ips4[0].replace(/\./g, '\\.')}`));
    r = await ctl(['ipam', 'release', '--ip', a.ips4[0]]);
    t.equal(r.code, 1, 'releasing a free address fails');
    t.match(r.stderr, a.ips4[0]);
    r = await ctl(['ipam', 'release', '--handle', 'net.c2']);
    t.equal(r.code, 0, r.stderr);
    for (const ip of b.ips4) t.match(r.stdout, ip);
    r = await ctl(['ipam', 'release', '--handle', 'net.c2']);
    t.equal(r.code, 1);
    t.match(r.stderr, /net\.c2/);
    r = await ctl(['ipam', 'show', '-o', 'json']);
    t.equal(JSON.parse(r.stdout)[0].inUse, 0);

    // Something wrong: an address whose handle is gone. check reports it and exits 1.
    const c = await ipam.autoAssign({ handle: 'net.c3', node: 'node-a', num4: 1 });
    await ds.delete('IPAMHandle', 'net.c3');
    r = await ctl(['ipam', 'check']);
    t.equal(r.code, 1, 'inconsistent store exits 1');
    t.match(r.stdout, /allocationWithoutHandle/);
    t.match(r.stdout, c.ips4[0]);
    await ipam.releaseIps([c.ips4[0]]);
  });

  t.test('delete', async (t) => {
    let r = await ctl(['delete', 'bgppeer', 'tor']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /bgppeer\/tor deleted/);
    r = await ctl(['delete', 'bgppeer', 'tor']);
    t.equal(r.code, 1);
    t.match(r.stderr, /tor/);
    r = await ctl(['delete', '-f', '-'], POOL_A);
    t.equal(r.code, 0, r.stderr);
    r = await ctl(['get', 'pools']);
    t.match(r.stderr, /No IPPool/);
  });
}
