// lib/ipam/cni.ts in-process against the embedded store: the verbs, repeated ADD, specific
// addresses, GC, error codes naming pool and node, and code 11 when etcd is unreachable.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../lib/ipam/cni';
import { CniError } from '../../lib/cni/errors';
import type { CniRequest, NetConf } from '../../lib/cni/types';
import { EmbeddedDatastore } from '../../lib/datastore/embedded';
import { freePort } from '../helpers/etcd';
import { cidrContains, parseCidr, parseIp } from '../../lib/ip';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-ipam-cni-'));
process.env.BRINDLE_RUN_DIR = dir;
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function req(verb: CniRequest['verb'], containerId: string, conf: Partial<NetConf> & { ipam?: Record<string, unknown> }, args: Record<string, string> = {}): CniRequest {
  const config = { cniVersion: '1.1.0', name: 'net1', type: 'brindle-ipam', nodename: 'node1', embedded_path: path.join(dir, 'db'), ...conf } as NetConf;
  config.ipam = { type: 'brindle-ipam', ...(conf.ipam ?? {}) };
  return { verb, containerId, netns: '/var/run/netns/x', ifname: 'eth0', args, path: [], config };
}

async function code(p: Promise<unknown>): Promise<{ code: number; msg: string } | undefined> {
  try { await p; return undefined; } catch (err) {
    if (!(err instanceof CniError)) throw err;
    return { code: err.code, msg: err.msg };
  }
}

