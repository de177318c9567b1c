import t from 'tap';
import { Ipam, blockSearchStart } from '../../lib/ipam/allocator';
import { createPool } from '../../lib/ipam/pools';
import { BlockLimitError, CasRetriesError, IpUnavailableError, NoPoolForNodeError, PoolExhaustedError } from '../../lib/ipam/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBatch } from '../../lib/datastore/common';
import { fileBlockHints } from '../../lib/ipam/hints';
import {
  ConflictError, UnavailableError,
  type Datastore, type IPAMConfigSpec, type IPPoolSpec, type Kind, type ListOptions, type ListResult, type ReadOp, type Resource, type WriteOp,
} from '../../lib/datastore/types';
import { MemStore } from '../helpers/memstore';

// 'ordered' block search: these tests assert exact layouts; the hashed default has its own test.
const noSleep = { sleep: async () => undefined, blockSearch: 'ordered' as const };

async function setup(pools: Record<string, Partial<IPPoolSpec>>, config?: Partial<IPAMConfigSpec>) {
  const ds = new MemStore();
  for (const [name, spec] of Object.entries(pools)) await createPool(ds, { kind: 'IPPool', metadata: { name }, spec: spec as IPPoolSpec });
  if (config) await ds.create({ kind: 'IPAMConfig', metadata: { name: 'default' }, spec: { strictAffinity: false, maxBlocksPerHost: 0, autoAllocateBlocks: true, ...config } });
  return { ds, ipam: new Ipam(ds, noSleep) };
}

t.test('block claim: pending -> block -> confirmed, one block per node', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/16' } });
  const a = await ipam.autoAssign({ handle: 'net.c1', node: 'a', num4: 1, attrs: { pod: 'p1', namespace: 'ns' } });
  t.same(a.ips4, ['10.244.0.0']);
  t.same(a.assignments[0], { ip: '10.244.0.0', family: 4, block: '10.244.0.0/26', seq: 1, handle: 'net.c1' });
  const b = await ipam.autoAssign({ handle: 'net.c2', node: 'b', num4: 1 });
  t.same(b.ips4, ['10.244.0.64']);
  const a2 = await ipam.autoAssign({ handle: 'net.c3', node: 'a', num4: 1 });
  t.same(a2.ips4, ['10.244.0.1']);
  const affs = ds.all('BlockAffinity');
  t.same(affs.map((x) => [x.spec.node, x.spec.cidr, x.spec.state]).sort(), [['a', '10.244.0.0/26', 'confirmed'], ['b', '10.244.0.64/26', 'confirmed']]);
  t.same(ds.all('IPAMBlock').map((x) => x.spec.affinity).sort(), ['host:a', 'host:b']);
  t.same(await ipam.blocksForNode('a'), ['10.244.0.0/26']);
  t.same(ds.all('IPAMHandle').find((h) => h.spec.handleID === 'net.c1')!.spec.block, { '10.244.0.0/26': 1 });
  t.equal(ds.all('IPAMBlock')[0].spec.allocations['0'].attrs?.pod, 'p1');
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('borrowing, strictAffinity, maxBlocksPerHost, exhaustion', async (t) => {
  const cases: { name: string; pool: Partial<IPPoolSpec>; config?: Partial<IPAMConfigSpec>; fillA: number; thenB: number; err?: unknown; msg?: RegExp; borrowed?: number }[] = [
    { name: 'borrows from a full pool', pool: { cidr: '10.1.0.0/29', blockSize: 29 }, fillA: 1, thenB: 3, borrowed: 3 },
    { name: 'strictAffinity: no borrowing', pool: { cidr: '10.1.0.0/29', blockSize: 29 }, config: { strictAffinity: true }, fillA: 1, thenB: 1, err: PoolExhaustedError, msg: /ipv4 pool p exhausted for node b/ },
    { name: 'maxBlocksPerHost + strict', pool: { cidr: '10.1.0.0/28', blockSize: 30 }, config: { strictAffinity: true, maxBlocksPerHost: 1 }, fillA: 4, thenB: 0, err: BlockLimitError, msg: /node a has 1 blocks, the limit is 1/ },
    { name: 'maxBlocksPerHost borrows when not strict', pool: { cidr: '10.1.0.0/28', blockSize: 30 }, config: { maxBlocksPerHost: 1 }, fillA: 4, thenB: 1, borrowed: 0 },
    { name: 'exhausted', pool: { cidr: '10.1.0.0/30', blockSize: 30 }, fillA: 4, thenB: 1, err: PoolExhaustedError, msg: /pool p exhausted for node b/ },
  ];
  for (const c of cases) {
    const { ds, ipam } = await setup({ p: c.pool }, c.config);
    for (let i = 0; i < c.fillA; i++) await ipam.autoAssign({ handle: `n.a${i}`, node: 'a', num4: 1 });
    try {
      for (let i = 0; i < c.thenB; i++) await ipam.autoAssign({ handle: `n.b${i}`, node: 'b', num4: 1 });
      if (c.name === 'maxBlocksPerHost + strict') await ipam.autoAssign({ handle: 'n.a-over', node: 'a', num4: 1 });
      if (c.err) { t.fail(`${c.name}: no error`); continue; }
      if (c.borrowed !== undefined) t.equal(ipam.stats.borrows, c.borrowed, `${c.name}: borrows`);
    } catch (err) {
      if (!c.err) { t.fail(`${c.name}: ${err}`); continue; }
      t.ok(err instanceof (c.err as never), `${c.name}: class`);
      t.match((err as Error).message, c.msg!, `${c.name}: message`);
    }
    t.ok((await ipam.checkConsistency()).ok, `${c.name}: consistent`);
    t.ok(ds.all('IPAMBlock').length >= 1);
  }
});

t.test('autoAllocateBlocks off: no claims, only borrowing', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.1.0.0/24' } }, { autoAllocateBlocks: false });
  await t.rejects(ipam.autoAssign({ handle: 'n.a', node: 'a', num4: 1 }), PoolExhaustedError);
  const { newBlockSpec } = await import('../../lib/ipam/blocks');
  await ds.create({ kind: 'IPAMBlock', metadata: { name: '10-1-0-64-26' }, spec: newBlockSpec('10.1.0.64/26') });
  t.same((await ipam.autoAssign({ handle: 'n.a', node: 'a', num4: 1 })).ips4, ['10.1.0.64']);
  t.equal(ds.all('BlockAffinity').length, 0);
});

