import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseYamlDocuments } from '../../lib/ctl/yaml';

const conf = path.resolve(__dirname, '../../conf');

function docs(file: string): any[] {
  return parseYamlDocuments(fs.readFileSync(path.join(conf, file), 'utf8')).map((d) => d.value as any);
}

t.test('the DaemonSet manifest parses and its RBAC covers every CRD', async (t) => {
  const all = docs('brindle.yaml');
  t.same(all.map((d) => d.kind), ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Deployment']);
  const role = all.find((d) => d.kind === 'ClusterRole');
  const granted = new Set<string>(role.rules.filter((r: any) => r.apiGroups.includes('brindle.dev')).flatMap((r: any) => r.resources));
  const crds = fs.readdirSync(path.join(conf, 'crds')).filter((f) => f.endsWith('.yaml'));
  t.ok(crds.length >= 7, 'one CRD per kind');
  for (const f of crds) {
    const [crd] = docs(path.join('crds', f));
    t.equal(crd.spec.group, 'brindle.dev', `${f}: group`);
    t.ok(granted.has(crd.spec.names.plural), `${f}: ${crd.spec.names.plural} granted to the node role`);
  }
  const ds = all.find((d) => d.kind === 'DaemonSet');
  const agent = ds.spec.template.spec.containers.find((c: any) => c.name === 'agent');
  t.same(agent.command.slice(0, 2), ['/usr/local/bin/brindle', 'agent']);
  t.equal(ds.spec.template.spec.initContainers[0].command[1], 'install');
  const ctl = all.find((d) => d.kind === 'Deployment');
  t.same(ctl.spec.template.spec.containers[0].command.slice(0, 2), ['/usr/local/bin/brindle', 'controller']);
  const core = role.rules.find((r: any) => r.apiGroups.includes('') && r.resources.includes('pods'));
  t.ok(core.verbs.includes('list'), 'the controller may list pods');
});

t.test('the example conflist starts with brindle and delegates to brindle-ipam', async (t) => {
  const c = JSON.parse(fs.readFileSync(path.join(conf, '10-brindle.conflist'), 'utf8'));
  t.equal(c.cniVersion, '1.1.0');
  t.equal(c.plugins[0].type, 'brindle');
  t.equal(c.plugins[0].ipam.type, 'brindle-ipam');
  t.same(c.plugins.map((p: any) => p.type), ['brindle', 'portmap', 'bandwidth']);
});
