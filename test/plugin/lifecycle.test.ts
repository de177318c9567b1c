// The brindle plugin driven through real libcni (test/cnitool) inside a node namespace:
// ADD → CHECK → DEL → DEL for every supported version, the exact dataplane, connectivity
// pod→node and pod→pod (IPv4 and IPv6), repeated ADD, DEL without netns, STATUS and GC.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { ipJson, nsExec, Scope } from '../helpers/netns';
import { hostVethName } from '../../lib/dataplane/naming';
import { brindleConf, cniWorld, cnitool, globalAddrs, hostLocal, linkNames, nodeNamespace, writeConflist, type CniWorld } from '../helpers/cni';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const POD_ARGS = (name: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=u-${name}`;

function sysctl(ns: string, key: string): string {
  return nsExec(ns, 'cat', [`/proc/sys/${key}`]).trim();
}

/** Asserts the whole dataplane of one pod. */
function assertWired(t: Test, node: string, pod: string, hostIf: string, ips: string[], mtu: number): void {
  const [eth0] = ipJson(pod, ['link', 'show', 'eth0']);
  t.ok(eth0.flags.includes('UP'), 'eth0 up');
  t.equal(eth0.mtu, mtu, 'pod mtu');
  const podAddrs = globalAddrs(pod).sort();
  t.same(podAddrs, ips.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`).sort(), 'pod addresses /32 /128');
  const has4 = ips.some((ip) => !ip.includes(':'));
  const has6 = ips.some((ip) => ip.includes(':'));
  if (has4) {
    const r4 = ipJson(pod, ['-4', 'route', 'show']);
    t.ok(r4.some((r: any) => r.dst === '169.254.1.1' && r.scope === 'link' && r.dev === 'eth0'), 'gateway route scope link');
    t.ok(r4.some((r: any) => r.dst === 'default' && r.gateway === '169.254.1.1' && r.dev === 'eth0'), 'default via 169.254.1.1');
  }
  if (has6) {
    const r6 = ipJson(pod, ['-6', 'route', 'show']);
    t.ok(r6.some((r: any) => r.dst === 'default' && r.gateway === 'fe80::ecee:eeff:feee:eeee' && r.dev === 'eth0'), 'v6 default via host link-local');
    t.equal(sysctl(pod, 'net/ipv6/conf/eth0/accept_dad'), '0', 'pod accept_dad=0');
  }
  const [host] = ipJson(node, ['link', 'show', hostIf]);
  t.equal(host.address, 'ee:ee:ee:ee:ee:ee', 'host mac');
  t.ok(host.flags.includes('UP'), 'host veth up');
  t.equal(host.mtu, mtu, 'host mtu');
  t.ok(host.ifname.length <= 15 && /^bri[0-9a-f]{11}$/.test(host.ifname), 'host veth name');
  const hr = [...ipJson(node, ['-4', 'route', 'show', 'dev', hostIf]), ...ipJson(node, ['-6', 'route', 'show', 'dev', hostIf])];
  for (const ip of ips) t.ok(hr.some((r: any) => r.dst === ip && (ip.includes(':') || r.scope === 'link')), `host route ${ip} dev ${hostIf}`);
  t.equal(sysctl(node, `net/ipv4/conf/${hostIf}/proxy_arp`), '1', 'proxy_arp');
  t.equal(sysctl(node, `net/ipv4/neigh/${hostIf}/proxy_delay`), '0', 'proxy_delay');
  t.equal(sysctl(node, `net/ipv4/conf/${hostIf}/forwarding`), '1', 'forwarding');
  if (has6) {
    t.equal(sysctl(node, `net/ipv6/conf/${hostIf}/proxy_ndp`), '1', 'proxy_ndp');
    t.equal(sysctl(node, `net/ipv6/conf/${hostIf}/forwarding`), '1', 'v6 forwarding');
    t.equal(sysctl(node, `net/ipv6/conf/${hostIf}/accept_ra`), '0', 'accept_ra');
  }
}

function hostVeths(node: string): string[] { return linkNames(node).filter((n) => n.startsWith('bri')); }

function resultIps(res: any): string[] { return (res.ips ?? []).map((i: any) => i.address.split('/')[0]); }

let scope: Scope;
let w: CniWorld;
let node: string;
t.before(() => {
  scope = new Scope();
  w = cniWorld(scope);
  node = nodeNamespace(scope, 1, 1450);
});
t.teardown(() => scope.cleanup());

