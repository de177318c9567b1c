// CHECK really checks: each piece of the pod's wiring, removed or altered after ADD, makes
// CHECK (through libcni, against the cached prevResult) fail with code 102 naming the piece.
import t from 'tap';
import { nsExec, Scope } from '../helpers/netns';
import { brindleConf, cniWorld, cnitool, hostLocal, nodeNamespace, writeConflist } from '../helpers/cni';

interface Ctx { node: string; pod: string; hostIf: string; ip4: string; ip6: string }
const cases: { name: string; mutate: (c: Ctx) => void; want: RegExp }[] = [
  { name: 'pod address removed', mutate: (c) => nsExec(c.pod, 'ip', ['addr', 'del', `${c.ip4}/32`, 'dev', 'eth0']), want: /address .*\/32 missing/ },
  { name: 'pod v6 address removed', mutate: (c) => nsExec(c.pod, 'ip', ['-6', 'addr', 'del', `${c.ip6}/128`, 'dev', 'eth0']), want: /address .*\/128 missing/ },
  { name: 'pod default route removed', mutate: (c) => nsExec(c.pod, 'ip', ['route', 'del', 'default']), want: /route 0\.0\.0\.0\/0 via 169\.254\.1\.1/ },
  { name: 'pod gateway route removed', mutate: (c) => nsExec(c.pod, 'ip', ['route', 'del', '169.254.1.1', 'dev', 'eth0']), want: /route 169\.254\.1\.1\/32/ },
  { name: 'pod v6 default route removed', mutate: (c) => nsExec(c.pod, 'ip', ['-6', 'route', 'del', 'default']), want: /route ::\/0 via fe80::ecee:eeff:feee:eeee/ },
  { name: 'host route removed', mutate: (c) => nsExec(c.node, 'ip', ['route', 'del', `${c.ip4}/32`, 'dev', c.hostIf]), want: /host route .*\/32/ },
  { name: 'host v6 route removed', mutate: (c) => nsExec(c.node, 'ip', ['-6', 'route', 'del', `${c.ip6}/128`, 'dev', c.hostIf]), want: /host route .*\/128/ },
  { name: 'pod link down', mutate: (c) => nsExec(c.pod, 'ip', ['link', 'set', 'eth0', 'down']), want: /interface eth0 .* is down/ },
  { name: 'host veth down', mutate: (c) => nsExec(c.node, 'ip', ['link', 'set', c.hostIf, 'down']), want: /(host veth .* is down|interface eth0)/ },
  { name: 'proxy_arp off', mutate: (c) => nsExec(c.node, 'sysctl', ['-qw', `net.ipv4.conf.${c.hostIf}.proxy_arp=0`]), want: /proxy_arp/ },
  { name: 'proxy_ndp off', mutate: (c) => nsExec(c.node, 'sysctl', ['-qw', `net.ipv6.conf.${c.hostIf}.proxy_ndp=0`]), want: /proxy_ndp/ },
  { name: 'forwarding off', mutate: (c) => nsExec(c.node, 'sysctl', ['-qw', `net.ipv4.conf.${c.hostIf}.forwarding=0`]), want: /ipv4\.conf\..*\.forwarding/ },
  { name: 'host MAC changed', mutate: (c) => nsExec(c.node, 'ip', ['link', 'set', c.hostIf, 'address', '02:00:00:00:00:01']), want: /host veth .* has mac/ },
  { name: 'pod MAC changed', mutate: (c) => nsExec(c.pod, 'ip', ['link', 'set', 'eth0', 'address', '02:00:00:00:00:02']), want: /interface eth0 .* has mac/ },
  { name: 'veth deleted', mutate: (c) => nsExec(c.node, 'ip', ['link', 'del', c.hostIf]), want: /interface eth0 not found|host veth .* not found/ },
];

let scope: Scope;
t.before(() => { scope = new Scope(); });
t.teardown(() => scope.cleanup());

t.test('CHECK names every missing or altered piece', async (t) => {
  const w = cniWorld(scope);
  const node = nodeNamespace(scope);
  writeConflist(w, 'chk', '1.1.0', [brindleConf(w, hostLocal(w, [['10.244.40.0/24'], ['fd00:10:244:40::/64']]))]);
  for (const [i, c] of cases.entries()) {
    await t.test(c.name, async (t) => {
      const pod = scope.netns('pod');
      const o = { containerId: `chk${i}` };
      const add = cnitool(w, node, 'add', 'chk', pod, o);
      t.equal(add.status, 0, 'add');
      const ok = cnitool(w, node, 'check', 'chk', pod, o);
      t.equal(ok.status, 0, `check before the change: ${ok.stdout}`);
      const [ip4, ip6] = add.json.ips.map((x: any) => x.address.split('/')[0]);
      c.mutate({ node, pod, hostIf: add.json.interfaces[0].name, ip4, ip6 });
      const bad = cnitool(w, node, 'check', 'chk', pod, o);
      t.equal(bad.status, 1, 'check fails');
      t.equal(bad.json?.code, 102, 'code 102');
      t.match(bad.json?.msg ?? '', c.want, `names the piece: ${bad.json?.msg}`);
      t.equal(cnitool(w, node, 'del', 'chk', pod, o).status, 0, 'del');
    });
  }
});
