import t from 'tap';
import { LeaderElector, LEASE_NAME, ANN_HOLDER } from '../../lib/controller/lease';
import { runController, runOnce } from '../../lib/controller/run';
import type { PassSummary } from '../../lib/controller/controller';
import { MemStore } from '../helpers/memstore';
import { TestClock, cluster, quiet, settle, wrap } from './fixtures';

t.test('elector: acquire, renew, wait out the duration, take over, release', async (t) => {
  const mem = new MemStore();
  const clock = new TestClock();
  const a = new LeaderElector({ ds: mem, identity: 'a', clock });
  const b = new LeaderElector({ ds: mem, identity: 'b', clock });
  t.equal(await a.tick(), true, 'a acquires the absent lease');
  t.equal(await b.tick(), false, 'b sees it held');
  t.equal(mem.all('IPAMHandle')[0].metadata.name, LEASE_NAME);
  t.same(mem.all('IPAMHandle')[0].spec.block, {}, 'the lease holds no addresses');
  for (let i = 0; i < 5; i++) {
    clock.t += 5_000;
    t.equal(await a.tick(), true, `a renews (${i})`);
    t.equal(await b.tick(), false, `b waits while a renews (${i})`);
  }
  // a stops renewing (crash). b saw a's last renewal at this instant (the loop's last tick):
  // it takes over once the record stood still for 15 s on b's own clock.
  clock.t += 5_000; t.equal(await b.tick(), false, '5 s');
  clock.t += 5_000; t.equal(await b.tick(), false, '10 s');
  t.equal(a.isLeader(), false, 'a stops acting at its renew deadline (10 s)');
  clock.t += 4_999; t.equal(await b.tick(), false, '14.999 s is not enough');
  clock.t += 1; t.equal(await b.tick(), true, 'b takes over at 15 s');
  t.equal(mem.all('IPAMHandle')[0].metadata.annotations?.[ANN_HOLDER], 'b');
  t.equal(await a.tick(), false, 'a comes back as a follower');
  t.equal(b.state().transitions, 1);
  await b.release();
  t.equal(b.isLeader(), false);
  t.equal(await a.tick(), true, 'a released lease is free at once');
});

t.test('elector: two replicas racing for an absent lease, one wins', async (t) => {
  const mem = new MemStore();
  const clock = new TestClock();
  const els = ['a', 'b', 'c'].map((id) => new LeaderElector({ ds: mem, identity: id, clock }));
  const won = await Promise.all(els.map((e) => e.tick()));
  t.equal(won.filter(Boolean).length, 1);
});

t.test('two controllers: only the leader passes; the other takes over when it is cut off', async (t) => {
  const { mem } = await cluster(['n1']);
  const clock = new TestClock();
  const passes: Record<string, number> = { a: 0, b: 0 };
  const dsA = wrap(mem), dsB = wrap(mem);
  const ac = new AbortController();
  const common = { log: quiet, clock, intervalMs: 10_000, nodeGraceMs: 60_000 };
  const runs = [
    runController({ ...common, ds: dsA, identity: 'a', onPass: () => { passes.a++; } }, ac.signal),
  ];
  await settle();
  runs.push(runController({ ...common, ds: dsB, identity: 'b', onPass: () => { passes.b++; } }, ac.signal));
  for (let i = 0; i < 12; i++) await clock.advance(5_000); // 60 s
  t.ok(passes.a >= 6, `a passes every 10 s (${passes.a})`);
  t.equal(passes.b, 0, 'b never passes while a holds the lease');
  dsA.cut = true; // a is partitioned from the datastore: cannot renew
  const before = passes.a;
  for (let i = 0; i < 8; i++) await clock.advance(5_000); // 40 s
  t.equal(passes.a, before, 'a stops (its passes fail or it is not the leader)');
  t.ok(passes.b >= 1, `b took over (${passes.b})`);
  t.equal(mem.all('IPAMHandle').find((h) => h.metadata.name === LEASE_NAME)?.metadata.annotations?.[ANN_HOLDER], 'b');
  ac.abort();
  await Promise.all(runs);
  t.equal(mem.all('IPAMHandle').find((h) => h.metadata.name === LEASE_NAME)?.metadata.annotations?.[ANN_HOLDER], '', 'b gave the lease up on stop');
});

t.test('runOnce: no pass while another replica holds the lease', async (t) => {
  const { mem } = await cluster(['n1']);
  const clock = new TestClock();
  const other = new LeaderElector({ ds: mem, identity: 'other', clock });
  await other.tick();
  const r = await runOnce({ ds: mem, log: quiet, clock, identity: 'me' });
  t.same(r, { leader: false, holder: 'other' });
  await other.release();
  const r2 = await runOnce({ ds: mem, log: quiet, clock, identity: 'me' });
  t.equal(r2.leader, true);
  t.ok((r2.summary as PassSummary).at);
});

t.test('a datastore outage is logged and retried, never thrown', async (t) => {
  const { mem } = await cluster(['n1']);
  const clock = new TestClock();
  const ds = wrap(mem);
  const lines: string[] = [];
  const log = { ...quiet, warn: (m: string) => { lines.push(m); } };
  const ac = new AbortController();
  let passes = 0;
  ds.cut = true;
  const run = runController({ ds, log, clock, identity: 'a', intervalMs: 5_000, onPass: () => { passes++; } }, ac.signal);
  for (let i = 0; i < 3; i++) await clock.advance(5_000);
  t.equal(passes, 0);
  t.ok(lines.some((l) => /cut off/.test(l)), 'the error was logged');
  ds.cut = false;
  for (let i = 0; i < 3; i++) await clock.advance(5_000);
  t.ok(passes >= 1, 'passes resume');
  ac.abort();
  await run;
});