t.test('borrowed address is marked with the borrower', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.1.0.0/29', blockSize: 29 } });
  await ipam.autoAssign({ handle: 'n.a', node: 'a', num4: 1 });
  const r = await ipam.autoAssign({ handle: 'n.b', node: 'b', num4: 1 });
  t.same(r.ips4, ['10.1.0.1']);
  const blk = ds.all('IPAMBlock')[0];
  t.equal(blk.spec.affinity, 'host:a');
  t.equal(blk.spec.allocations['1'].attrs?.node, 'b');
  t.equal(ipam.stats.borrows, 1);
  t.same(await ipam.blocksForNode('b'), []);
});

t.test('maxBlocksPerHost: not strict borrows from another node', async (t) => {
  const { ipam } = await setup({ p: { cidr: '10.1.0.0/28', blockSize: 30 } }, { maxBlocksPerHost: 1 });
  await ipam.autoAssign({ handle: 'n.b0', node: 'b', num4: 1 }); // b owns 10.1.0.0/30
  for (let i = 0; i < 4; i++) await ipam.autoAssign({ handle: `n.a${i}`, node: 'a', num4: 1 }); // a owns .4/30
  const r = await ipam.autoAssign({ handle: 'n.a4', node: 'a', num4: 1 });
  t.same(r.ips4, ['10.1.0.1'], 'borrowed from b');
  t.same(await ipam.blocksForNode('a'), ['10.1.0.4/30']);
});

