// The kubeconfig YAML subset reader, target resolution, and the CRD manifests in conf/crds.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fromKubeconfig, inCluster, parseYaml } from '../../lib/datastore/kubeconfig';
import { GROUP, PLURALS } from '../../lib/datastore/kubernetes';

t.test('parseYaml', async (t) => {
  const cases: { name: string; input: string; want?: unknown; err?: boolean }[] = [
    { name: 'map', input: 'a: 1\nb: x y\nc: "q\\n"\nd: \'it\'\'s\'\n', want: { a: 1, b: 'x y', c: 'q\n', d: 'it\'s' } },
    { name: 'nested', input: 'a:\n  b:\n    c: true\n  d: null\n', want: { a: { b: { c: true }, d: null } } },
    { name: 'sequence at key indent', input: 'l:\n- x\n- y\nm: 1\n', want: { l: ['x', 'y'], m: 1 } },
    { name: 'sequence of maps', input: 'l:\n  - name: a\n    v: 1\n  - name: b\n', want: { l: [{ name: 'a', v: 1 }, { name: 'b' }] } },
    { name: 'comments and urls', input: '# top\nserver: https://1.2.3.4:6443 # c\nk: "a # not"\n', want: { server: 'https://1.2.3.4:6443', k: 'a # not' } },
    { name: 'flow', input: 'a: {}\nb: []\nc: [x, 2]\n', want: { a: {}, b: [], c: ['x', 2] } },
    { name: 'json', input: '{"a": [1]}', want: { a: [1] } },
    { name: 'block scalar unsupported', input: 'a: |\n  x\n', err: true },
    { name: 'tabs', input: 'a:\n\tb: 1\n', err: true },
    { name: 'bad indentation', input: 'a: 1\n  b: 2\n', err: true },
  ];
  for (const c of cases) {
    if (c.err) t.throws(() => parseYaml(c.input), SyntaxError, c.name);
    else t.same(parseYaml(c.input), c.want, c.name);
  }
});

t.test('fromKubeconfig and inCluster', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-kc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'ca.crt'), 'CA');
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, `apiVersion: v1
clusters:
- cluster:
    certificate-authority: ca.crt
    server: https://10.0.0.1:6443/
  name: other
- cluster:
    certificate-authority-data: ${Buffer.from('CA2').toString('base64')}
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
- context: {cluster: other, user: other}
  name: other
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: ${Buffer.from('CERT').toString('base64')}
    client-key-data: ${Buffer.from('KEY').toString('base64')}
`);
  const k = fromKubeconfig(file);
  t.equal(k.server, 'https://127.0.0.1:6443');
  t.equal(k.ca?.toString(), 'CA2');
  t.equal(k.cert?.toString(), 'CERT');
  t.equal(k.key?.toString(), 'KEY');
  t.equal(k.token, undefined);

  const sa = path.join(dir, 'sa');
  fs.mkdirSync(sa);
  fs.writeFileSync(path.join(sa, 'token'), 'tok\n');
  fs.writeFileSync(path.join(sa, 'ca.crt'), 'SACA');
  const ic = inCluster({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, sa);
  t.same({ server: ic.server, token: ic.token, ca: ic.ca?.toString() }, { server: 'https://10.96.0.1:443', token: 'tok', ca: 'SACA' });
  t.throws(() => inCluster({}, sa), TypeError, 'not in a cluster');
});

t.test('CRD manifests match the backend', async (t) => {
  const dir = path.resolve(__dirname, '../../conf/crds');
  const seen: string[] = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const crd = parseYaml(fs.readFileSync(path.join(dir, f), 'utf8')) as any;
    t.equal(crd.kind, 'CustomResourceDefinition', f);
    t.equal(crd.spec.group, GROUP, f);
    t.equal(crd.spec.scope, 'Cluster', f);
    const kind = crd.spec.names.kind as keyof typeof PLURALS;
    t.equal(crd.spec.names.plural, PLURALS[kind], `${f}: plural of ${kind}`);
    t.equal(crd.metadata.name, `${PLURALS[kind]}.${GROUP}`, f);
    const v = crd.spec.versions[0];
    t.same([v.name, v.served, v.storage], ['v1', true, true], f);
    t.equal(v.schema.openAPIV3Schema.properties.spec.type, 'object', f);
    seen.push(kind);
  }
  t.same(seen.sort(), Object.keys(PLURALS).sort(), 'one CRD per kind');
});
