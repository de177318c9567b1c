// lib/cni in isolation: version negotiation, result conversion both ways, CNI_ARGS, name rules.
import t from 'tap';
import { CniError } from '../../lib/cni/errors';
import { negotiateVersion, parseResult, resultForVersion } from '../../lib/cni/version';
import { parseCniArgs, parseRequest, validateIfname } from '../../lib/cni/skel';
import { hostVethName } from '../../lib/dataplane/naming';

const code = (fn: () => unknown): number | undefined => { try { fn(); } catch (e) { return e instanceof CniError ? e.code : -1; } return undefined; };

t.test('version negotiation', async (t) => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) t.equal(negotiateVersion({ cniVersion: v }), v);
  t.equal(negotiateVersion({ cniVersions: ['0.4.0', '1.1.0', '9.0.0'] }), '1.1.0', 'highest of cniVersions');
  t.equal(negotiateVersion({ cniVersion: '1.0.0', cniVersions: ['1.1.0'] }), '1.0.0', 'cniVersion wins (libcni sets it)');
  for (const bad of [{}, { cniVersion: '0.2.0' }, { cniVersion: '2.0.0' }, { cniVersions: ['0.1.0'] }]) t.equal(code(() => negotiateVersion(bad)), 1);
});

t.test('results: 0.4.0 in, 1.1.0 inside, every version out', async (t) => {
  const r = parseResult({ cniVersion: '0.4.0', interfaces: [{ name: 'eth0', mac: 'aa:bb:cc:dd:ee:ff', sandbox: '/x' }],
    ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }, { version: '6', address: 'fd00::2/64' }],
    routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.0.0.53'] } }, '0.4.0');
  t.same(r.ips, [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::2/64' }], 'version dropped');
  const old = resultForVersion({ ...r, interfaces: [{ name: 'eth0', mtu: 1400 }], routes: [{ dst: '0.0.0.0/0', mtu: 1400 }] }, '0.3.1');
  t.same((old.ips as any[]).map((i) => i.version), ['4', '6'], 'ips[].version for 0.3.x');
  t.notOk('mtu' in (old.interfaces as any[])[0], 'no 1.1.0 keys before 1.1.0');
  t.notOk('mtu' in (old.routes as any[])[0]);
  const now = resultForVersion({ ...r, interfaces: [{ name: 'eth0', mtu: 1400 }] }, '1.1.0');
  t.equal(now.cniVersion, '1.1.0');
  t.notOk('version' in (now.ips as any[])[0], 'no ips[].version from 1.0.0');
  t.equal((now.interfaces as any[])[0].mtu, 1400, 'interface mtu in 1.1.0');
  t.equal(code(() => parseResult({ cniVersion: '1.0.0', ips: [{}] }, '1.0.0')), 6);
  t.equal(code(() => parseResult({ cniVersion: '0.2.0' }, '1.0.0')), 1);
});

t.test('CNI_ARGS and names', async (t) => {
  t.same(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=a=b;X=y'), { IgnoreUnknown: '1', K8S_POD_NAME: 'a=b', X: 'y' }, 'value keeps later =');
  t.same(parseCniArgs(''), {});
  t.equal(code(() => parseCniArgs('X=y')), 4, 'unknown without IgnoreUnknown');
  t.equal(code(() => parseCniArgs('IgnoreUnknown=0;X=y')), 4);
  t.equal(code(() => parseCniArgs('=x')), 4);
  t.equal(code(() => validateIfname('a'.repeat(15))), undefined, '15 chars fine');
  t.equal(code(() => validateIfname('a'.repeat(16))), 4);
  const n1 = hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c1' });
  t.equal(n1, hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c2' }), 'stable across sandboxes');
  t.equal(n1, 'bri' + require('node:crypto').createHash('sha1').update('default.web-0').digest('hex').slice(0, 11));
  t.equal(n1.length, 14);
  t.not(hostVethName({ containerId: 'c1' }), hostVethName({ containerId: 'c2' }), 'container id without a pod');
});

t.test('parseRequest: env as libcni sends it', async (t) => {
  const env = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_NETNS: '', CNI_IFNAME: 'eth0', CNI_ARGS: '', CNI_PATH: '/opt/cni/bin' };
  const req = parseRequest(env, JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'brindle', ipam: { type: 'host-local' },
    runtimeConfig: { portMappings: [] }, prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.0.0.2/32' }] } }));
  t.equal(req.verb, 'DEL');
  t.equal(req.netns, '', 'DEL without netns');
  t.same(req.config.runtimeConfig, { portMappings: [] }, 'runtimeConfig passed through');
  t.same(req.config.prevResult?.ips, [{ address: '10.0.0.2/32' }]);
  const gc = parseRequest({ CNI_COMMAND: 'GC', CNI_PATH: '/x', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '' },
    JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'brindle', 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }));
  t.same(gc.config['cni.dev/valid-attachments'], [{ containerID: 'a', ifname: 'eth0' }]);
});