t.test('repeated ADD returns what the handle holds; release by handle twice', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/16' }, q: { cidr: 'fd00:10:244::/48' } });
  const first = await ipam.autoAssign({ handle: 'net.c', node: 'a', num4: 1, num6: 1 });
  const again = await ipam.autoAssign({ handle: 'net.c', node: 'a', num4: 1, num6: 1 });
  t.same(again.ips4, first.ips4);
  t.same(again.ips6, first.ips6);
  t.same(first.ips6, ['fd00:10:244::']);
  t.equal(ds.all('IPAMHandle').length, 1);
  t.same((await ipam.releaseByHandle('net.c')).sort(), ['10.244.0.0', 'fd00:10:244::']);
  t.same(await ipam.releaseByHandle('net.c'), []);
  t.equal(ds.all('IPAMHandle').length, 0);
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('stale (handle, seq) release never frees a reused address', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.9.0.0/32', blockSize: 32 } });
  const a = await ipam.autoAssign({ handle: 'n.old', node: 'a', num4: 1 });
  t.same(a.assignments[0].seq, 1);
  await ipam.releaseByHandle('n.old');
  const b = await ipam.autoAssign({ handle: 'n.new', node: 'a', num4: 1 });
  t.same(b.ips4, ['10.9.0.0']);
  t.equal(b.assignments[0].seq, 2);
  const r1 = await ipam.releaseIps([{ ip: '10.9.0.0', seq: 1 }]);
  t.same(r1.released, []);
  t.match(r1.skipped[0].reason, /sequence 2, not 1/);
  const r2 = await ipam.releaseIps([{ ip: '10.9.0.0', handle: 'n.old' }]);
  t.same(r2.released, []);
  t.equal(ds.all('IPAMBlock')[0].spec.allocations['0'].handle, 'n.new');
  const r3 = await ipam.releaseIps([{ ip: '10.9.0.0', handle: 'n.new', seq: 2 }]);
  t.same(r3.released, ['10.9.0.0']);
  t.equal(ds.all('IPAMHandle').length, 0, 'handle dropped with its last address');
  t.same((await ipam.releaseIps(['10.9.0.0'])).skipped, [{ ip: '10.9.0.0', reason: 'not allocated' }]);
});

t.test('freed addresses are reused last, oldest free first', async (t) => {
  const { ipam } = await setup({ p: { cidr: '10.9.0.0/29', blockSize: 29 } });
  for (let i = 0; i < 4; i++) await ipam.autoAssign({ handle: `n.${i}`, node: 'a', num4: 1 }); // .0 .1 .2 .3
  await ipam.releaseByHandle('n.2');
  await ipam.releaseByHandle('n.0');
  const got: string[] = [];
  for (let i = 4; i < 10; i++) got.push((await ipam.autoAssign({ handle: `n.${i}`, node: 'a', num4: 1 })).ips4[0]);
  t.same(got, ['10.9.0.4', '10.9.0.5', '10.9.0.6', '10.9.0.7', '10.9.0.2', '10.9.0.0']);
});