t.test('ADD → CHECK → DEL → DEL for every supported version', async (t) => {
  for (const [i, v] of VERSIONS.entries()) {
    await t.test(`cniVersion ${v}`, async (t) => {
      const net = `life${i}`;
      const dual = v !== '0.3.0';
      writeConflist(w, net, v, [brindleConf(w, hostLocal(w, dual ? [[`10.244.${i}.0/24`], [`fd00:10:244:${i}::/64`]] : [[`10.244.${i}.0/24`]]))]);
      const pod = scope.netns('pod');
      const add = cnitool(w, node, 'add', net, pod, { args: POD_ARGS(`p${i}`) });
      t.equal(add.status, 0, `add: ${add.stdout}${add.stderr}`);
      t.equal(add.json?.cniVersion, v, 'result version');
      const legacy = ['0.3.0', '0.3.1', '0.4.0'].includes(v);
      for (const ip of add.json?.ips ?? []) {
        if (legacy) t.equal(ip.version, ip.address.includes(':') ? '6' : '4', 'ips[].version present before 1.0.0');
        else t.notOk('version' in ip, 'no ips[].version from 1.0.0');
      }
      const ips = resultIps(add.json);
      t.equal(ips.length, dual ? 2 : 1, 'address per family');
      const hostIf = add.json.interfaces[0].name;
      assertWired(t, node, pod, hostIf, ips, 1450);
      if (v !== '0.3.0' && v !== '0.3.1') {
        const chk = cnitool(w, node, 'check', net, pod, { args: POD_ARGS(`p${i}`) });
        t.equal(chk.status, 0, `check: ${chk.stdout}`);
      }
      const del = cnitool(w, node, 'del', net, pod, { args: POD_ARGS(`p${i}`) });
      t.equal(del.status, 0, `del: ${del.stdout}`);
      t.same(hostVeths(node), [], 'host veth gone');
      t.same(linkNames(pod), ['lo'], 'pod eth0 gone');
      t.same(fs.readdirSync(`${w.ipamDir}/${net}`).filter((f) => /^[0-9a-f.:]+$/.test(f)), [], 'host-local released');
      const del2 = cnitool(w, node, 'del', net, pod, { args: POD_ARGS(`p${i}`) });
      t.equal(del2.status, 0, `second del: ${del2.stdout}`);
    });
  }
});

t.test('ping pod → node and pod → pod on the same node, IPv4 and IPv6', async (t) => {
  writeConflist(w, 'ping', '1.1.0', [brindleConf(w, hostLocal(w, [['10.244.20.0/24'], ['fd00:10:244:20::/64']]))]);
  const a = scope.netns('pod');
  const b = scope.netns('pod');
  const ra = cnitool(w, node, 'add', 'ping', a, { args: POD_ARGS('a') });
  const rb = cnitool(w, node, 'add', 'ping', b, { args: POD_ARGS('b') });
  t.equal(ra.status, 0, ra.stdout);
  t.equal(rb.status, 0, rb.stdout);
  const [a4, a6] = resultIps(ra.json);
  const [b4, b6] = resultIps(rb.json);
  t.doesNotThrow(() => nsExec(a, 'ping', ['-c1', '-W2', '198.18.0.1']), 'pod → node v4');
  t.doesNotThrow(() => nsExec(a, 'ping', ['-6', '-c1', '-W2', 'fd00:198:18::1']), 'pod → node v6');
  t.doesNotThrow(() => nsExec(a, 'ping', ['-c1', '-W2', b4]), 'pod → pod v4');
  t.doesNotThrow(() => nsExec(b, 'ping', ['-c1', '-W2', a4]), 'pod → pod v4 back');
  t.doesNotThrow(() => nsExec(a, 'ping', ['-6', '-c1', '-W2', b6]), 'pod → pod v6');
  t.doesNotThrow(() => nsExec(b, 'ping', ['-6', '-c1', '-W2', a6]), 'pod → pod v6 back');
  t.equal(cnitool(w, node, 'del', 'ping', a, { args: POD_ARGS('a') }).status, 0);
  t.equal(cnitool(w, node, 'del', 'ping', b, { args: POD_ARGS('b') }).status, 0);
  t.same(hostVeths(node), []);
});

t.test('repeated ADD returns the existing attachment; DEL without a netns', async (t) => {
  writeConflist(w, 'again', '1.0.0', [brindleConf(w, hostLocal(w, [['10.244.21.0/24']]))]);
  const pod = scope.netns('pod');
  const one = cnitool(w, node, 'add', 'again', pod, { args: POD_ARGS('r') });
  const two = cnitool(w, node, 'add', 'again', pod, { args: POD_ARGS('r') });
  t.equal(one.status, 0, one.stdout);
  t.equal(two.status, 0, two.stdout);
  t.same(two.json.ips, one.json.ips, 'same address');
  t.equal(hostVeths(node).length, 1, 'one veth');
  t.equal(globalAddrs(pod).length, 1, 'one address');
  // DEL as a runtime sends it after the sandbox is gone: CNI_NETNS empty.
  const cid = 'c0ffee';
  const p2 = scope.netns('pod');
  t.equal(cnitool(w, node, 'add', 'again', p2, { containerId: cid }).status, 0);
  const del = cnitool(w, node, 'del', 'again', '', { containerId: cid });
  t.equal(del.status, 0, `del without netns: ${del.stdout}`);
  t.same(linkNames(p2), ['lo'], 'pod side went with the host side');
  t.equal(cnitool(w, node, 'del', 'again', pod, { args: POD_ARGS('r') }).status, 0);
  t.same(hostVeths(node), []);
});

