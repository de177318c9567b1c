// The kubernetes backend over HTTPS against the stand-in API server, with certificates made
// by openssl in a temporary directory: kubeconfigs with CA and client certificate as files
// and inline (-data), a bearer token, the in-cluster service account (token + ca.crt in a
// directory of the test's, KUBERNETES_SERVICE_HOST/PORT), token rotation, and the typed
// TlsError (naming the server, quickly) for an unknown CA or a certificate for another name.
// The conformance suite runs once more over TLS with client-certificate authentication.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubernetesDatastore, KubernetesError } from '../../lib/datastore/kubernetes';
import { openDatastore } from '../../lib/datastore/open';
import { datastoreSettings } from '../../lib/datastore/settings';
import { TlsError, UnavailableError } from '../../lib/datastore/types';
import { startFakeApiServer, type FakeApiServer } from '../helpers/fake-apiserver';
import { makePki, type Pki } from './pki';
import { runConformance } from './conformance';

const TOKEN = 'tls-test-token';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-k8s-tls-'));
let pki: Pki;
let api: FakeApiServer;
let wrongName: FakeApiServer;

interface KcOpts { server: string; ca?: 'file' | 'data' | 'other'; user: 'cert-file' | 'cert-data' | 'token' | 'none' }

/** Writes a kubeconfig (YAML, paths relative to its directory where files are used). */
function kubeconfig(name: string, o: KcOpts): string {
  const b64 = (f: string) => pki.read(f).toString('base64');
  const rel = (f: string) => path.relative(dir, f);
  const cluster = o.ca === 'file' ? `    certificate-authority: ${rel(pki.caCert)}`
    : o.ca === 'data' ? `    certificate-authority-data: ${b64(pki.caCert)}`
      : o.ca === 'other' ? `    certificate-authority-data: ${b64(pki.otherCaCert)}` : '';
  const user = o.user === 'cert-file' ? `    client-certificate: ${rel(pki.clientCert)}\n    client-key: ${rel(pki.clientKey)}`
    : o.user === 'cert-data' ? `    client-certificate-data: ${b64(pki.clientCert)}\n    client-key-data: ${b64(pki.clientKey)}`
      : o.user === 'token' ? `    token: ${TOKEN}` : '';
  const file = path.join(dir, name);
  fs.writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${o.server}
${cluster}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
users:
- name: u
  user:${user ? `\n${user}` : ' {}'}
`);
  return file;
}

t.before(async () => {
  pki = makePki(dir);
  api = await startFakeApiServer({ token: TOKEN, tls: { cert: pki.read(pki.serverCert), key: pki.read(pki.serverKey), ca: pki.read(pki.caCert) } });
  wrongName = await startFakeApiServer({ tls: { cert: pki.read(pki.wrongNameCert), key: pki.read(pki.wrongNameKey) } });
});
t.teardown(async () => {
  await api?.stop();
  await wrongName?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('kubeconfig credentials over https', async (t) => {
  const cases: { name: string; kc: Omit<KcOpts, 'server'>; auth: string }[] = [
    { name: 'CA file, client certificate files', kc: { ca: 'file', user: 'cert-file' }, auth: 'cert:brindle' },
    { name: 'CA data, client certificate data', kc: { ca: 'data', user: 'cert-data' }, auth: 'cert:brindle' },
    { name: 'CA data, bearer token', kc: { ca: 'data', user: 'token' }, auth: 'token' },
  ];
  for (const [i, c] of cases.entries()) {
    api.reset();
    const before = api.auth[c.auth] ?? 0;
    const ds = openDatastore(datastoreSettings({ datastore_type: 'kubernetes', kubernetes: { kubeconfig: kubeconfig(`kc${i}`, { server: api.url, ...c.kc }) } }, {}));
    try {
      await ds.ping();
      const created = await ds.create({ kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, nodeSelector: 'all()', disabled: false } });
      t.equal((await ds.get('IPPool', 'p')).metadata.revision, created.metadata.revision, `${c.name}: round trip`);
      t.ok((api.auth[c.auth] ?? 0) >= before + 3, `${c.name}: authenticated by ${c.auth}`);
    } finally { await ds.close(); }
  }
});

t.test('no credentials: 401 as KubernetesError', async (t) => {
  const ds = new KubernetesDatastore({ kubeconfig: kubeconfig('kc-anon', { server: api.url, ca: 'data', user: 'none' }) });
  const err = await ds.ping().catch((e) => e);
  await ds.close();
  t.type(err, KubernetesError);
  t.equal(err.status, 401);
});

t.test('in-cluster service account', async (t) => {
  api.reset();
  const sa = path.join(dir, 'serviceaccount');
  fs.mkdirSync(sa, { recursive: true });
  fs.writeFileSync(path.join(sa, 'token'), `${TOKEN}\n`);
  fs.copyFileSync(pki.caCert, path.join(sa, 'ca.crt'));
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  const url = new URL(api.url);
  process.env.KUBERNETES_SERVICE_HOST = url.hostname;
  process.env.KUBERNETES_SERVICE_PORT = url.port;
  t.teardown(() => {
    if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST; else process.env.KUBERNETES_SERVICE_HOST = saved.host;
    if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT; else process.env.KUBERNETES_SERVICE_PORT = saved.port;
  });
  // No kubeconfig anywhere: the settings leave it unset, so the backend goes in-cluster.
  const settings = datastoreSettings({ datastore_type: 'kubernetes' }, {});
  t.equal(settings.kubeconfig, undefined);
  const ds = new KubernetesDatastore({ ...settings, kubeServiceAccountDir: sa });
  t.teardown(() => ds.close());
  const before = api.auth.token ?? 0;
  await ds.create({ kind: 'BGPPeer', metadata: { name: 'rr1' }, spec: { peerIP: '198.18.0.1', asNumber: 64512 } });
  t.equal((await ds.get('BGPPeer', 'rr1')).spec.peerIP, '198.18.0.1');
  t.equal(api.auth.token, before + 2, 'authenticated by the service account token');

  // The projected token rotates: the server accepts only the new one; the client re-reads the file on 401.
  api.setToken('rotated-token');
  fs.writeFileSync(path.join(sa, 'token'), 'rotated-token\n');
  t.equal((await ds.get('BGPPeer', 'rr1')).spec.asNumber, 64512, 'request after rotation succeeds');
  api.setToken(TOKEN);

  // A service account directory without a token is a clear configuration error.
  t.throws(() => new KubernetesDatastore({ kubeServiceAccountDir: path.join(dir, 'missing') }), TypeError);
});

t.test('unknown CA or wrong name: TlsError naming the server, without waiting', async (t) => {
  const cases = [
    { name: 'server certificate from another CA', server: () => api.url, ca: 'other' as const },
    { name: 'certificate for another name', server: () => wrongName.url, ca: 'data' as const },
    { name: 'no CA given: system roots do not know ours', server: () => api.url, ca: undefined },
  ];
  for (const c of cases) {
    const ds = new KubernetesDatastore({ kubeconfig: kubeconfig('kc-bad', { server: c.server(), ca: c.ca, user: 'token' }), timeoutMs: 5000 });
    const t0 = Date.now();
    const err = await ds.get('IPPool', 'x').catch((e) => e);
    const ms = Date.now() - t0;
    // A watch reports it through onError, typed the same.
    const werr = await new Promise<Error>((resolve) => ds.watch('IPPool', '0', { onEvent: () => {}, onError: resolve }));
    await ds.close();
    t.type(err, TlsError, `${c.name}: TlsError`);
    t.type(err, UnavailableError, `${c.name}: an UnavailableError (CNI code 11)`);
    t.equal(err.server, c.server(), `${c.name}: names the server`);
    t.match(err.code, /^[A-Z_]+$/, `${c.name}: carries the TLS code (${err.code})`);
    t.ok(ms < 2500, `${c.name}: fails in ${ms} ms, well before the 5000 ms deadline`);
    t.type(werr, TlsError, `${c.name}: watch error is a TlsError`);
  }
});

t.test('conformance over https with a client certificate', async (t) => {
  const kc = kubeconfig('kc-conf', { server: api.url, ca: 'file', user: 'cert-file' });
  runConformance(t, {
    atomicApply: false,
    async fresh() { api.reset(); return new KubernetesDatastore({ kubeconfig: kc }); },
    async another() { return new KubernetesDatastore({ kubeconfig: kc }); },
    async prepareNode(name) { api.addNode(name, { zone: 'z1' }); },
  });
});
