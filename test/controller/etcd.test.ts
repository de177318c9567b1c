// `brindle controller --once -o json` through its entry's run() against a real etcd.
import t from 'tap';
import { startEtcd } from '../helpers/etcd';
import { openDatastore } from '../../lib/datastore/open';
import { Ipam } from '../../lib/ipam/allocator';
import { createPool } from '../../lib/ipam/pools';
import type { IPPoolSpec } from '../../lib/datastore/types';
import { run } from '../../plugins/controller/main';

t.test('etcd: --once cleans a deleted node, an empty block and a leaked allocation', async (t) => {
  const etcd = await startEtcd({ unsafeNoFsync: true });
  t.teardown(() => etcd.stop());
  const saved = { DATASTORE_TYPE: process.env.DATASTORE_TYPE, ETCD_ENDPOINTS: process.env.ETCD_ENDPOINTS, BRINDLE_LOG_LEVEL: process.env.BRINDLE_LOG_LEVEL };
  process.env.DATASTORE_TYPE = 'etcd';
  process.env.ETCD_ENDPOINTS = etcd.endpoint;
  process.env.BRINDLE_LOG_LEVEL = 'error';
  t.teardown(() => { for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; } });

  const ds = openDatastore({ type: 'etcd', etcdEndpoints: [etcd.endpoint], timeoutMs: 5000 });
  t.teardown(() => ds.close());
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/24', blockSize: 28 } as IPPoolSpec });
  await ds.create({ kind: 'Node', metadata: { name: 'live' }, spec: {} });
  const ipam = new Ipam(ds, { sleep: async () => undefined, blockSearch: 'ordered' });
  await ipam.autoAssign({ handle: 'net.keep', node: 'live', num4: 1, attrs: { node: 'live' } }); // .0/28
  await ipam.autoAssign({ handle: 'net.lost', node: 'live', num4: 1, attrs: { node: 'live' } });
  await ds.delete('IPAMHandle', 'net.lost');
  await ipam.assignIp({ ip: '10.244.0.32', handle: 'net.empty', node: 'live' }); // .32/28, emptied below
  await ipam.releaseByHandle('net.empty');
  await ipam.autoAssign({ handle: 'net.ghost', node: 'ghost', num4: 2, attrs: { node: 'ghost' } }); // no Node record

  let text = '';
  const once = (extra: string[]) => run(['--once', '-o', 'json', ...extra], (s) => { text += s; });
  // With the default graces a single pass only reports.
  t.equal(await once([]), 0);
  let r = JSON.parse(text);
  t.equal(r.leader, true);
  t.same(r.summary.nodes.gone, [{ node: 'ghost', since: r.summary.nodes.gone[0].since, eligible: false }]);
  t.same([r.summary.leaks.candidates, r.summary.leaks.released], [1, []]);
  t.ok(r.summary.problems.some((p: { kind: string }) => p.kind === 'allocationWithoutHandle'));
  t.equal((await ds.list('IPAMBlock')).items.length, 3, 'nothing changed');

  text = '';
  t.equal(await once(['--node-grace', '0', '--block-grace', '0', '--leak-grace', '0']), 0);
  r = JSON.parse(text);
  t.same(r.summary.errors, []);
  t.same(r.summary.nodes.cleaned.map((c: { node: string; released: string[] }) => [c.node, c.released.length]), [['ghost', 2]]);
  t.same(r.summary.blocks.released, ['10.244.0.32/28']);
  t.same(r.summary.leaks.released.map((l: { handle: string }) => l.handle), ['net.lost']);
  const blocks = (await ds.list('IPAMBlock')).items;
  t.same(blocks.map((b) => b.spec.cidr), ['10.244.0.0/28']);
  t.same(Object.values(blocks[0].spec.allocations).map((a) => a.handle), ['net.keep']);
  t.same((await ds.list('BlockAffinity')).items.map((a) => a.spec.node), ['live']);
  const handles = (await ds.list('IPAMHandle')).items.map((h) => h.metadata.name).sort();
  t.same(handles, ['lease.controller', 'net.keep'], 'the lease record stays, released');
  t.ok((await ipam.checkConsistency()).problems.every((p) => p.kind !== 'allocationWithoutHandle'));

  text = '';
  t.equal(await run(['--once', '--bogus'], (s) => { text += s; }), 2, 'usage error');
});