t.test('ADD, repeated ADD, CHECK, DEL twice (dual-stack)', async (t) => {
  const conf = { ipam: { assign_ipv6: 'true', default_ipv6_pool: 'fd00:10:244::/48' } };
  const r = await ipamAdd(req('ADD', 'c1', conf));
  t.equal(r.cniVersion, '1.1.0');
  t.equal(r.ips?.length, 2);
  const [v4, v6] = (r.ips ?? []).map((x) => x.address);
  t.ok(v4.endsWith('/32') && cidrContains(parseCidr('10.244.0.0/16'), parseIp(v4.split('/')[0])), `${v4} in the default pool`);
  t.ok(v6.endsWith('/128') && cidrContains(parseCidr('fd00:10:244::/48'), parseIp(v6.split('/')[0])), `${v6} in the ipv6 pool`);
  // Both from blocks affine to node1 (the claim starts at a hash of the node name: assert the invariant, not the block).
  const ds = new EmbeddedDatastore({ embeddedPath: path.join(dir, 'db') });
  const blocks = (await ds.list('IPAMBlock')).items;
  await ds.close();
  for (const a of [v4, v6]) {
    const ip = parseIp(a.split('/')[0]);
    const b = blocks.find((x) => cidrContains(parseCidr(x.spec.cidr), ip));
    t.equal(b?.spec.affinity, 'host:node1', `${a} from node1's block ${b?.spec.cidr}`);
  }
  t.same(await ipamAdd(req('ADD', 'c1', conf)), r, 'repeated ADD returns the same');
  await ipamCheck(req('CHECK', 'c1', { ...conf, prevResult: r }));
  const bad = await code(ipamCheck(req('CHECK', 'c1', { ...conf, prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.244.9.9/32' }] } })));
  t.equal(bad?.code, 102);
  await ipamDel(req('DEL', 'c1', conf));
  await ipamDel(req('DEL', 'c1', conf));
  t.equal((await code(ipamCheck(req('CHECK', 'c1', { ...conf, prevResult: r }))))?.code, 102);
  await ipamStatus(req('STATUS', '', conf));
});

t.test('specific addresses: IP= and the ips capability; taken -> 124 naming the address', async (t) => {
  const a = await ipamAdd(req('ADD', 's1', {}, { IP: '10.244.7.7', IgnoreUnknown: 'true' }));
  t.same(a.ips, [{ address: '10.244.7.7/32' }]);
  const b = await ipamAdd(req('ADD', 's2', { runtimeConfig: { ips: ['10.244.7.8/24'] } }));
  t.same(b.ips, [{ address: '10.244.7.8/32' }]);
  const c = await code(ipamAdd(req('ADD', 's3', {}, { IP: '10.244.7.7' })));
  t.equal(c?.code, 124);
  t.match(String(c?.msg), /10\.244\.7\.7/);
  await ipamDel(req('DEL', 's1', {}));
  await ipamDel(req('DEL', 's2', {}));
});

t.test('errors: exhausted pool (120), no pool for node (122), names pool and node', async (t) => {
  const ds = new EmbeddedDatastore({ embeddedPath: path.join(dir, 'db2') });
  await ds.create({ kind: 'IPPool', metadata: { name: 'tiny' }, spec: { cidr: '10.9.0.0/31', blockSize: 31, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()', disabled: false } });
  await ds.create({ kind: 'IPPool', metadata: { name: 'east' }, spec: { cidr: '10.8.0.0/24', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: "zone == 'east'", disabled: false } });
  await ds.close();
  const conf = { embedded_path: path.join(dir, 'db2'), ipam: { ipv4_pools: ['tiny'] } };
  await ipamAdd(req('ADD', 'e1', conf));
  await ipamAdd(req('ADD', 'e2', conf));
  const e = await code(ipamAdd(req('ADD', 'e3', conf)));
  t.equal(e?.code, 120);
  t.match(String(e?.msg), /pool tiny exhausted for node node1/);
  const n = await code(ipamAdd(req('ADD', 'e4', { embedded_path: path.join(dir, 'db2'), ipam: { ipv4_pools: ['east'] } })));
  t.equal(n?.code, 122);
  t.match(String(n?.msg), /east selects node node1/);
  const v6 = await code(ipamAdd(req('ADD', 'e5', { embedded_path: path.join(dir, 'db2'), ipam: { assign_ipv4: 'false', assign_ipv6: 'true' } })));
  t.equal(v6?.code, 122);
});

t.test('GC releases this network\'s handles not among the valid attachments', async (t) => {
  const conf = { embedded_path: path.join(dir, 'db3') };
  for (const id of ['g1', 'g2', 'g3']) await ipamAdd(req('ADD', id, conf));
  await ipamAdd(req('ADD', 'g9', { ...conf, name: 'other' }));
  await ipamGc(req('GC', '', { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'eth0' }] }));
  const ds = new EmbeddedDatastore({ embeddedPath: path.join(dir, 'db3') });
  const { items } = await ds.list('IPAMHandle');
  t.same(items.map((h) => h.spec.handleID).sort(), ['net1.g2', 'other.g9']);
  await ds.close();
});

t.test('embedded store: an ADD stuck behind the node lock is code 11 within the deadline', async (t) => {
  // The local store's verbs are synchronous except waiting for the per-node lock while another
  // process holds it: that wait arms the deadline (an uncontended ADD starts no timer at all).
  const { spawn } = await import('node:child_process');
  const lockFile = path.join(dir, 'ipam-stucknode.lock');
  fs.writeFileSync(lockFile, '');
  const holder = spawn('flock', [lockFile, 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => { holder.kill('SIGKILL'); });
  for (let i = 0; i < 100 && !holder.pid; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 200)); // flock(1) has taken it
  const conf = { nodename: 'stucknode', embedded_path: path.join(dir, 'db-stuck'), datastore_timeout_ms: 100 };
  const t0 = Date.now();
  const e = await code(ipamAdd(req('ADD', 's1', conf)));
  const took = Date.now() - t0;
  t.equal(e?.code, 11, String(e?.msg));
  t.match(e?.msg, /did not answer within 5000 ms/);
  t.ok(took >= 4900 && took < 7000, `answered after ${took} ms`);
  // (In this test process the abandoned claim would go on once the lock frees; a plugin
  // process answers and exits, which ends it.)
});

t.test('etcd unreachable: code 11 within the deadline, STATUS 50', async (t) => {
  const port = await freePort();
  const conf = { datastore_type: 'etcd', etcd_endpoints: [`http://127.0.0.1:${port}`], datastore_timeout_ms: 500 };
  const t0 = Date.now();
  const e = await code(ipamAdd(req('ADD', 'u1', conf)));
  const took = Date.now() - t0;
  t.equal(e?.code, 11, String(e?.msg));
  t.ok(took < 5500, `answered in ${took} ms`);
  t.equal((await code(ipamDel(req('DEL', 'u1', conf))))?.code, 11);
  t.equal((await code(ipamStatus(req('STATUS', '', conf))))?.code, 50);
});
