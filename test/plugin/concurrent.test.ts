// 50 ADDs at once in one node namespace (through libcni): distinct addresses, one correct
// veth each, then 50 DELs at once leave nothing behind.
import t from 'tap';
import { ipJson, Scope } from '../helpers/netns';
import { brindleConf, cniWorld, cnitoolAsync, globalAddrs, hostLocal, linkNames, nodeNamespace, writeConflist } from '../helpers/cni';

const N = Number(process.env.BRINDLE_CONCURRENT_N ?? 50);

let scope: Scope;
t.before(() => { scope = new Scope(); });
t.teardown(() => scope.cleanup());

t.test(`${N} concurrent ADDs then DELs`, async (t) => {
  const w = cniWorld(scope);
  const node = nodeNamespace(scope);
  writeConflist(w, 'many', '1.1.0', [brindleConf(w, hostLocal(w, [['10.244.60.0/24'], ['fd00:10:244:60::/64']]))]);
  const pods = Array.from({ length: N }, () => scope.netns('p'));
  const args = (i: number) => ({ args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod-${i}` });
  const adds = await Promise.all(pods.map((p, i) => cnitoolAsync(w, node, 'add', 'many', p, args(i))));
  const failed = adds.filter((r) => r.status !== 0);
  t.same(failed.map((r) => r.stdout), [], 'every ADD succeeded');
  const all = adds.flatMap((r) => (r.json?.ips ?? []).map((x: any) => x.address));
  t.equal(all.length, 2 * N, 'two addresses each');
  t.equal(new Set(all).size, 2 * N, 'all distinct');
  const veths = linkNames(node).filter((n) => n.startsWith('bri'));
  t.equal(veths.length, N, `${N} host veths`);
  const routes = ipJson(node, ['-4', 'route', 'show']).filter((r: any) => r.dev?.startsWith('bri'));
  t.equal(routes.length, N, 'one host route each');
  let right = 0;
  for (const [i, p] of pods.entries()) {
    const res = adds[i].json;
    const hostIf = res.interfaces[0].name;
    const [link] = ipJson(node, ['link', 'show', hostIf]);
    const want = res.ips.map((x: any) => x.address).sort();
    if (link?.address === 'ee:ee:ee:ee:ee:ee' && JSON.stringify(globalAddrs(p).sort()) === JSON.stringify(want) &&
      routes.some((r: any) => r.dev === hostIf && `${r.dst}/32` === want.find((a: string) => !a.includes(':')))) right++;
  }
  t.equal(right, N, 'every pod wired to its own veth, address and host route');
  const dels = await Promise.all(pods.map((p, i) => cnitoolAsync(w, node, 'del', 'many', p, args(i))));
  t.same(dels.filter((r) => r.status !== 0).map((r) => r.stdout), [], 'every DEL succeeded');
  t.same(linkNames(node).filter((n) => n.startsWith('bri')), [], 'no veth left');
});
