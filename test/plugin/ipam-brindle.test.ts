// brindle + brindle-ipam (embedded store in a temp dir) driven through real libcni
// (test/cnitool) inside a node namespace: ADD → CHECK → DEL → DEL for 0.4.0, 1.0.0 and 1.1.0,
// dual-stack, addresses from the node's own blocks, repeated ADD, GC releasing the allocation,
// and an exhausted pool answering 120 with nothing left behind.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ipJson, Scope } from '../helpers/netns';
import { brindleConf, cniWorld, cnitool, globalAddrs, linkNames, nodeNamespace, writeConflist, type CniWorld, type ToolOpts } from '../helpers/cni';
import { EmbeddedDatastore } from '../../lib/datastore/embedded';
import { createPool } from '../../lib/ipam/pools';
import type { IPPoolSpec, Resource } from '../../lib/datastore/types';
import { cidrContains, parseCidr, parseIp } from '../../lib/ip';

const NODE = 'ipamnode1';
const POOL4 = '10.244.0.0/16';
const POOL6 = 'fd00:10:244::/48';

let scope: Scope;
let w: CniWorld;
let node: string;
t.before(() => {
  scope = new Scope();
  w = cniWorld(scope);
  node = nodeNamespace(scope, 1);
});
t.teardown(() => scope.cleanup());

/** Per-test store and dirs: an embedded database, BRINDLE_STATE_DIR and BRINDLE_RUN_DIR of its own. */
function world(name: string) {
  const dir = path.join(w.root, `t-${name}`);
  const env = { BRINDLE_STATE_DIR: path.join(dir, 'state'), BRINDLE_RUN_DIR: path.join(dir, 'run') };
  for (const d of Object.values(env)) fs.mkdirSync(d, { recursive: true });
  const db = path.join(dir, 'brindle.db');
  const conf = (ipam: Record<string, unknown> = {}) => brindleConf(w, {
    type: 'brindle-ipam', assign_ipv6: 'true', default_ipv4_pool: POOL4, default_ipv6_pool: POOL6, ...ipam,
  }, { nodename: NODE, embedded_path: db });
  const run = (verb: string, net: string, pod: string, o: ToolOpts = {}) => cnitool(w, node, verb, net, pod, { ...o, env: { ...env, ...o.env } });
  const read = async <K extends 'IPAMHandle' | 'IPAMBlock'>(kind: K): Promise<Resource<K>[]> => {
    const ds = new EmbeddedDatastore({ embeddedPath: db });
    try { return (await ds.list(kind)).items; } finally { await ds.close(); }
  };
  return { dir, env, db, conf, run, read };
}

const ipsOf = (res: any): string[] => (res?.ips ?? []).map((i: any) => i.address.split('/')[0]);
const hostVeths = () => linkNames(node).filter((n) => n.startsWith('bri'));
const inCidr = (ip: string, cidr: string) => cidrContains(parseCidr(cidr), parseIp(ip));

/** Every address lies in a block affine to NODE. */
function assertNodeBlocks(t: Test, ips: string[], blocks: Resource<'IPAMBlock'>[]): void {
  for (const ip of ips) {
    const b = blocks.find((x) => inCidr(ip, x.spec.cidr));
    t.equal(b?.spec.affinity, `host:${NODE}`, `${ip} from ${NODE}'s block ${b?.spec.cidr}`);
  }
}

