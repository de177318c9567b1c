// Conflist chains through libcni with Debian's reference plugins: brindle → portmap →
// bandwidth (ADD, CHECK, DEL). Debian's portmap 1.1.1 fails its own CHECK ("could not check
// ipv6 dnat": it looks for its IPv4 rules in the IPv6 chain) whatever plugin precedes it;
// the control chain behind Debian's ptp proves it, and brindle → bandwidth shows the
// chained CHECK passing. libcni runs CHECK in list order, so the portmap failure also
// shows that brindle's own CHECK (first in the list) passed.
import t from 'tap';
import { nsExec, Scope } from '../helpers/netns';
import { brindleConf, cniWorld, cnitool, hostLocal, linkNames, nodeNamespace, writeConflist, type CniWorld } from '../helpers/cni';

let scope: Scope;
let w: CniWorld;
let node: string;
t.before(() => { scope = new Scope(); w = cniWorld(scope); node = nodeNamespace(scope); });
t.teardown(() => scope.cleanup());

const CAP_ARGS = {
  portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }],
  bandwidth: { ingressRate: 8000000, ingressBurst: 16000000, egressRate: 8000000, egressBurst: 16000000 },
};
const PORTMAP = { type: 'portmap', capabilities: { portMappings: true }, snat: true };
const BANDWIDTH = { type: 'bandwidth', capabilities: { bandwidth: true } };
const PORTMAP_CHECK_BUG = /could not check ipv6 dnat/;

t.test('brindle → portmap → bandwidth: ADD, CHECK (portmap\'s known failure), DEL', async (t) => {
  writeConflist(w, 'chain', '1.0.0', [brindleConf(w, hostLocal(w, [['10.244.70.0/24']])), PORTMAP, BANDWIDTH]);
  const pod = scope.netns('pod');
  const o = { containerId: 'chain1', capArgs: CAP_ARGS, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=chained' };
  const add = cnitool(w, node, 'add', 'chain', pod, o);
  t.equal(add.status, 0, 'add');
  const hostIf = add.json?.interfaces?.[0]?.name;
  const ip = add.json?.ips?.[0]?.address?.split('/')[0];
  t.match(hostIf, /^bri[0-9a-f]{11}$/, 'brindle result passed through the chain');
  const nat = nsExec(node, 'iptables', ['-t', 'nat', '-S']);
  t.match(nat, new RegExp(`--dport 18080 .*--to-destination ${ip.replace(/\./g, '\\.')}:80`), 'portmap dnat to the pod');
  const qd = JSON.parse(nsExec(node, 'tc', ['-j', 'qdisc', 'show', 'dev', hostIf]));
  t.ok(qd.some((q: any) => q.kind === 'tbf' || q.kind === 'ingress'), 'bandwidth qdisc on the host veth');
  const chk = cnitool(w, node, 'check', 'chain', pod, o);
  t.equal(chk.status, 1, 'check fails in portmap');
  t.match(chk.json?.msg ?? '', PORTMAP_CHECK_BUG, 'the failure is Debian portmap\'s own');
  const del = cnitool(w, node, 'del', 'chain', pod, o);
  t.equal(del.status, 0, `del: ${del.stdout}`);
  t.same(linkNames(node).filter((n) => n.startsWith('bri') || n.startsWith('bwp')), [], 'veth and ifb gone');
  t.notMatch(nsExec(node, 'iptables', ['-t', 'nat', '-S']), /18080/, 'portmap rule gone');
  t.equal(cnitool(w, node, 'del', 'chain', pod, o).status, 0, 'second del');
});

t.test('control: ptp → portmap → bandwidth fails CHECK the same way', async (t) => {
  writeConflist(w, 'ctl', '1.0.0', [{ type: 'ptp', ipMasq: false, ipam: hostLocal(w, [['10.244.71.0/24']]) }, PORTMAP, BANDWIDTH]);
  const pod = scope.netns('pod');
  const o = { containerId: 'ctl1', capArgs: { ...CAP_ARGS, portMappings: [{ hostPort: 18081, containerPort: 80, protocol: 'tcp' }] } };
  t.equal(cnitool(w, node, 'add', 'ctl', pod, o).status, 0, 'add');
  const chk = cnitool(w, node, 'check', 'ctl', pod, o);
  t.equal(chk.status, 1, 'check fails');
  t.match(chk.json?.msg ?? '', PORTMAP_CHECK_BUG, 'same portmap failure without brindle');
  t.equal(cnitool(w, node, 'del', 'ctl', pod, o).status, 0, 'del');
});

t.test('brindle → bandwidth: chained CHECK passes', async (t) => {
  writeConflist(w, 'bw', '1.0.0', [brindleConf(w, hostLocal(w, [['10.244.72.0/24'], ['fd00:10:244:72::/64']])), BANDWIDTH]);
  const pod = scope.netns('pod');
  const o = { containerId: 'bw1', capArgs: CAP_ARGS };
  t.equal(cnitool(w, node, 'add', 'bw', pod, o).status, 0, 'add');
  const chk = cnitool(w, node, 'check', 'bw', pod, o);
  t.equal(chk.status, 0, `check: ${chk.stdout}`);
  t.equal(cnitool(w, node, 'del', 'bw', pod, o).status, 0, 'del');
  t.same(linkNames(node).filter((n) => n.startsWith('bri') || n.startsWith('bwp')), [], 'nothing left');
});