t.test('a re-created sandbox replaces the stale host veth of the same pod; a taken pod ifname is refused', async (t) => {
  writeConflist(w, 'stale', '1.0.0', [brindleConf(w, hostLocal(w, [['10.244.23.0/24']]))]);
  // A previous sandbox of the same pod left its host side behind (the name is a hash of
  // namespace/pod, so the new sandbox wants the same one): a veth by that name in the node.
  const hostIf = hostVethName({ namespace: 'default', pod: 's', containerId: 'sandbox2' });
  nsExec(node, 'ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'leftover0']);
  const pod = scope.netns('pod');
  const second = cnitool(w, node, 'add', 'stale', pod, { args: POD_ARGS('s'), containerId: 'sandbox2' });
  t.equal(second.status, 0, second.stdout);
  t.equal(second.json.interfaces[0].name, hostIf, 'same host name');
  t.notOk(linkNames(node).includes('leftover0'), 'the stale pair is gone');
  assertWired(t, node, pod, hostIf, resultIps(second.json), 1450);
  // The pod namespace already has the interface: refused with the plugin's code, nothing left over.
  const busy = scope.netns('pod');
  nsExec(busy, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']);
  const before = hostVeths(node);
  const refused = cnitool(w, node, 'add', 'stale', busy, { args: POD_ARGS('b'), containerId: 'sandbox3' });
  t.equal(refused.status, 1);
  t.equal(refused.json.code, 101, refused.stdout);
  t.match(refused.json.msg, /interface eth0 already exists in netns/);
  t.same(hostVeths(node), before, 'no veth left');
  t.equal(cnitool(w, node, 'del', 'stale', pod, { args: POD_ARGS('s'), containerId: 'sandbox2' }).status, 0);
  t.same(hostVeths(node), [], 'all removed');
});

t.test('DEL after the netns and the link are gone', async (t) => {
  writeConflist(w, 'gone', '1.0.0', [brindleConf(w, hostLocal(w, [['10.244.22.0/24']]))]);
  const pod = scope.netns('pod');
  const add = cnitool(w, node, 'add', 'gone', pod, { containerId: 'gone1' });
  t.equal(add.status, 0, add.stdout);
  nsExec(node, 'ip', ['link', 'del', add.json.interfaces[0].name]);
  const del = cnitool(w, node, 'del', 'gone', pod, { containerId: 'gone1' });
  t.equal(del.status, 0, `del with link gone: ${del.stdout}`);
  t.equal(cnitool(w, node, 'del', 'gone', '', { containerId: 'gone1' }).status, 0, 'del again, no netns');
});

t.test('STATUS and GC (spec 1.1.0)', async (t) => {
  writeConflist(w, 'gc', '1.1.0', [brindleConf(w, hostLocal(w, [['10.244.23.0/24']]))]);
  const st = cnitool(w, node, 'status', 'gc', '');
  t.equal(st.status, 0, `status: ${st.stdout}`);
  const pods = [scope.netns('pod'), scope.netns('pod'), scope.netns('pod')];
  for (const [i, p] of pods.entries()) t.equal(cnitool(w, node, 'add', 'gc', p, { containerId: `gc${i}` }).status, 0);
  t.equal(hostVeths(node).length, 3);
  // Drop the runtime's cache so GC's only source is the plugin's own state, as after a runtime crash.
  fs.rmSync(`${w.cacheDir}/results`, { recursive: true, force: true });
  const gc = cnitool(w, node, 'gc', 'gc', '', { valid: [{ containerID: 'gc1', ifname: 'eth0' }] });
  t.equal(gc.status, 0, `gc: ${gc.stdout}`);
  t.equal(hostVeths(node).length, 1, 'only the valid attachment keeps its veth');
  t.same(linkNames(pods[0]), ['lo']);
  t.same(linkNames(pods[2]), ['lo']);
  t.same(linkNames(pods[1]).sort(), ['eth0', 'lo']);
  const held = fs.readdirSync(`${w.ipamDir}/gc`).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  t.equal(held.length, 1, 'host-local holds only the valid address');
  t.same(fs.readdirSync(`${w.stateDir}/attachments/gc`), ['gc1-eth0.json']);
  // STATUS fails (50) when the IPAM plugin is missing.
  writeConflist(w, 'gcbad', '1.1.0', [brindleConf(w, { type: 'no-such-ipam' })]);
  const bad = cnitool(w, node, 'status', 'gcbad', '');
  t.equal(bad.status, 1);
  t.equal(bad.json?.code, 50, 'plugin not available');
});
