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

t.test('RouteMessageWriter: templated messages are the bytes encodeRoute writes', async (t) => {
  const { NlWriter } = await import('../../lib/netlink/codec');
  const { RouteMessageWriter, encodeRoute } = await import('../../lib/netlink/route');
  const { RTM_NEWROUTE, RTM_DELROUTE, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST } = await import('../../lib/netlink/constants');
  const mp = [{ gateway: '198.18.0.12', oif: 2 }, { gateway: '198.18.0.13', oif: 2 }];
  // Each case: routes written in sequence (so later ones reuse templates of earlier ones).
  const cases: { name: string; routes: KRoute[] }[] = [
    { name: 'one shape, many /26', routes: ['10.0.0.0/26', '10.0.0.64/26', '10.255.3.192/26', '1.2.3.4/32', '10.0.0.0/8'].map((d) => ({ family: 4, dst: d, gateway: '198.18.0.12', protocol: 177 })) },
    { name: 'alternating shapes', routes: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => (i % 2 ? via(`10.1.${i}.0/24`, '198.18.0.13') : { family: 4, dst: `10.2.${i}.0/24`, type: 'blackhole', protocol: 177 })) },
    { name: 'ecmp and table', routes: [{ family: 4, dst: '10.3.0.0/26', multipath: mp }, { family: 4, dst: '10.3.0.64/26', multipath: mp }, { family: 4, dst: '10.3.1.0/24', oif: 3, table: 300 }, { family: 4, dst: '10.3.2.0/24', oif: 3, table: 300 }] },
    { name: 'default route and IPv6 are not templated', routes: [{ family: 4, dst: '0.0.0.0/0', gateway: '198.18.0.1' }, { family: 4, dst: '10.4.0.0/16', gateway: '198.18.0.1' }, { family: 4, dst: '0.0.0.0/0', gateway: '198.18.0.1' }, { family: 6, dst: 'fd00::/64', gateway: 'fe80::1', oif: 2 }, { family: 6, dst: 'fd00:1::/64', gateway: 'fe80::1', oif: 2 }] },
    { name: 'unusual texts fall back to the full encoder', routes: [{ family: 4, dst: '10.5.0.0/24', gateway: '198.18.0.1' }, { family: 4, dst: '10.5.1.0/24', gateway: '198.18.0.1' }, { family: 4, dst: '10.5.2.0/024', gateway: '198.18.0.1' }] },
  ];
  for (const c of cases) {
    for (const [type, flags, del] of [[RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, false], [RTM_DELROUTE, 0, true]] as const) {
      const got = new NlWriter(64), want = new NlWriter(64);
      const mw = new RouteMessageWriter(type, flags, del);
      c.routes.forEach((r, i) => {
        mw.write(got, r as never, 100 + i);
        const at = want.beginMessage(type, flags | NLM_F_REQUEST, 100 + i, 0);
        encodeRoute(want, r as never, del);
        want.endMessage(at);
      });
      t.same(Buffer.from(got.buf.subarray(0, got.off)).toString('hex'), Buffer.from(want.buf.subarray(0, want.off)).toString('hex'), `${c.name} (${del ? 'delete' : 'replace'})`);
    }
  }
  // An invalid destination still throws, templated or not.
  const mw = new RouteMessageWriter(RTM_NEWROUTE, 0);
  const w = new NlWriter(64);
  mw.write(w, { family: 4, dst: '10.6.0.0/24', gateway: '198.18.0.1' }, 1);
  t.throws(() => mw.write(w, { family: 4, dst: '10.6.0.0/33', gateway: '198.18.0.1' }, 2), TypeError);
  t.throws(() => mw.write(w, { family: 4, dst: '10.6.0.0', gateway: '198.18.0.1' }, 3), TypeError);
});
