// A conflist chain brindle → portmap → bandwidth (Debian's reference plugins) through libcni:
// ADD, CHECK, DEL. portmap and bandwidth read brindle's result as their prevResult.
import t from 'tap';
import { nsExec, Scope } from '../helpers/netns';
import { brindleConf, cniWorld, cnitool, hostLocal, linkNames, nodeNamespace, writeConflist } from '../helpers/cni';

let scope: Scope;
t.before(() => { scope = new Scope(); });
t.teardown(() => scope.cleanup());

const CAP_ARGS = {
  portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }],
  bandwidth: { ingressRate: 8000000, ingressBurst: 16000000, egressRate: 8000000, egressBurst: 16000000 },
};

t.test('brindle → portmap → bandwidth: ADD, CHECK, DEL', async (t) => {
  const w = cniWorld(scope);
  const node = nodeNamespace(scope);
  writeConflist(w, 'chain', '1.0.0', [
    brindleConf(w, hostLocal(w, [['10.244.70.0/24']])),
    { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    { type: 'bandwidth', capabilities: { bandwidth: true } },
  ]);
  const pod = scope.netns('pod');
  const o = { containerId: 'chain1', capArgs: CAP_ARGS, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=chained' };
  const add = cnitool(w, node, 'add', 'chain', pod, o);
  t.equal(add.status, 0, `add: ${add.stdout}${add.stderr}`);
  const hostIf = add.json?.interfaces?.[0]?.name;
  const ip = add.json?.ips?.[0]?.address?.split('/')[0];
  t.match(hostIf, /^bri[0-9a-f]{11}$/, 'brindle result passed through the chain');
  // portmap's DNAT rule and bandwidth's qdisc on the host veth are there.
  const nat = nsExec(node, 'iptables', ['-t', 'nat', '-S']);
  t.match(nat, new RegExp(`--dport 18080 .*--to-destination ${ip.replace(/\./g, '\\.')}:80`), 'portmap dnat');
  const qd = JSON.parse(nsExec(node, 'tc', ['-j', 'qdisc', 'show', 'dev', hostIf]));
  t.ok(qd.some((q: any) => q.kind === 'tbf' || q.kind === 'ingress'), 'bandwidth qdisc on the host veth');
  const chk = cnitool(w, node, 'check', 'chain', pod, o);
  t.equal(chk.status, 0, `check: ${chk.stdout}${chk.stderr}`);
  const del = cnitool(w, node, 'del', 'chain', pod, o);
  t.equal(del.status, 0, `del: ${del.stdout}${del.stderr}`);
  t.same(linkNames(node).filter((n) => n.startsWith('bri') || n.startsWith('bwp')), [], 'veth and ifb gone');
  t.notMatch(nsExec(node, 'iptables', ['-t', 'nat', '-S']), /18080/, 'portmap rule gone');
  t.equal(cnitool(w, node, 'del', 'chain', pod, o).status, 0, 'second del');
});
