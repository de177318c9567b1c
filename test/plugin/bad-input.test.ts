// Bad input, run the way a runtime would (every CNI_* set, empty when not applicable; config
// on stdin) but straight into the plugin: each case gets its exact spec/brindle code, the
// spec's error JSON on stdout, exit status 1, and leaves no link, address or allocation.
import t from 'tap';
import * as fs from 'node:fs';
import { nsExec, Scope } from '../helpers/netns';
import { brindleConf, cniEnv, cniWorld, globalAddrs, hostLocal, linkNames, nodeNamespace, runDirect } from '../helpers/cni';

interface Case {
  name: string;
  env?: (e: NodeJS.ProcessEnv) => void;
  conf?: (c: any) => void;
  stdin?: string;
  setup?: (pod: string) => void;
  want: number;
}

const cases: Case[] = [
  { name: 'bad json', stdin: '{"cniVersion": "1.0.0", ', want: 6 },
  { name: 'empty stdin', stdin: '', want: 6 },
  { name: 'stdin a json array', stdin: '[1,2]', want: 6 },
  { name: 'stdin a json string', stdin: '"x"', want: 6 },
  { name: 'cniVersion missing', conf: (c) => { delete c.cniVersion; }, want: 1 },
  { name: 'cniVersion 0.2.0', conf: (c) => { c.cniVersion = '0.2.0'; }, want: 1 },
  { name: 'cniVersion unknown', conf: (c) => { c.cniVersion = '9.9.9'; }, want: 1 },
  { name: 'cniVersion a number', conf: (c) => { c.cniVersion = 1; }, want: 1 },
  { name: 'cniVersions without a supported one', conf: (c) => { delete c.cniVersion; c.cniVersions = ['2.0.0']; }, want: 1 },
  { name: 'network name missing', conf: (c) => { delete c.name; }, want: 7 },
  { name: 'network name bad characters', conf: (c) => { c.name = 'a/b'; }, want: 7 },
  { name: 'type missing', conf: (c) => { delete c.type; }, want: 7 },
  { name: 'ipam missing', conf: (c) => { delete c.ipam; }, want: 7 },
  { name: 'ipam not an object', conf: (c) => { c.ipam = 'host-local'; }, want: 7 },
  { name: 'ipam type missing', conf: (c) => { delete c.ipam.type; }, want: 7 },
  { name: 'CNI_COMMAND unknown', env: (e) => { e.CNI_COMMAND = 'ATTACH'; }, want: 4 },
  { name: 'CNI_CONTAINERID empty', env: (e) => { e.CNI_CONTAINERID = ''; }, want: 4 },
  { name: 'CNI_CONTAINERID missing', env: (e) => { delete e.CNI_CONTAINERID; }, want: 4 },
  { name: 'CNI_CONTAINERID leading dash', env: (e) => { e.CNI_CONTAINERID = '-abc'; }, want: 4 },
  { name: 'CNI_CONTAINERID with slash', env: (e) => { e.CNI_CONTAINERID = 'ab/../c'; }, want: 4 },
  { name: 'CNI_NETNS empty', env: (e) => { e.CNI_NETNS = ''; }, want: 4 },
  { name: 'CNI_NETNS does not exist', env: (e) => { e.CNI_NETNS = '/var/run/netns/brindle-no-such-ns'; }, want: 4 },
  { name: 'CNI_IFNAME empty', env: (e) => { e.CNI_IFNAME = ''; }, want: 4 },
  { name: 'CNI_IFNAME 16 characters', env: (e) => { e.CNI_IFNAME = 'abcdefghijklmnop'; }, want: 4 },
  { name: 'CNI_IFNAME .', env: (e) => { e.CNI_IFNAME = '.'; }, want: 4 },
  { name: 'CNI_IFNAME ..', env: (e) => { e.CNI_IFNAME = '..'; }, want: 4 },
  { name: 'CNI_IFNAME with slash', env: (e) => { e.CNI_IFNAME = 'eth/0'; }, want: 4 },
  { name: 'CNI_IFNAME with colon', env: (e) => { e.CNI_IFNAME = 'eth0:1'; }, want: 4 },
  { name: 'CNI_IFNAME with space', env: (e) => { e.CNI_IFNAME = 'eth 0'; }, want: 4 },
  { name: 'CNI_PATH empty', env: (e) => { e.CNI_PATH = ''; }, want: 4 },
  { name: 'CNI_ARGS pair without =', env: (e) => { e.CNI_ARGS = 'IgnoreUnknown=1;junk'; }, want: 4 },
  { name: 'CNI_ARGS unknown key, no IgnoreUnknown', env: (e) => { e.CNI_ARGS = 'FOO=bar'; }, want: 4 },
  { name: 'CNI_ARGS IgnoreUnknown not a bool', env: (e) => { e.CNI_ARGS = 'IgnoreUnknown=maybe'; }, want: 4 },
  { name: 'CHECK at 0.3.1', env: (e) => { e.CNI_COMMAND = 'CHECK'; }, conf: (c) => { c.cniVersion = '0.3.1'; }, want: 1 },
  { name: 'STATUS at 1.0.0', env: (e) => { e.CNI_COMMAND = 'STATUS'; }, conf: (c) => { c.cniVersion = '1.0.0'; }, want: 1 },
  { name: 'GC at 0.4.0', env: (e) => { e.CNI_COMMAND = 'GC'; }, conf: (c) => { c.cniVersion = '0.4.0'; }, want: 1 },
  { name: 'CHECK without prevResult', env: (e) => { e.CNI_COMMAND = 'CHECK'; }, want: 7 },
  { name: 'prevResult malformed', conf: (c) => { c.prevResult = { cniVersion: '1.0.0', ips: 'nope' }; }, want: 6 },
  { name: 'duplicate ifname in the pod', setup: (pod) => nsExec(pod, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']), want: 101 },
  { name: 'ipam binary missing', conf: (c) => { c.ipam.type = 'no-such-ipam'; }, want: 110 },
  { name: 'ipam refuses its config', conf: (c) => { c.ipam = { type: 'host-local' }; }, want: 110 },
  { name: 'ipam range exhausted', conf: (c) => { c.ipam.ranges = [[{ subnet: '10.244.50.0/24', rangeStart: '10.244.50.9', rangeEnd: '10.244.50.9' }]]; }, want: 110 },
];

let scope: Scope;
t.before(() => { scope = new Scope(); });
t.teardown(() => scope.cleanup());

t.test(`bad input: ${cases.length} cases, exact codes, nothing left behind`, async (t) => {
  t.ok(cases.length >= 30);
  const w = cniWorld(scope);
  const node = nodeNamespace(scope);
  // The exhausted range's only address is already held by another container.
  fs.mkdirSync(`${w.ipamDir}/bad`, { recursive: true });
  fs.writeFileSync(`${w.ipamDir}/bad/10.244.50.9`, 'someone-else\r\neth0');
  const nodeLinks = linkNames(node).sort();
  const nodeAddrs = globalAddrs(node).sort();
  for (const [i, c] of cases.entries()) {
    await t.test(c.name, async (t) => {
      const pod = scope.netns('pod');
      c.setup?.(pod);
      const podLinks = linkNames(pod).sort();
      const conf: any = { cniVersion: '1.0.0', name: 'bad', ...brindleConf(w, hostLocal(w, [['10.244.51.0/24']])) };
      c.conf?.(conf);
      const env = cniEnv(w, 'ADD', { containerId: `bad${i}`, netns: `/var/run/netns/${pod}`, ifname: 'eth0', args: 'IgnoreUnknown=1' });
      c.env?.(env);
      const r = runDirect(node, w.plugin, env, c.stdin ?? JSON.stringify(conf));
      t.equal(r.status, 1, 'exit status 1');
      t.equal(r.json?.code, c.want, `code ${c.want}: ${r.stdout.trim()}`);
      t.type(r.json?.msg, 'string', 'msg');
      t.type(r.json?.cniVersion, 'string', 'cniVersion');
      t.same(linkNames(node).sort(), nodeLinks, 'no link left in the node');
      t.same(globalAddrs(node).sort(), nodeAddrs, 'no address left in the node');
      t.same(linkNames(pod).sort(), podLinks, 'no link left in the pod');
      t.same(globalAddrs(pod), [], 'no address in the pod');
    });
  }
  const held = fs.readdirSync(`${w.ipamDir}/bad`).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  t.same(held, ['10.244.50.9'], 'no address allocated by a failed ADD');
  t.same(fs.existsSync(`${w.stateDir}/attachments/bad`) ? fs.readdirSync(`${w.stateDir}/attachments/bad`) : [], [], 'no attachment record');
});
