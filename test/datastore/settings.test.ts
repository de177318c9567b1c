// Datastore settings precedence (conflist > environment > defaults), node name, openDatastore.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { datastoreSettings, nodeName, runDir, stateDir } from '../../lib/datastore/settings';
import { openDatastore } from '../../lib/datastore/open';

t.test('datastoreSettings', async (t) => {
  const cases: { name: string; conf?: Record<string, unknown>; env: Record<string, string>; want?: object; err?: boolean }[] = [
    { name: 'defaults', env: {}, want: { type: 'embedded', embeddedPath: '/var/lib/brindle/brindle.db', timeoutMs: 2000 } },
    { name: 'env embedded path', env: { BRINDLE_DB: '/tmp/x.db' }, want: { type: 'embedded', embeddedPath: '/tmp/x.db' } },
    { name: 'conf beats env', conf: { embedded_path: '/c.db' }, env: { BRINDLE_DB: '/e.db' }, want: { embeddedPath: '/c.db' } },
    {
      name: 'etcd from env', env: { DATASTORE_TYPE: 'etcd', ETCD_ENDPOINTS: 'http://a:2379, http://b:2379', ETCD_USERNAME: 'u', ETCD_PASSWORD: 'p', ETCD_CA_CERT_FILE: '/ca' },
      want: { type: 'etcd', etcdEndpoints: ['http://a:2379', 'http://b:2379'], etcdUsername: 'u', etcdPassword: 'p', etcdCaCertFile: '/ca' },
    },
    {
      name: 'etcd from conf (array)', conf: { datastore_type: 'etcd', etcd_endpoints: ['https://c:2379'], etcd_key_file: '/k', etcd_cert_file: '/c' },
      env: { ETCD_ENDPOINTS: 'http://a:2379' }, want: { type: 'etcd', etcdEndpoints: ['https://c:2379'], etcdKeyFile: '/k', etcdCertFile: '/c' },
    },
    { name: 'etcd without endpoints', env: { DATASTORE_TYPE: 'etcd' }, err: true },
    { name: 'kubernetes kubeconfig from conf', conf: { datastore_type: 'kubernetes', kubernetes: { kubeconfig: '/kc' } }, env: { KUBECONFIG: '/e' }, want: { type: 'kubernetes', kubeconfig: '/kc' } },
    { name: 'kubernetes KUBECONFIG list', env: { DATASTORE_TYPE: 'Kubernetes', KUBECONFIG: '/a:/b' }, want: { type: 'kubernetes', kubeconfig: '/a' } },
    { name: 'kubernetes in cluster', env: { DATASTORE_TYPE: 'kubernetes' }, want: { type: 'kubernetes', kubeconfig: undefined } },
    { name: 'timeout', conf: { datastore_timeout_ms: 700 }, env: { DATASTORE_TIMEOUT_MS: '900' }, want: { timeoutMs: 700 } },
    { name: 'unknown type', env: { DATASTORE_TYPE: 'consul' }, err: true },
  ];
  for (const c of cases) {
    if (c.err) { t.throws(() => datastoreSettings(c.conf, c.env), TypeError, c.name); continue; }
    t.match(datastoreSettings(c.conf, c.env), c.want!, c.name);
  }
});

t.test('nodeName, stateDir, runDir', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(nodeName({ nodename: 'c' }, { NODENAME: 'e' }), 'c');
  t.equal(nodeName({}, { NODENAME: 'e', BRINDLE_STATE_DIR: dir }), 'e');
  t.equal(nodeName({}, { BRINDLE_STATE_DIR: dir }), os.hostname(), 'hostname when nothing else');
  fs.writeFileSync(path.join(dir, 'nodename'), 'from-file\n');
  t.equal(nodeName(undefined, { BRINDLE_STATE_DIR: dir }), 'from-file');
  t.equal(stateDir({}), '/var/lib/brindle');
  t.equal(runDir({ BRINDLE_RUN_DIR: '/run/n1' }), '/run/n1');
});

t.test('openDatastore loads only the chosen backend', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-open-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const loaded = () => Object.keys(require.cache).filter((k) => /lib\/datastore\/(etcd|kubernetes|embedded)\.ts$/.test(k)).map((k) => path.basename(k));
  const before = loaded();
  const ds = openDatastore(datastoreSettings({}, { BRINDLE_DB: path.join(dir, 'a', 'b.db') }));
  t.equal(ds.type, 'embedded');
  await ds.ping();
  await ds.close();
  const added = loaded().filter((k) => !before.includes(k));
  t.notOk(added.includes('etcd.ts') || added.includes('kubernetes.ts'), `no other backend loaded (${added.join(', ')})`);
});
