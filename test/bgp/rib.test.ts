// The RIB (one map for Adj-RIBs-In and Loc-RIB): changes reported once per flush with the best
// before and after, multipath, withdraw/re-announce within one batch, peer drop, stale sweep.
import t from 'tap';
import { Rib, type Path, type PeerInfo } from '../../lib/bgp/rib';

const peer = (address: string, routerId = address): PeerInfo => ({ address, routerId, asn: 64512, ebgp: false, rrClient: false });
const path = (source: PeerInfo, nextHop: string, localPref = 100): Path => ({ source, attrs: { origin: 0, asPath: [], nextHop, localPref }, nextHop, stale: false, one: undefined, hops: undefined });
const hops = (ps: readonly Path[] | undefined) => ps?.map((p) => p.nextHop);

function flush(rib: Rib) {
  const out: [string, (string | undefined)[] | undefined, (string | undefined)[] | undefined][] = [];
  rib.flush((prefix, old, now) => out.push([prefix, hops(old), hops(now)]));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

t.test('new prefixes, replacement, multipath and withdrawal', async (t) => {
  const rib = new Rib({ routerId: '10.0.0.1', asn: 64512 });
  const a = peer('10.0.0.2'), b = peer('10.0.0.3');
  const pa = path(a, '10.0.0.2');
  rib.announce('10.1.0.0/26', pa);
  rib.announce('10.1.0.64/26', pa);
  t.equal(rib.pendingCount, 2);
  t.same(flush(rib), [['10.1.0.0/26', undefined, ['10.0.0.2']], ['10.1.0.64/26', undefined, ['10.0.0.2']]]);
  t.same(flush(rib), [], 'nothing twice');
  t.equal(rib.receivedFrom(a), 2);
  // a second, equal path: ECMP; a better one (local pref) wins alone
  rib.announce('10.1.0.0/26', path(b, '10.0.0.3'));
  t.same(flush(rib), [['10.1.0.0/26', ['10.0.0.2'], ['10.0.0.2', '10.0.0.3']]]);
  rib.announce('10.1.0.0/26', path(b, '10.0.0.3', 200));
  t.same(flush(rib), [['10.1.0.0/26', ['10.0.0.2', '10.0.0.3'], ['10.0.0.3']]]);
  t.equal(rib.receivedFrom(b), 1);
  rib.withdraw('10.1.0.0/26', b);
  t.same(flush(rib), [['10.1.0.0/26', ['10.0.0.3'], ['10.0.0.2']]]);
  t.same(hops(rib.best('10.1.0.0/26')), ['10.0.0.2']);
  rib.withdraw('10.1.0.0/26', b); // absent: no-op
  t.same(flush(rib), []);
  t.equal(rib.size, 2);
});

t.test('changes within one batch are reported once, against the best before the batch', async (t) => {
  const rib = new Rib({ routerId: '10.0.0.1', asn: 64512 });
  const a = peer('10.0.0.2'), b = peer('10.0.0.3');
  rib.announce('10.2.0.0/26', path(a, '10.0.0.2'));
  rib.withdraw('10.2.0.0/26', a);
  rib.announce('10.2.0.0/26', path(a, '10.0.0.9'));
  rib.announce('10.2.0.64/26', path(a, '10.0.0.2'));
  rib.announce('10.2.0.64/26', path(b, '10.0.0.3', 50));
  rib.announce('10.2.0.128/26', path(a, '10.0.0.2'));
  rib.withdraw('10.2.0.128/26', a);
  t.same(flush(rib), [['10.2.0.0/26', undefined, ['10.0.0.9']], ['10.2.0.64/26', undefined, ['10.0.0.2']]]);
  t.equal(rib.size, 2);
  rib.announce('10.2.0.0/26', path(a, '10.0.0.8'));
  rib.announce('10.2.0.0/26', path(a, '10.0.0.9'));
  const same = flush(rib);
  t.equal(same.length, 1, 'a new path object with the same next hop still counts as a change of path');
  t.same(same[0], ['10.2.0.0/26', ['10.0.0.9'], ['10.0.0.9']]);
});

t.test('dropPeer, stale marking and sweeping', async (t) => {
  const rib = new Rib({ routerId: '10.0.0.1', asn: 64512 });
  const a = peer('10.0.0.2'), b = peer('10.0.0.3');
  for (let i = 0; i < 10; i++) rib.announce(`10.3.${i}.0/24`, path(a, '10.0.0.2'));
  rib.announce('10.3.0.0/24', path(b, '10.0.0.3'));
  rib.announce('2001:db8::/64', path(a, '10.0.0.2'));
  flush(rib);
  t.equal(rib.markStale(a), 11);
  t.ok(rib.hasStale(a));
  t.notOk(rib.hasStale(b));
  rib.announce('10.3.1.0/24', path(a, '10.0.0.2')); // re-announced: fresh
  t.equal(rib.sweepStale(a, 6), 1, 'one family only');
  t.equal(rib.sweepStale(a), 9);
  t.equal(rib.receivedFrom(a), 1);
  const ch = flush(rib);
  t.equal(ch.length, 11, "9 swept v4, 1 swept v6, 1 re-announced");
  t.same(ch.find((c) => c[0] === '10.3.0.0/24'), ['10.3.0.0/24', ['10.0.0.2', '10.0.0.3'], ['10.0.0.3']]);
  t.equal(rib.dropPeer(b), 1);
  t.equal(rib.receivedFrom(b), 0);
  t.same(flush(rib), [['10.3.0.0/24', ['10.0.0.3'], undefined]]);
  t.same([...rib.prefixes()], ['10.3.1.0/24']);
});
