// Neighbours and VXLAN FDB entries, and pipelined batches (10,000 routes, per-message errors
// across chunk boundaries), in throwaway namespaces checked with `ip -j` / `bridge -j`.
import t from 'tap';
import { Scope, ipJson, sh } from '../helpers/netns';
import { NetlinkSocket } from '../../lib/netlink/socket';
import { NetlinkError } from '../../lib/netlink/errors';
import { netnsPath, withNetns } from '../../lib/netlink/netns';
import { addVeth, addVxlan, getLink, setLinkUp } from '../../lib/netlink/link';
import { addAddr, encodeAddrRequest } from '../../lib/netlink/addr';
import { delRoutes, listRoutes, replaceRoutes, type Route } from '../../lib/netlink/route';
import { addNeigh, appendNeigh, delNeigh, listNeighs, replaceNeigh } from '../../lib/netlink/neigh';
import { NLM_F_CREATE, NLM_F_EXCL, NTF_SELF, NUD_PERMANENT, RTM_NEWADDR, RTPROT_BRINDLE } from '../../lib/netlink/constants';

function setup(t: { teardown(fn: () => unknown): void }): { ns: string; nl: NetlinkSocket } {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ns = scope.netns('nb');
  const nl = withNetns(netnsPath(ns), () => NetlinkSocket.open());
  t.teardown(() => nl.close());
  return { ns, nl };
}

function errOf(fn: () => unknown): NetlinkError {
  try { fn(); } catch (err) { if (err instanceof NetlinkError) return err; throw err; }
  throw new Error('expected a NetlinkError');
}

t.test('ARP entries and VXLAN FDB entries', async (t) => {
  const { ns, nl } = setup(t);
  addVxlan(nl, { name: 'vx0', vni: 4096, port: 4789, localIp: '198.18.0.1', learning: false });
  const vx = getLink(nl, 'vx0')!.index;
  setLinkUp(nl, vx);

  // bridge fdb append 00:00:00:00:00:00 dev vx0 dst X (flood list), twice; then a per-MAC entry.
  appendNeigh(nl, { index: vx, family: 'bridge', mac: '00:00:00:00:00:00', ip: '198.18.0.2' });
  appendNeigh(nl, { index: vx, family: 'bridge', mac: '00:00:00:00:00:00', ip: '198.18.0.3' });
  replaceNeigh(nl, { index: vx, family: 'bridge', mac: '66:00:00:00:00:02', ip: '198.18.0.2' });
  const fdb = JSON.parse(sh('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', 'vx0']));
  const flood = fdb.filter((e: any) => e.mac === '00:00:00:00:00:00').map((e: any) => e.dst).sort();
  t.same(flood, ['198.18.0.2', '198.18.0.3'], 'two flood destinations');
  t.match(fdb.find((e: any) => e.mac === '66:00:00:00:00:02'), { dst: '198.18.0.2', flags: ['self'], state: 'permanent' });

  const listed = listNeighs(nl, { family: 'bridge', index: vx });
  t.same(listed.filter((n) => n.mac === '00:00:00:00:00:00').map((n) => n.ip).sort(), ['198.18.0.2', '198.18.0.3']);
  t.match(listed.find((n) => n.mac === '66:00:00:00:00:02'), { ip: '198.18.0.2', flags: NTF_SELF });

  // ip neigh replace 10.244.2.0 lladdr 66:00:00:00:00:02 dev vx0 nud permanent
  replaceNeigh(nl, { index: vx, family: 4, ip: '10.244.2.0', mac: '66:00:00:00:00:02' });
  replaceNeigh(nl, { index: vx, family: 4, ip: '10.244.2.0', mac: '66:00:00:00:00:03' });
  t.match(ipJson(ns, ['neigh', 'show', 'dev', 'vx0']), [{ dst: '10.244.2.0', lladdr: '66:00:00:00:00:03', state: ['PERMANENT'] }]);
  t.ok(errOf(() => addNeigh(nl, { index: vx, family: 4, ip: '10.244.2.0', mac: '66:00:00:00:00:04' })).exists, 'add of existing is EEXIST');
  t.match(listNeighs(nl, { family: 4, index: vx }), [{ ip: '10.244.2.0', mac: '66:00:00:00:00:03', state: NUD_PERMANENT }]);
  addNeigh(nl, { index: vx, family: 6, ip: 'fd00:10:244:2::', mac: '66:00:00:00:00:05' });
  t.match(ipJson(ns, ['-6', 'neigh', 'show', 'dev', 'vx0']), [{ dst: 'fd00:10:244:2::', lladdr: '66:00:00:00:00:05' }]);

  delNeigh(nl, { index: vx, family: 4, ip: '10.244.2.0' });
  t.same(ipJson(ns, ['-4', 'neigh', 'show', 'dev', 'vx0']), []);
  t.ok(errOf(() => delNeigh(nl, { index: vx, family: 4, ip: '10.244.2.0' })).notFound, 'deleting again is notFound');
  delNeigh(nl, { index: vx, family: 'bridge', mac: '00:00:00:00:00:00', ip: '198.18.0.2' });
  const after = JSON.parse(sh('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', 'vx0']));
  t.same(after.filter((e: any) => e.mac === '00:00:00:00:00:00').map((e: any) => e.dst), ['198.18.0.3'], 'one flood destination removed');
});

