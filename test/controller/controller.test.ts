import t from 'tap';
import { Controller } from '../../lib/controller/controller';
import { Ipam } from '../../lib/ipam/allocator';
import type { WriteOp } from '../../lib/datastore/types';
import { TestClock, cluster, keepLog, quiet, wrap } from './fixtures';

const noSleep = { sleep: async () => undefined, blockSearch: 'ordered' as const };

t.test('deleted node: grace period, re-registration, borrowed address kept in an unaffine block', async (t) => {
  const { mem, ipam } = await cluster(['a', 'b']);
  const clock = new TestClock();
  await ipam.autoAssign({ handle: 'net.pa', node: 'a', num4: 1, attrs: { node: 'a', pod: 'pa', namespace: 'ns' } }); // 10.244.0.0 in .0/28
  await ipam.assignIp({ ip: '10.244.0.5', handle: 'net.pb', node: 'b', attrs: { node: 'b', pod: 'pb', namespace: 'ns' } }); // borrowed from a's block
  await ipam.assignIp({ ip: '10.244.0.16', handle: 'net.pa2', node: 'a', attrs: { node: 'a' } }); // a's second block .16/28
  await ipam.autoAssign({ handle: 'net.pb2', node: 'b', num4: 1, attrs: { node: 'b' } });
  const ctl = new Controller({ ds: mem, clock, log: quiet, nodeGraceMs: 60_000, blockGraceMs: 3_600_000, leakGraceMs: 3_600_000 });

  await mem.delete('Node', 'a');
  let s = await ctl.pass();
  t.same(s.nodes.gone.map((g) => [g.node, g.eligible]), [['a', false]], 'gone, waiting');
  clock.t += 30_000;
  await mem.create({ kind: 'Node', metadata: { name: 'a' }, spec: {} }); // the agent re-registers
  s = await ctl.pass();
  t.same(s.nodes.gone, [], 'back: not gone');
  clock.t += 10_000;
  await mem.delete('Node', 'a');
  s = await ctl.pass();
  clock.t += 59_999;
  s = await ctl.pass();
  t.same(s.nodes.cleaned, [], 'the grace restarted when it came back');
  t.equal(mem.all('IPAMBlock').length, 3, 'nothing touched yet');
  clock.t += 1;
  s = await ctl.pass();
  t.equal(s.nodes.cleaned.length, 1);
  const c = s.nodes.cleaned[0];
  t.same(c.released.sort(), ['10.244.0.0', '10.244.0.16']);
  t.same(c.blocksDeleted, ['10.244.0.16/28']);
  t.same(c.blocksUnaffined, ['10.244.0.0/28']);
  const blocks = mem.all('IPAMBlock');
  const kept = blocks.find((b) => b.spec.cidr === '10.244.0.0/28')!;
  t.equal(kept.spec.affinity, undefined, 'the block with b\'s borrowed address lost its affinity');
  t.same(Object.values(kept.spec.allocations).map((a) => a.handle), ['net.pb'], 'b\'s borrowed address stays');
  t.same(mem.all('BlockAffinity').map((a) => a.spec.node), ['b'], 'a\'s affinities are gone');
  t.same(mem.all('IPAMHandle').map((h) => h.metadata.name).sort(), ['net.pb', 'net.pb2'], 'a\'s handles are gone');
  t.ok((await ipam.checkConsistency()).ok, 'consistent afterwards');
  s = await ctl.pass();
  t.same(s.nodes.gone, [], 'nothing refers to a any more');
});

t.test('empty block: released after the grace, restarted by any change', async (t) => {
  const { mem, ipam } = await cluster(['a']);
  const clock = new TestClock();
  const ctl = new Controller({ ds: mem, clock, log: quiet, blockGraceMs: 300_000, leakGraceMs: 3_600_000 });
  await ipam.autoAssign({ handle: 'net.1', node: 'a', num4: 1 });
  await ipam.releaseByHandle('net.1');
  let s = await ctl.pass();
  t.same([s.blocks.empty, s.blocks.pending, s.blocks.released], [1, 1, []]);
  clock.t += 200_000;
  await ipam.autoAssign({ handle: 'net.2', node: 'a', num4: 1 });
  await ipam.releaseByHandle('net.2'); // in use for a moment: the wait starts over
  s = await ctl.pass();
  t.same(s.blocks.released, []);
  clock.t += 299_999;
  s = await ctl.pass();
  t.same(s.blocks.released, [], 'not before 5 min of standing still');
  clock.t += 1;
  s = await ctl.pass();
  t.same(s.blocks.released, ['10.244.0.0/28']);
  t.same(mem.all('IPAMBlock'), []);
  t.same(mem.all('BlockAffinity'), [], 'the affinity went with it');
});