t.test('specific address', async (t) => {
  const { ipam } = await setup({ p: { cidr: '10.244.0.0/16' }, off: { cidr: '10.245.0.0/16', disabled: true } });
  const a = await ipam.assignIp({ ip: '10.244.3.7', handle: 'n.a', node: 'a' });
  t.same(a, { ip: '10.244.3.7', family: 4, block: '10.244.3.0/26', seq: 1, handle: 'n.a' });
  t.same(await ipam.blocksForNode('a'), ['10.244.3.0/26']);
  t.same(await ipam.assignIp({ ip: '10.244.3.7', handle: 'n.a', node: 'a' }), a, 'same handle: idempotent');
  await t.rejects(ipam.assignIp({ ip: '10.244.3.7', handle: 'n.b', node: 'b' }), { constructor: IpUnavailableError, message: /address 10\.244\.3\.7 is unavailable: already allocated to n\.a/ });
  await t.rejects(ipam.assignIp({ ip: '10.99.0.1', handle: 'n.b', node: 'b' }), /10\.99\.0\.1 is unavailable: it is in no pool/);
  await t.rejects(ipam.assignIp({ ip: '10.245.0.1', handle: 'n.b', node: 'b' }), /pool off is disabled/);
  await t.rejects(ipam.assignIp({ ip: 'nonsense', handle: 'n.b', node: 'b' }), IpUnavailableError);
  const b = await ipam.assignIp({ ip: '10.244.3.8', handle: 'n.b', node: 'b' });
  t.equal(b.block, '10.244.3.0/26', 'borrowed inside a\'s block');
  const auto = await ipam.autoAssign({ handle: 'n.c', node: 'a', num4: 1 });
  t.same(auto.ips4, ['10.244.3.0'], 'auto allocation skips assigned ordinals');
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('dual-stack: if one family fails the other is released', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/16' }, q: { cidr: 'fd00::/128', blockSize: 128 } });
  await ipam.autoAssign({ handle: 'n.x', node: 'a', num6: 1 });
  await t.rejects(ipam.autoAssign({ handle: 'n.y', node: 'a', num4: 1, num6: 1 }), PoolExhaustedError);
  t.same(await ipam.handleAssignments('n.y'), []);
  t.equal(ds.all('IPAMHandle').length, 1);
  const v4 = ds.all('IPAMBlock').find((b) => b.spec.cidr === '10.244.0.0/26')!;
  t.same(v4.spec.allocations, {});
  t.same(v4.spec.unallocated.slice(-1), [0], 'the rolled back address went to the end of the free list');
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('pool restriction and node selectors', async (t) => {
  const { ds, ipam } = await setup({
    a: { cidr: '10.1.0.0/16' }, b: { cidr: '10.2.0.0/16' },
    zoned: { cidr: '10.3.0.0/16', nodeSelector: "zone == 'east'" },
  });
  t.same((await ipam.autoAssign({ handle: 'n.1', node: 'n1', num4: 1, pools4: ['b'] })).ips4, ['10.2.0.0']);
  t.same((await ipam.autoAssign({ handle: 'n.2', node: 'n1', num4: 1, pools4: ['10.1.0.0/16'] })).ips4, ['10.1.0.0']);
  await t.rejects(ipam.autoAssign({ handle: 'n.3', node: 'n1', num4: 1, pools4: ['zoned'] }), { constructor: NoPoolForNodeError, message: 'no enabled ipv4 pool among zoned selects node n1' });
  await ds.create({ kind: 'Node', metadata: { name: 'n2', labels: { zone: 'east' } }, spec: {} });
  t.same((await ipam.autoAssign({ handle: 'n.4', node: 'n2', num4: 1, pools4: ['zoned'] })).ips4, ['10.3.0.0']);
  await t.rejects(ipam.autoAssign({ handle: 'n.5', node: 'n1', num6: 1 }), /no enabled ipv6 pool selects node n1/);
});

t.test('default pool created when none exists', async (t) => {
  const ds = new MemStore();
  const ipam = new Ipam(ds, { ...noSleep, defaultPools: {} });
  t.same((await ipam.autoAssign({ handle: 'n.1', node: 'a', num4: 1 })).ips4, ['10.244.0.0']);
  const bare = new Ipam(new MemStore(), noSleep);
  await t.rejects(bare.autoAssign({ handle: 'n.1', node: 'a', num4: 1 }), NoPoolForNodeError);
});

t.test('bounded retries and unavailability', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/16' } });
  let writes = 0;
  ds.beforeWrite = () => { writes++; throw new ConflictError('injected'); };
  const err = await ipam.autoAssign({ handle: 'n.1', node: 'a', num4: 1 }).catch((e) => e);
  t.ok(err instanceof CasRetriesError);
  t.equal(err.attempts, 20);
  t.ok(writes >= 20);
  ds.beforeWrite = undefined;
  let conflicts = 3;
  ds.beforeWrite = () => { if (conflicts-- > 0) throw new ConflictError('injected'); };
  t.same((await ipam.autoAssign({ handle: 'n.2', node: 'a', num4: 1 })).ips4.length, 1, 'recovers after a few conflicts');
  ds.unavailable = true;
  await t.rejects(ipam.autoAssign({ handle: 'n.3', node: 'a', num4: 1 }), UnavailableError);
  ds.unavailable = false;
  const rep = await ipam.checkConsistency();
  t.ok(rep.ok, JSON.stringify(rep.problems));
});

t.test('stale pending affinities are repaired or removed', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/24' } });
  // A pending affinity left by a crash before the block was created: reused or removed.
  await ds.create({ kind: 'BlockAffinity', metadata: { name: 'a--10-244-0-128-26' }, spec: { node: 'a', cidr: '10.244.0.128/26', state: 'pending' } });
  // A pending affinity to a block another node created.
  await ipam.autoAssign({ handle: 'n.b', node: 'b', num4: 1 }); // b gets 10.244.0.0/26
  await ds.create({ kind: 'BlockAffinity', metadata: { name: 'a--10-244-0-0-26' }, spec: { node: 'a', cidr: '10.244.0.0/26', state: 'pending' } });
  // Our block whose confirmation was lost (kubernetes backend, crash between writes).
  await ds.create({ kind: 'BlockAffinity', metadata: { name: 'a--10-244-0-64-26' }, spec: { node: 'a', cidr: '10.244.0.64/26', state: 'pending' } });
  const { newBlockSpec } = await import('../../lib/ipam/blocks');
  await ds.create({ kind: 'IPAMBlock', metadata: { name: '10-244-0-64-26' }, spec: newBlockSpec('10.244.0.64/26', 'a') });
  const before = await ipam.checkConsistency();
  t.same(before.problems.map((p) => p.kind).sort(), ['affinityWithoutBlock', 'affinityWithoutBlock', 'blockWithoutAffinity']);
  const r = await ipam.autoAssign({ handle: 'n.a', node: 'a', num4: 1 });
  t.same(r.ips4, ['10.244.0.64']);
  const rep = await ipam.checkConsistency();
  t.ok(rep.ok, JSON.stringify(rep.problems));
  t.same(await ipam.blocksForNode('a'), ['10.244.0.64/26']);
});

t.test('checkConsistency reports structured problems and leaked handles', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/16' } });
  await ipam.autoAssign({ handle: 'n.live', node: 'a', num4: 1 });
  await ipam.autoAssign({ handle: 'n.leak', node: 'a', num4: 1 });
  await ipam.autoAssign({ handle: 'n.gone', node: 'a', num4: 1 });
  const rep = await ipam.checkConsistency({ validHandles: ['n.live', 'n.gone'] });
  t.same(rep.leakedHandles, ['n.leak']);
  t.same(rep.problems.map((p) => p.kind), ['leakedHandle']);
  t.equal(rep.allocations, 3);
  // A missing handle and a handle pointing at a block without its allocations.
  await ds.delete('IPAMHandle', 'n.gone');
  await ds.create({ kind: 'IPAMHandle', metadata: { name: 'n.ghost' }, spec: { handleID: 'n.ghost', block: { '10.244.0.0/26': 1 } } });
  const rep2 = await ipam.checkConsistency();
  t.same(rep2.problems.map((p) => p.kind).sort(), ['allocationWithoutHandle', 'handleWithoutAllocation']);
  t.match(rep2.problems.find((p) => p.kind === 'allocationWithoutHandle'), { ip: '10.244.0.2', handle: 'n.gone' });
  t.same(await ipam.releaseByHandle('n.ghost'), []);
  t.same(await ipam.releaseIps(['10.244.0.2']), { released: ['10.244.0.2'], skipped: [] });
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('usage and releaseEmptyBlocks', async (t) => {
  const { ds, ipam } = await setup({ p: { cidr: '10.244.0.0/24' } });
  await ipam.autoAssign({ handle: 'n.1', node: 'a', num4: 3 });
  await ipam.autoAssign({ handle: 'n.2', node: 'b', num4: 1 });
  const u = await ipam.usage();
  t.same(u, [{
    name: 'p', cidr: '10.244.0.0/24', disabled: false, size: 256, blocks: 2, inUse: 4, free: 252,
    blockUsage: [
      { cidr: '10.244.0.0/26', node: 'a', size: 64, inUse: 3, free: 61 },
      { cidr: '10.244.0.64/26', node: 'b', size: 64, inUse: 1, free: 63 },
    ],
  }]);
  t.same(await ipam.releaseEmptyBlocks('a'), []);
  await ipam.releaseByHandle('n.1');
  t.same(await ipam.releaseEmptyBlocks('a'), ['10.244.0.0/26']);
  t.equal(ds.all('IPAMBlock').length, 1);
  t.equal(ds.all('BlockAffinity').length, 1);
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('500 concurrent allocations across 10 nodes (two allocators each): all unique', async (t) => {
  const { ds } = await setup({ p: { cidr: '10.244.0.0/16' }, q: { cidr: 'fd00:10:244::/48' } });
  let n = 0;
  ds.delay = () => new Promise<void>((r) => ((n++ % 3) === 0 ? setImmediate(r) : queueMicrotask(r)));
  const allocators = Array.from({ length: 20 }, () => new Ipam(ds, { maxRetries: 50 }));
  const jobs = Array.from({ length: 500 }, (_, i) => allocators[i % 20].autoAssign({ handle: `net.c${i}`, node: `node${i % 10}`, num4: 1, num6: i % 5 === 0 ? 1 : 0 }));
  const res = await Promise.all(jobs);
  const ips = res.flatMap((r) => [...r.ips4, ...r.ips6]);
  t.equal(ips.length, 600);
  t.equal(new Set(ips).size, 600, 'unique');
  const rep = await new Ipam(ds).checkConsistency({ validHandles: res.map((_, i) => `net.c${i}`) });
  t.ok(rep.ok, JSON.stringify(rep.problems.slice(0, 5)));
  // Every block owned by exactly one node, every address inside its node's block unless borrowed.
  const owners = new Map<string, string>();
  for (const b of ds.all('IPAMBlock')) { t.notOk(owners.has(b.spec.cidr)); owners.set(b.spec.cidr, b.spec.affinity!); }
  await Promise.all(res.map((_, i) => allocators[(i + 7) % 20].releaseByHandle(`net.c${i}`)));
  t.equal(ds.all('IPAMHandle').length, 0);
  t.equal(ds.all('IPAMBlock').reduce((s, b) => s + Object.keys(b.spec.allocations).length, 0), 0);
});

t.test('cached mode: repeated ADD, stale cached block, dual-stack still right', async (t) => {
  const { ds } = await setup({ p: { cidr: '10.244.0.0/16' }, q: { cidr: 'fd00:10:244::/48' } });
  const a = new Ipam(ds, { ...noSleep, cacheTtlMs: 60000 });
  const b = new Ipam(ds, { ...noSleep, cacheTtlMs: 60000 }); // a second process on the same node
  const r1 = await a.autoAssign({ handle: 'n.1', node: 'x', num4: 1, num6: 1 });
  t.same(await a.autoAssign({ handle: 'n.1', node: 'x', num4: 1, num6: 1 }), r1, 'repeated ADD (optimistic create fails, then reads the handle)');
  const r2 = await b.autoAssign({ handle: 'n.2', node: 'x', num4: 1 });
  const r3 = await a.autoAssign({ handle: 'n.3', node: 'x', num4: 1 }); // a's cached block is stale now
  t.same([r1.ips4[0], r2.ips4[0], r3.ips4[0]], ['10.244.0.0', '10.244.0.1', '10.244.0.2']);
  await b.releaseByHandle('n.1');
  await b.releaseByHandle('n.2');
  await b.releaseByHandle('n.3');
  t.same(await b.releaseEmptyBlocks('x'), ['10.244.0.0/26', 'fd00:10:244::/122']);
  const r4 = await a.autoAssign({ handle: 'n.4', node: 'x', num4: 1 }); // cached block was deleted
  t.equal(r4.ips4.length, 1, 'recovered from the deleted cached block');
  t.equal((await a.blocksForNode('x')).length, 1, 'claimed one fresh block');
  t.ok((await a.checkConsistency()).ok);
});

t.test('hashed block search: nodes start at a hash of their name, wrap, and never share a block', async (t) => {
  const ds = new MemStore();
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16' } as IPPoolSpec });
  t.equal(blockSearchStart('node-a', 1024n), blockSearchStart('node-a', 1024n), 'stable');
  const starts = new Set(Array.from({ length: 50 }, (_, i) => blockSearchStart(`node${i}`, 1024n)));
  t.ok(starts.size >= 45, `50 node names start at ${starts.size} distinct blocks of 1024`);
  for (const n of [1n, 7n, 1n << 74n]) {
    for (const name of ['a', 'node17', 'x'.repeat(60)]) { const s = blockSearchStart(name, n); t.ok(s >= 0n && s < n); }
  }
  const ipam = new Ipam(ds, { sleep: async () => undefined });
  const res = await Promise.all(Array.from({ length: 20 }, (_, i) => ipam.autoAssign({ handle: `n.${i}`, node: `node${i}`, num4: 1 })));
  const blocks = ds.all('IPAMBlock');
  t.equal(blocks.length, 20, 'one block per node');
  t.equal(new Set(blocks.map((b) => b.spec.affinity)).size, 20, 'each block owned by one node');
  for (const [i, r] of res.entries()) {
    const b = blocks.find((x) => x.spec.affinity === `host:node${i}`)!;
    t.equal(r.assignments[0].block, b.spec.cidr, `node${i}'s address is in its own block`);
  }
  const first = new Set(blocks.map((b) => b.spec.cidr));
  t.ok(first.size === 20 && !(first.has('10.244.0.0/26') && first.has('10.244.0.64/26') && first.has('10.244.0.128/26')), 'not packed from the start');
  // A small pool fills completely whatever the start: every block is found by wrapping.
  const small = new MemStore();
  await createPool(small, { kind: 'IPPool', metadata: { name: 's' }, spec: { cidr: '10.1.0.0/28', blockSize: 30 } as IPPoolSpec });
  const si = new Ipam(small, { sleep: async () => undefined });
  for (let i = 0; i < 4; i++) await si.autoAssign({ handle: `s.${i}`, node: `m${i}`, num4: 1 });
  t.same(small.all('IPAMBlock').map((b) => b.spec.cidr).sort(), ['10.1.0.0/30', '10.1.0.12/30', '10.1.0.4/30', '10.1.0.8/30']);
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('uncached ADD: two batched reads and one write; repeated ADD and dual-stack from the batch', async (t) => {
  // A MemStore that also answers batched reads, counting each kind of call (one call = one round trip on etcd).
  class CountingStore extends MemStore {
    calls: Record<string, number> = {};
    private count(k: string) { this.calls[k] = (this.calls[k] ?? 0) + 1; }
    async read(ops: ReadOp[]) { this.count('read'); return readBatch(new MemStoreView(this) as unknown as Datastore, ops); }
    override async get<K extends Kind>(kind: K, name: string) { this.count('get'); return super.get(kind, name); }
    override async list<K extends Kind>(kind: K, opts?: ListOptions) { this.count('list'); return super.list(kind, opts); }
    override async apply(ops: WriteOp[]) { this.count('apply'); return super.apply(ops); }
  }
  // The batch's own reads are not round trips of their own.
  class MemStoreView {
    constructor(private readonly s: MemStore) {}
    get<K extends Kind>(kind: K, name: string) { return MemStore.prototype.get.call(this.s, kind, name) as Promise<Resource<K>>; }
    list<K extends Kind>(kind: K, opts?: ListOptions) { return MemStore.prototype.list.call(this.s, kind, opts) as Promise<ListResult<K>>; }
  }
  const ds = new CountingStore();
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'v4' }, spec: { cidr: '10.244.0.0/16' } as IPPoolSpec });
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'v6' }, spec: { cidr: 'fd00:10:244::/64' } as IPPoolSpec });
  const ipam = new Ipam(ds as unknown as Datastore, noSleep);
  await ipam.autoAssign({ handle: 'net.first', node: 'a', num4: 1 }); // claims the block
  ds.calls = {};
  const r = await ipam.autoAssign({ handle: 'net.c1', node: 'a', num4: 1 });
  t.same(r.ips4, ['10.244.0.1']);
  t.same(ds.calls, { read: 2, apply: 1 }, 'affine block: 2 batched reads + 1 write, nothing else');

  ds.calls = {};
  const again = await ipam.autoAssign({ handle: 'net.c1', node: 'a', num4: 1 });
  t.same(again.ips4, ['10.244.0.1'], 'repeated ADD returns the held address');
  t.same(ds.calls, { read: 2 }, 'repeated ADD: reads only');

  const ds2 = await ipam.autoAssign({ handle: 'net.d1', node: 'a', num4: 1, num6: 1 });
  t.equal(ds2.ips4.length + ds2.ips6.length, 2, 'dual-stack: one of each');
  const back = await ipam.autoAssign({ handle: 'net.d1', node: 'a', num4: 1, num6: 1 });
  t.same([back.ips4, back.ips6], [ds2.ips4, ds2.ips6], 'dual-stack repeated ADD: same pair');
  t.same((await ds.get('IPAMHandle', 'net.d1')).spec.block, { '10.244.0.0/26': 1, [ds2.assignments[1].block]: 1 }, 'one handle holds both');
  t.ok((await ipam.checkConsistency()).ok);

  // The unbatched path (A/B) reads object by object: more calls, same answers.
  const plain = new Ipam(ds as unknown as Datastore, { ...noSleep, batchReads: false });
  ds.calls = {};
  const p = await plain.autoAssign({ handle: 'net.c2', node: 'a', num4: 1 });
  t.same(p.ips4, ['10.244.0.3']);
  t.equal(ds.calls.read ?? 0, 0, 'batchReads false: no batched read');
  t.ok((ds.calls.get ?? 0) + (ds.calls.list ?? 0) >= 5, `batchReads false: ${(ds.calls.get ?? 0) + (ds.calls.list ?? 0)} single reads`);
});

