// Route writes on the batch worker thread (lib/netlink/batch-worker.ts via RouteProgrammer
// flushAsync): they land in the namespace of the caller's socket even when the caller has
// left it, failures come back per route, and writes keep their order.
import t from 'tap';
import { Scope, ipJson, sh } from '../helpers/netns';
import { RouteProgrammer, netlinkRouteTable, type FlushReport } from '../../lib/dataplane/routes';
import { withNetns, netnsPath } from '../../lib/netlink/netns';
import { NetlinkSocket } from '../../lib/netlink/socket';

/** A namespace with eth0 at 198.18.0.11/24 (its veth peer up beside it) and a netlink socket opened in it. */
function nodeNamespace(scope: Scope, name: string): { ns: string; nl: NetlinkSocket } {
  const ns = scope.netns(name);
  sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0p', 'up']);
  return { ns, nl: withNetns(netnsPath(ns), () => NetlinkSocket.open()) };
}

const flushAsync = (p: RouteProgrammer) => new Promise<FlushReport>((resolve, reject) => {
  if (!p.flushAsync(resolve)) reject(new Error('no async writes'));
});

t.test('async route writes in the socket namespace, per-route errors, ordered', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { ns, nl } = nodeNamespace(scope, 'rw');
  t.teardown(() => nl.close());
  // Back in the test's own namespace: the worker must still write into `ns`.
  const p = new RouteProgrammer(netlinkRouteTable(nl));
  const good = p.shape({ family: 4, dst: '', gateway: '198.18.0.12' });
  const bad = p.shape({ family: 4, dst: '', gateway: '203.0.113.1' }); // not on a link
  const n = 5000;
  const dst = (i: number) => `10.244.${i >> 6}.${(i & 63) << 2}/30`;
  for (let i = 0; i < n; i++) p.setShape(dst(i), i === 7 ? bad : good);
  const r = await flushAsync(p);
  t.equal(r.replaced, n - 1);
  t.equal(r.errors.length, 1);
  t.equal(r.errors[0].route.dst, dst(7));
  t.equal(r.errors[0].op, 'replace');
  t.equal(p.pending, 1, 'the failed route stays pending');
  t.equal(p.installedCount, n - 1);
  const count = () => ipJson(ns, ['route', 'show', 'proto', '177']).length;
  t.equal(count(), n - 1);
  t.notOk(ipJson(undefined, ['route', 'show', 'proto', '177']).some((x: { dst: string }) => x.dst.startsWith('10.244.')), 'nothing in our own namespace');
  // Replace then withdraw, both sent before either is answered: the delete goes last.
  p.setShape(dst(7), undefined);
  p.setShape('10.245.0.0/30', good);
  const a = flushAsync(p);
  p.setShape('10.245.0.0/30', undefined);
  p.setShape(dst(1), undefined);
  const b = flushAsync(p);
  const [ra, rb] = await Promise.all([a, b]);
  t.same([ra.replaced, ra.errors.length], [1, 0]);
  t.same([rb.deleted, rb.errors.length], [2, 0]);
  t.equal(count(), n - 2);
  t.equal(p.pending, 0);
});

t.test('main-thread writes (flush, the fallback without the worker): exact destinations and gateways', async (t) => {
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const { ns, nl } = nodeNamespace(scope, 'rs');
  t.teardown(() => nl.close());
  const p = new RouteProgrammer(netlinkRouteTable(nl));
  // Two shapes alternating in runs, and prefix lengths that vary: every message is templated
  // from its shape's last one with a new destination.
  const gw = ['198.18.0.12', '198.18.0.13'];
  const shapes = gw.map((g) => p.shape({ family: 4, dst: '', gateway: g }));
  const want = new Map<string, string>();
  for (let i = 0; i < 3000; i++) {
    const len = [26, 27, 32][i % 3];
    const d = `10.${100 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) * 64}/${len}`;
    const s = (i >> 4) & 1;
    p.setShape(d, shapes[s]);
    want.set(d, gw[s]);
  }
  const r = p.flush();
  t.same([r.replaced, r.errors.length], [3000, 0]);
  const got = new Map<string, string>();
  for (const x of ipJson(ns, ['route', 'show', 'proto', '177']) as { dst: string; gateway: string }[]) got.set(x.dst.includes('/') ? x.dst : `${x.dst}/32`, x.gateway);
  t.same([...got].sort(), [...want].sort(), 'every destination with its own gateway');
  for (const d of want.keys()) p.setShape(d, undefined);
  const rd = p.flush();
  t.same([rd.deleted, rd.errors.length], [3000, 0]);
  t.equal(ipJson(ns, ['route', 'show', 'proto', '177']).length, 0, 'all deleted');
});
