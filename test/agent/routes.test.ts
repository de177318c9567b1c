import t from 'tap';
import { RouteProgrammer, routeKey, type KRoute, type RouteTable } from '../../lib/dataplane/routes';

/** A Map-backed kernel table: keyed by family|dst, with protocol; can fail chosen routes. */
class FakeTable implements RouteTable {
  readonly routes = new Map<string, KRoute>();
  calls = { replace: 0, del: 0, replaced: 0, deleted: 0 };
  failing = new Set<string>();
  list(protocol: number): KRoute[] { return [...this.routes.values()].filter((r) => r.protocol === protocol); }
  replace(rs: KRoute[]): (Error | undefined)[] {
    this.calls.replace++;
    return rs.map((r) => {
      if (this.failing.has(r.dst)) return new Error(`replace route ${r.dst}: network unreachable`);
      this.routes.set(routeKey(r), { ...r }); this.calls.replaced++; return undefined;
    });
  }
  del(rs: KRoute[]): (Error | undefined)[] {
    this.calls.del++;
    return rs.map((r) => { this.routes.delete(routeKey(r)); this.calls.deleted++; return undefined; });
  }
}
const via = (dst: string, gw: string): KRoute => ({ family: 4, dst, gateway: gw, oif: 2, onlink: true });

t.test('diffs and batches', async (t) => {
  const k = new FakeTable();
  k.routes.set('4|192.0.2.0/24', { family: 4, dst: '192.0.2.0/24', protocol: 2, gateway: '1.1.1.1' }); // not ours
  const p = new RouteProgrammer(k);
  p.setAll([via('10.244.1.0/26', '198.18.0.12'), via('10.244.2.0/26', '198.18.0.13'), { family: 4, dst: '10.244.0.0/26', type: 'blackhole' }]);
  let r = p.flush();
  t.equal(r.replaced, 3); t.equal(k.calls.replace, 1, 'one batch');
  t.equal(k.routes.get('4|10.244.0.0/26')!.protocol, 177);
  // identical desired set: nothing to do
  p.setAll([via('10.244.1.0/26', '198.18.0.12'), via('10.244.2.0/26', '198.18.0.13'), { family: 4, dst: '10.244.0.0/26', type: 'blackhole' }]);
  t.equal(p.pending, 0);
  r = p.flush();
  t.equal(r.replaced + r.deleted, 0);
  // one changes, one goes
  p.setAll([via('10.244.1.0/26', '198.18.0.14'), { family: 4, dst: '10.244.0.0/26', type: 'blackhole' }]);
  r = p.flush();
  t.same([r.replaced, r.deleted], [1, 1]);
  t.equal(k.routes.get('4|10.244.1.0/26')!.gateway, '198.18.0.14');
  t.notOk(k.routes.has('4|10.244.2.0/26'));
  t.ok(k.routes.has('4|192.0.2.0/24'), 'foreign route untouched');
  // incremental set/clear
  p.set(4, '10.244.5.0/26', via('10.244.5.0/26', '198.18.0.15'));
  p.set(4, '10.244.1.0/26', undefined);
  r = p.flush();
  t.same([r.replaced, r.deleted], [1, 1]);
  t.same([...k.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.5.0/26', '4|192.0.2.0/24']);
});

t.test('failed routes stay pending and are retried', async (t) => {
  const k = new FakeTable();
  const p = new RouteProgrammer(k);
  k.failing.add('10.244.1.0/26');
  p.setAll([via('10.244.1.0/26', '198.18.0.12'), via('10.244.2.0/26', '198.18.0.13')]);
  let r = p.flush();
  t.equal(r.errors.length, 1); t.equal(r.replaced, 1); t.equal(p.pending, 1);
  k.failing.clear();
  r = p.flush();
  t.equal(r.replaced, 1); t.equal(p.pending, 0);
});

t.test('restart adopts and reconciles without flushing', async (t) => {
  const k = new FakeTable();
  const p1 = new RouteProgrammer(k);
  p1.setAll([via('10.244.1.0/26', '198.18.0.12'), via('10.244.2.0/26', '198.18.0.13'), { family: 4, dst: '10.244.0.0/26', type: 'blackhole' }]);
  p1.flush();
  // the agent stops: nothing is removed (there is no stop hook that deletes)
  t.equal(k.routes.size, 3);
  // kernel resolved oif differently for a route we gave no oif: still satisfied
  const p2 = new RouteProgrammer(k);
  t.equal(p2.adopt({ hold: true }), 3);
  k.calls = { replace: 0, del: 0, replaced: 0, deleted: 0 };
  // before peers re-announce, only the blackhole is desired: nothing is removed while holding
  p2.setAll([{ family: 4, dst: '10.244.0.0/26', type: 'blackhole' }]);
  let r = p2.flush();
  t.same([r.replaced, r.deleted], [0, 0]);
  t.equal(k.routes.size, 3);
  // peers re-announce the same routes: no kernel writes at all
  p2.set(4, '10.244.1.0/26', via('10.244.1.0/26', '198.18.0.12'));
  r = p2.flush();
  t.same([r.replaced, r.deleted], [0, 0]);
  // the stale timer ends: the route nobody re-announced goes
  p2.releaseStale();
  r = p2.flush();
  t.same([r.replaced, r.deleted], [0, 1]);
  t.same([...k.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.1.0/26']);
});

t.test('ecmp signature ignores hop order', async (t) => {
  const k = new FakeTable();
  const p = new RouteProgrammer(k);
  const a: KRoute = { family: 4, dst: '10.244.9.0/26', multipath: [{ gateway: '198.18.0.12', oif: 2 }, { gateway: '198.18.0.13', oif: 2 }] };
  const b: KRoute = { family: 4, dst: '10.244.9.0/26', multipath: [{ gateway: '198.18.0.13', oif: 2 }, { gateway: '198.18.0.12', oif: 2 }] };
  p.setAll([a]); p.flush();
  p.setAll([b]);
  t.equal(p.pending, 0);
});

t.test('100k routes diff quickly', async (t) => {
  const k = new FakeTable();
  const p = new RouteProgrammer(k);
  const rs: KRoute[] = [];
  for (let i = 0; i < 100000; i++) rs.push(via(`10.${(i >> 10) & 255}.${(i >> 2) & 255}.${(i & 3) * 64}/26`, '198.18.0.12'));
  const t0 = performance.now();
  p.setAll(rs); p.flush();
  p.setAll(rs); p.flush();
  const ms = performance.now() - t0;
  t.equal(k.routes.size, 100000);
  t.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});