t.test('block hints: the hinted blocks come in the first batch; stale or garbled hints cost a read only', async (t) => {
  class CountingStore extends MemStore {
    reads = 0;
    async read(ops: ReadOp[]) {
      this.reads++;
      const view = { get: (k: Kind, n: string) => MemStore.prototype.get.call(this, k, n), list: (k: Kind, o?: ListOptions) => MemStore.prototype.list.call(this, k, o) };
      return readBatch(view as unknown as Datastore, ops);
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-hints-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hints = fileBlockHints(dir);
  const ds = new CountingStore();
  await createPool(ds, { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16' } as IPPoolSpec });
  const ipam = new Ipam(ds as unknown as Datastore, { ...noSleep, blockHints: hints });
  t.same(hints.get('a'), [], 'no file: no hint');
  await ipam.autoAssign({ handle: 'net.c0', node: 'a', num4: 1 }); // claims 10.244.0.0/26
  await ipam.autoAssign({ handle: 'net.c1', node: 'a', num4: 1 }); // sees the new affinity, records it
  t.same(hints.get('a'), ['10.244.0.0/26'], 'hint recorded');
  const cases: { name: string; hint?: string; reads: number; ip: string }[] = [
    { name: 'right hint: one batched read', reads: 1, ip: '10.244.0.2' },
    { name: 'garbled file', hint: '{not json', reads: 2, ip: '10.244.0.3' },
    { name: 'not CIDRs', hint: '["", "x/99", 7]', reads: 2, ip: '10.244.0.4' },
    { name: 'another node\'s block hinted', hint: '["10.244.0.64/26"]', reads: 2, ip: '10.244.0.5' },
  ];
  for (const [i, c] of cases.entries()) {
    if (c.hint !== undefined) fs.writeFileSync(path.join(dir, 'ipam-blocks-a'), c.hint);
    ds.reads = 0;
    const r = await ipam.autoAssign({ handle: `net.h${i}`, node: 'a', num4: 1 });
    t.same(r.ips4, [c.ip], `${c.name}: address`);
    t.equal(ds.reads, c.reads, `${c.name}: ${c.reads} batched read(s)`);
    t.same(hints.get('a'), ['10.244.0.0/26'], `${c.name}: hint repaired`);
  }
  t.ok((await ipam.checkConsistency()).ok);
});