t.test('empty block: an allocation landing between check and delete wins (revision guard)', async (t) => {
  const { mem, ipam } = await cluster(['a']);
  const clock = new TestClock();
  const ds = wrap(mem);
  const ctl = new Controller({ ds, clock, log: quiet, blockGraceMs: 0, leakGraceMs: 3_600_000 });
  await ipam.autoAssign({ handle: 'net.1', node: 'a', num4: 1 });
  await ipam.releaseByHandle('net.1');
  let raced = false;
  ds.beforeApply = async (ops: WriteOp[]) => {
    if (raced || !ops.some((o) => o.op === 'delete' && o.kind === 'IPAMBlock')) return;
    raced = true;
    // A pod ADD on node a, straight to the store, after the controller decided.
    await new Ipam(mem, noSleep).autoAssign({ handle: 'net.late', node: 'a', num4: 1 });
  };
  const s = await ctl.pass();
  t.ok(raced, 'the allocation was interposed');
  t.same(s.blocks.released, []);
  t.same(s.blocks.raced, ['10.244.0.0/28']);
  const b = mem.all('IPAMBlock');
  t.equal(b.length, 1, 'the block stays');
  t.same(Object.values(b[0].spec.allocations).map((a) => a.handle), ['net.late']);
  t.equal(mem.all('BlockAffinity').length, 1, 'and its affinity');
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('orphan pending affinity of a live node is released after the grace', async (t) => {
  const { mem } = await cluster(['a']);
  const clock = new TestClock();
  const ctl = new Controller({ ds: mem, clock, log: quiet, blockGraceMs: 300_000, leakGraceMs: 3_600_000 });
  await mem.create({ kind: 'BlockAffinity', metadata: { name: 'a--10-244-0-32-28' }, spec: { node: 'a', cidr: '10.244.0.32/28', state: 'pending' } });
  t.same((await ctl.pass()).blocks.affinitiesReleased, []);
  clock.t += 300_000;
  t.same((await ctl.pass()).blocks.affinitiesReleased, ['a--10-244-0-32-28']);
  t.same(mem.all('BlockAffinity'), []);
});

t.test('leaked allocation (no handle record): released only after two sightings a grace apart', async (t) => {
  const cases: { name: string; between?: (ipam: Ipam, mem: import('../helpers/memstore').MemStore) => Promise<void>; released: string[] }[] = [
    { name: 'stays leaked', released: ['10.244.0.1'] },
    {
      name: 'handle record comes back (a slow ADD finishing)', released: [],
      between: async (_ipam, mem) => { await mem.create({ kind: 'IPAMHandle', metadata: { name: 'net.lost' }, spec: { handleID: 'net.lost', block: { '10.244.0.0/28': 1 } } }); },
    },
    {
      name: 'freed and reused by a valid handle', released: [],
      between: async (ipam) => { await ipam.releaseIps(['10.244.0.1']); await ipam.assignIp({ ip: '10.244.0.1', handle: 'net.new', node: 'a' }); },
    },
  ];
  for (const c of cases) {
    const { mem, ipam } = await cluster(['a']);
    const clock = new TestClock();
    const ctl = new Controller({ ds: mem, clock, log: quiet, blockGraceMs: 3_600_000, leakGraceMs: 60_000 });
    await ipam.autoAssign({ handle: 'net.ok', node: 'a', num4: 1 });
    await ipam.autoAssign({ handle: 'net.lost', node: 'a', num4: 1 });
    await mem.delete('IPAMHandle', 'net.lost');
    let s = await ctl.pass();
    t.equal(s.leaks.candidates, 1, `${c.name}: one candidate`);
    t.same(s.leaks.released, [], `${c.name}: not on the first sighting`);
    t.ok(s.problems.some((p) => p.kind === 'allocationWithoutHandle'), `${c.name}: reported`);
    clock.t += 30_000;
    s = await ctl.pass();
    t.same(s.leaks.released, [], `${c.name}: second sighting inside the grace`);
    await c.between?.(ipam, mem);
    clock.t += 30_000;
    s = await ctl.pass();
    t.same(s.leaks.released.map((l) => l.ip), c.released, `${c.name}: released`);
    const held = mem.all('IPAMBlock').flatMap((b) => Object.values(b.spec.allocations).map((a) => a.handle)).sort();
    t.ok(held.includes('net.ok'), `${c.name}: the valid allocation stays`);
    if (c.released.length) t.notOk(held.includes('net.lost'), `${c.name}: gone`);
  }
});

t.test('a stale seq never frees a re-used address', async (t) => {
  const { mem, ipam } = await cluster(['a']);
  const clock = new TestClock();
  const ds = wrap(mem);
  const log = keepLog();
  const ctl = new Controller({ ds, clock, log, blockGraceMs: 3_600_000, leakGraceMs: 60_000 });
  await ipam.autoAssign({ handle: 'net.x', node: 'a', num4: 1 }); // 10.244.0.0 seq 1
  await mem.delete('IPAMHandle', 'net.x');
  await ctl.pass();
  clock.t += 60_000;
  let reused = false;
  ds.beforeApply = async (ops) => {
    const freeing = ops.some((o) => o.op === 'update' && o.res.kind === 'IPAMBlock' && !(o.res.spec as { allocations: Record<string, unknown> }).allocations['0']);
    if (reused || !freeing) return;
    reused = true;
    // The runtime retries DEL + ADD of the same sandbox: same handle, same address, new seq.
    const other = new Ipam(mem, noSleep);
    await other.releaseIps(['10.244.0.0']);
    await other.assignIp({ ip: '10.244.0.0', handle: 'net.x', node: 'a' });
  };
  const s = await ctl.pass();
  t.ok(reused, 'the re-use was interposed before the controller\'s write');
  t.same(s.leaks.released, []);
  t.match(s.leaks.skipped, [{ ip: '10.244.0.0', reason: /sequence 2, not 1/ }]);
  const a = mem.all('IPAMBlock')[0].spec.allocations['0'];
  t.same([a.handle, a.seq], ['net.x', 2], 'the re-used address is still allocated');
  t.ok(mem.all('IPAMHandle').some((h) => h.metadata.name === 'net.x'));
});

t.test('stale handle count is corrected after two sightings', async (t) => {
  const { mem, ipam } = await cluster(['a']);
  const clock = new TestClock();
  const ctl = new Controller({ ds: mem, clock, log: quiet, blockGraceMs: 3_600_000, leakGraceMs: 60_000 });
  await ipam.autoAssign({ handle: 'net.h', node: 'a', num4: 1 });
  await ipam.autoAssign({ handle: 'net.ghost', node: 'a', num4: 1 });
  const h = mem.all('IPAMHandle').find((x) => x.metadata.name === 'net.h')!;
  await mem.update({ ...h, spec: { ...h.spec, block: { ...h.spec.block, '10.244.0.16/28': 2 } } }); // counts a block that holds nothing of it
  const g = mem.all('IPAMBlock')[0];
  const spec = JSON.parse(JSON.stringify(g.spec));
  delete spec.allocations['1']; spec.unallocated.push(1);
  await mem.update({ ...g, spec }); // net.ghost's address gone, its handle left behind
  await ctl.pass();
  clock.t += 60_000;
  const s = await ctl.pass();
  t.same(s.leaks.handlesRepaired.sort(), ['net.ghost', 'net.h']);
  t.same(mem.all('IPAMHandle').map((x) => [x.metadata.name, x.spec.block]), [['net.h', { '10.244.0.0/28': 1 }]]);
  t.ok((await ipam.checkConsistency()).ok);
});

t.test('a datastore error in a pass is reported, not thrown', async (t) => {
  const { mem } = await cluster(['a']);
  const ds = wrap(mem);
  ds.cut = true;
  const log = keepLog();
  const s = await new Controller({ ds, clock: new TestClock(), log }).pass();
  t.equal(s.errors.length, 1);
  t.ok(log.lines.some((l) => l.startsWith('warn read cluster state')));
});
