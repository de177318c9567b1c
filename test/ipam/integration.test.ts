// 10 simulated nodes x 50 concurrent allocations against a real etcd and the embedded store:
// every address unique, every block owned by one node, the store consistent, all released after DEL.
import t from 'tap';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Test = any;
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../lib/ipam/allocator';
import { createPool } from '../../lib/ipam/pools';
import { openDatastore } from '../../lib/datastore/open';
import type { Datastore, DatastoreSettings, IPPoolSpec } from '../../lib/datastore/types';
import { startEtcd } from '../helpers/etcd';

const NODES = 10, PER_NODE = 50;
const CACHE = Number(process.env.IPAM_CACHE_MS ?? 0);

async function storm(t: Test, settings: DatastoreSettings): Promise<void> {
  // One datastore client per simulated node, as separate hosts would have.
  const stores: Datastore[] = Array.from({ length: NODES }, () => openDatastore(settings));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  await createPool(stores[0], { kind: 'IPPool', metadata: { name: 'pods' }, spec: { cidr: '10.244.0.0/16' } as IPPoolSpec });
  await createPool(stores[0], { kind: 'IPPool', metadata: { name: 'pods6' }, spec: { cidr: 'fd00:10:244::/48' } as IPPoolSpec });
  const ipams = stores.map((s) => new Ipam(s, { cacheTtlMs: CACHE }));
  const jobs: Promise<{ node: string; ips: string[]; blocks: string[] }>[] = [];
  for (let n = 0; n < NODES; n++) {
    for (let i = 0; i < PER_NODE; i++) {
      const node = `node${n}`;
      jobs.push(ipams[n].autoAssign({ handle: `net.${node}-c${i}`, node, num4: 1, num6: i % 10 === 0 ? 1 : 0 })
        .then((r) => ({ node, ips: [...r.ips4, ...r.ips6], blocks: r.assignments.map((a) => a.block) })));
    }
  }
  let t0 = Date.now();
  const res = await Promise.all(jobs);
  const allocMs = Date.now() - t0;
  const ips = res.flatMap((r) => r.ips);
  t.equal(ips.length, NODES * PER_NODE + NODES * PER_NODE / 10);
  t.equal(new Set(ips).size, ips.length, 'every address unique');
  const { items: blocks } = await stores[0].list('IPAMBlock');
  const owner = new Map(blocks.map((b) => [b.spec.cidr, b.spec.affinity]));
  t.equal(owner.size, blocks.length);
  // Each node got its addresses from its own blocks (nothing to borrow with a /16 to claim from).
  for (const r of res) for (const b of r.blocks) t.equal(owner.get(b), `host:${r.node}`);
  const affs = (await stores[0].list('BlockAffinity')).items;
  t.equal(new Set(affs.map((a) => a.spec.cidr)).size, affs.length, 'every block owned by one node');
  t.ok(blocks.length <= NODES * 2 + NODES, `${blocks.length} blocks for ${NODES} nodes`);
  const rep = await ipams[0].checkConsistency({ validHandles: res.map((_, i) => `net.node${Math.floor(i / PER_NODE)}-c${i % PER_NODE}`) });
  t.ok(rep.ok, JSON.stringify(rep.problems.slice(0, 5)));
  const stats = ipams.reduce((s, i) => ({ conflicts: s.conflicts + i.stats.conflicts, claims: s.claims + i.stats.claims }), { conflicts: 0, claims: 0 });
  t0 = Date.now();
  // Each node's DELs run on that node (its queue), as the plugin does.
  await Promise.all(res.map((_, i) => ipams[Math.floor(i / PER_NODE)].releaseByHandle(`net.node${Math.floor(i / PER_NODE)}-c${i % PER_NODE}`, { node: `node${Math.floor(i / PER_NODE)}` })));
  t.comment(`${settings.type}: ${blocks.length} blocks, ${stats.claims} claims, ${stats.conflicts} conflicts; ${res.length} allocations in ${allocMs} ms, releases in ${Date.now() - t0} ms`);
  t.equal((await stores[0].list('IPAMHandle')).items.length, 0, 'no handle left');
  const after = (await stores[0].list('IPAMBlock')).items;
  t.equal(after.reduce((s, b) => s + Object.keys(b.spec.allocations).length, 0), 0, 'all released');
  t.ok((await ipams[0].checkConsistency()).ok);
  const freed = await Promise.all(Array.from({ length: NODES }, (_, n) => ipams[n].releaseEmptyBlocks(`node${n}`)));
  t.equal(freed.flat().length, after.length, 'empty blocks released');
}

t.test('embedded store', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-ipam-int-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await storm(t, { type: 'embedded', embeddedPath: path.join(dir, 'db'), timeoutMs: 10000 });
});

t.test('etcd', async (t) => {
  const etcd = await startEtcd({ unsafeNoFsync: true });
  t.teardown(() => etcd.stop());
  await storm(t, { type: 'etcd', etcdEndpoints: [etcd.endpoint], timeoutMs: 5000 });
});