for (const [i, v] of ['0.4.0', '1.0.0', '1.1.0'].entries()) {
  t.test(`cniVersion ${v}: ADD → CHECK → DEL → DEL, dual-stack`, async (t) => {
    const x = world(`v${i}`);
    const net = `ipam${i}`;
    writeConflist(w, net, v, [x.conf()]);
    const pod = scope.netns('pod');
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p${i}`;
    const add = x.run('add', net, pod, { args });
    t.equal(add.status, 0, `add: ${add.stdout}${add.stderr}`);
    t.equal(add.json?.cniVersion, v);
    const ips = ipsOf(add.json);
    t.equal(ips.length, 2, `one address per family: ${ips}`);
    t.ok(inCidr(ips[0], POOL4), `${ips[0]} in ${POOL4}`);
    t.ok(inCidr(ips[1], POOL6), `${ips[1]} in ${POOL6}`);
    t.same(globalAddrs(pod).sort(), [`${ips[0]}/32`, `${ips[1]}/128`].sort(), 'pod addresses');
    const hostIf = add.json.interfaces[0].name;
    const hr = [...ipJson(node, ['-4', 'route', 'show', 'dev', hostIf]), ...ipJson(node, ['-6', 'route', 'show', 'dev', hostIf])];
    for (const ip of ips) t.ok(hr.some((r: any) => r.dst === ip), `host route ${ip} dev ${hostIf}`);
    assertNodeBlocks(t, ips, await x.read('IPAMBlock'));
    const handles = await x.read('IPAMHandle');
    t.equal(handles.length, 1, 'one handle');
    t.ok(handles[0]?.spec.handleID.startsWith(`${net}.`), 'handle is <network>.<container id>');
    const chk = x.run('check', net, pod, { args });
    t.equal(chk.status, 0, `check: ${chk.stdout}`);
    const del = x.run('del', net, pod, { args });
    t.equal(del.status, 0, `del: ${del.stdout}`);
    t.same(await x.read('IPAMHandle'), [], 'released');
    t.equal((await x.read('IPAMBlock')).reduce((s, b) => s + Object.keys(b.spec.allocations).length, 0), 0, 'no allocation left');
    t.same(hostVeths(), [], 'host veth gone');
    t.same(linkNames(pod), ['lo'], 'pod eth0 gone');
    const del2 = x.run('del', net, pod, { args });
    t.equal(del2.status, 0, `second del: ${del2.stdout}`);
  });
}

t.test('repeated ADD returns the same addresses and holds one handle', async (t) => {
  const x = world('again');
  writeConflist(w, 'ipamagain', '1.0.0', [x.conf()]);
  const pod = scope.netns('pod');
  const one = x.run('add', 'ipamagain', pod, { containerId: 'again1' });
  const two = x.run('add', 'ipamagain', pod, { containerId: 'again1' });
  t.equal(one.status, 0, one.stdout);
  t.equal(two.status, 0, two.stdout);
  t.same(ipsOf(two.json), ipsOf(one.json), 'same addresses');
  t.same((await x.read('IPAMHandle')).map((h) => h.spec.handleID), ['ipamagain.again1']);
  const blocks = await x.read('IPAMBlock');
  t.equal(blocks.reduce((s, b) => s + Object.keys(b.spec.allocations).length, 0), 2, 'two allocations (v4 + v6)');
  // A second pod on the node comes from the same (node's) blocks.
  const pod2 = scope.netns('pod');
  const three = x.run('add', 'ipamagain', pod2, { containerId: 'again2' });
  t.equal(three.status, 0, three.stdout);
  const all = [...ipsOf(one.json), ...ipsOf(three.json)];
  t.equal(new Set(all).size, 4, 'distinct addresses');
  assertNodeBlocks(t, all, await x.read('IPAMBlock'));
  t.equal((await x.read('IPAMBlock')).length, 2, 'one block per family for the node');
  for (const [p, id] of [[pod, 'again1'], [pod2, 'again2']]) t.equal(x.run('del', 'ipamagain', p, { containerId: id }).status, 0);
  t.same(await x.read('IPAMHandle'), []);
});

t.test('GC (1.1.0) releases the allocations of attachments not in the valid set', async (t) => {
  const x = world('gc');
  writeConflist(w, 'ipamgc', '1.1.0', [x.conf()]);
  const pods = [scope.netns('pod'), scope.netns('pod'), scope.netns('pod')];
  const got: string[][] = [];
  for (const [i, p] of pods.entries()) {
    const r = x.run('add', 'ipamgc', p, { containerId: `gc${i}` });
    t.equal(r.status, 0, r.stdout);
    got.push(ipsOf(r.json));
  }
  t.equal((await x.read('IPAMHandle')).length, 3);
  // Without the runtime's cache GC's only source is the plugins' own state (as after a runtime crash).
  fs.rmSync(path.join(w.cacheDir, 'results'), { recursive: true, force: true });
  const gc = x.run('gc', 'ipamgc', '', { valid: [{ containerID: 'gc1', ifname: 'eth0' }] });
  t.equal(gc.status, 0, `gc: ${gc.stdout}`);
  t.same((await x.read('IPAMHandle')).map((h) => h.spec.handleID), ['ipamgc.gc1'], 'only the valid attachment keeps its handle');
  const blocks = await x.read('IPAMBlock');
  const held = blocks.flatMap((b) => Object.values(b.spec.allocations).map((a) => a.handle));
  t.same(held, ['ipamgc.gc1', 'ipamgc.gc1'], 'only its two addresses stay allocated');
  t.same(hostVeths().length, 1, 'one veth left');
  t.equal(x.run('del', 'ipamgc', pods[1], { containerId: 'gc1' }).status, 0);
  t.same(await x.read('IPAMHandle'), []);
  t.same(hostVeths(), []);
});

t.test('pool exhausted: code 120 naming pool and node, nothing left behind', async (t) => {
  const x = world('full');
  const ds = new EmbeddedDatastore({ embeddedPath: x.db });
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'tiny' }, spec: { cidr: '10.99.0.0/31', blockSize: 31 } as IPPoolSpec });
  await ds.close();
  writeConflist(w, 'ipamfull', '1.0.0', [x.conf({ assign_ipv6: 'false', ipv4_pools: ['tiny'] })]);
  const pods = [scope.netns('pod'), scope.netns('pod'), scope.netns('pod')];
  for (const i of [0, 1]) {
    const r = x.run('add', 'ipamfull', pods[i], { containerId: `full${i}` });
    t.equal(r.status, 0, r.stdout);
    t.ok(inCidr(ipsOf(r.json)[0], '10.99.0.0/31'));
  }
  const before = hostVeths();
  const r = x.run('add', 'ipamfull', pods[2], { containerId: 'full2' });
  t.equal(r.status, 1, 'ADD fails');
  t.equal(r.json?.code, 120, `code 120: ${r.stdout}`);
  t.match(String(r.json?.msg), /tiny/, 'names the pool');
  t.match(String(r.json?.msg), new RegExp(NODE), 'names the node');
  t.same(linkNames(pods[2]), ['lo'], 'pod namespace untouched');
  t.same(hostVeths().sort(), before.sort(), 'no host veth left');
  t.same((await x.read('IPAMHandle')).map((h) => h.spec.handleID).sort(), ['ipamfull.full0', 'ipamfull.full1'], 'no handle for the failed ADD');
  t.ok(fs.existsSync(path.join(w.cacheDir, 'results', 'ipamfull-full0-eth0')), 'libcni cached the successful ADD');
  t.notOk(fs.existsSync(path.join(w.cacheDir, 'results', 'ipamfull-full2-eth0')), 'libcni cached no result for the failed one');
  t.equal(x.run('del', 'ipamfull', pods[2], { containerId: 'full2' }).status, 0, 'DEL of the failed ADD succeeds');
  for (const i of [0, 1]) t.equal(x.run('del', 'ipamfull', pods[i], { containerId: `full${i}` }).status, 0);
  t.same(await x.read('IPAMHandle'), []);
  t.same(hostVeths(), []);
});