t.test('batch of 10,000 routes with per-route errors', async (t) => {
  const { ns, nl } = setup(t);
  addVeth(nl, { name: 'up0', peerName: 'up0p' });
  const up = getLink(nl, 'up0')!.index;
  setLinkUp(nl, up);
  setLinkUp(nl, getLink(nl, 'up0p')!.index);
  addAddr(nl, up, '198.18.0.1/24');

  const N = 10000;
  const bad = new Set([0, 4999, 5000, N - 1]);
  const routes: Route[] = [];
  for (let i = 0; i < N; i++) {
    const dst = `10.${64 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) << 6}/26`;
    // A gateway off every connected subnet: ENETUNREACH for exactly these indexes.
    routes.push(bad.has(i)
      ? { family: 4, dst, gateway: '203.0.113.1', protocol: RTPROT_BRINDLE }
      : { family: 4, dst, gateway: `198.18.0.${2 + (i % 3)}`, protocol: RTPROT_BRINDLE });
  }
  let t0 = performance.now();
  const errs = replaceRoutes(nl, routes);
  const ms = performance.now() - t0;
  t.comment(`replaceRoutes: ${N} routes in ${ms.toFixed(1)} ms`);
  t.same([...errs.keys()].filter((i) => errs[i]), [...bad], 'errors exactly at the bad indexes');
  t.ok(errs.filter(Boolean).every((e) => e!.errno === 101), 'each error keeps its errno');
  t.match(errs[4999]!.message, /^replace route 10\.68\.225\.192\/26 via 203\.0\.113\.1: network is unreachable/);
  const shown = ipJson<any[]>(ns, ['route', 'show', 'proto', String(RTPROT_BRINDLE)]);
  t.equal(shown.length, N - bad.size, 'kernel has every good route');
  t.match(shown.find((r) => r.dst === '10.64.0.64/26'), { gateway: '198.18.0.3', dev: 'up0' });

  // Small chunks: many sends, errors on chunk boundaries, replace is idempotent.
  const again = replaceRoutes(nl, routes, { chunkBytes: 4096 });
  t.same([...again.keys()].filter((i) => again[i]), [...bad], 'same errors with 4 KiB chunks');
  t0 = performance.now();
  t.equal(listRoutes(nl, { protocol: RTPROT_BRINDLE }).length, N - bad.size, 'listRoutes sees them');
  t.comment(`listRoutes: ${N} routes in ${(performance.now() - t0).toFixed(1)} ms`);

  t0 = performance.now();
  const dels = delRoutes(nl, routes);
  t.comment(`delRoutes: ${N} routes in ${(performance.now() - t0).toFixed(1)} ms`);
  t.same([...dels.keys()].filter((i) => dels[i]), [...bad], 'only the never-installed fail to delete');
  t.ok(dels.filter(Boolean).every((e) => e!.notFound));
  t.same(ipJson(ns, ['route', 'show', 'proto', String(RTPROT_BRINDLE)]), []);
  t.same(replaceRoutes(nl, []), []);
});

t.test('requestMany with generic messages', async (t) => {
  const { ns, nl } = setup(t);
  addVeth(nl, { name: 'a0', peerName: 'a0p' });
  const idx = getLink(nl, 'a0')!.index;
  const msgs = ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.1/32', '10.0.0.3/32'].map((c) => ({
    type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, body: encodeAddrRequest(idx, c),
  }));
  const errs = nl.requestMany((i) => `add address #${i}`, msgs);
  t.same(errs.map((e) => e?.errno), [undefined, undefined, 17, undefined]);
  t.equal(errs[2]!.op, 'add address #2');
  t.same(ipJson(ns, ['-4', 'addr', 'show', 'dev', 'a0'])[0].addr_info.map((a: any) => a.local), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  // The socket still works for plain requests after a batch (no stale answers confuse it).
  t.ok(getLink(nl, 'a0'));
});
