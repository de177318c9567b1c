// Bad input gives one line on stderr naming the culprit and a non-zero exit; nothing is
// written when any document is invalid; --help works on every command.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { POOL_A, brindlectl } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-errors-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const env = { DATASTORE_TYPE: 'embedded', BRINDLE_DB: path.join(dir, 'brindle.db') };
const ctl = (args: string[], input?: string) => brindlectl(args, { env, input });
const pool = (name: string, spec: string) => `apiVersion: brindle.dev/v1\nkind: IPPool\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

t.before(async () => {
  const r = await ctl(['apply', '-f', '-'], POOL_A);
  if (r.code !== 0) throw new Error(r.stderr);
});

t.test('bad input', async (t) => {
  const cases: { name: string; args: string[]; input?: string; code?: number; culprit: RegExp[] }[] = [
    { name: 'malformed YAML names the line', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: IPPool\nmetadata:\n  name: x\n   bad: 1\n', culprit: [/line 5/] },
    { name: 'unterminated quote', args: ['apply', '-f', '-'], input: 'kind: "IPPool\n', culprit: [/line 1/, /quote/] },
    { name: 'malformed JSON', args: ['apply', '-f', '-'], input: '{"kind": "IPPool",', culprit: [/JSON/] },
    { name: 'unknown kind in a document', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: Pod\nmetadata: {name: x}\n', culprit: [/document 1/, /kind/, /Pod/] },
    { name: 'managed kind cannot be applied', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: IPAMBlock\nmetadata: {name: x}\n', culprit: [/IPAMBlock/] },
    { name: 'wrong apiVersion', args: ['apply', '-f', '-'], input: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: x}\nspec: {cidr: 10.9.0.0/16}\n', culprit: [/apiVersion/] },
    { name: 'invalid CIDR in document 2', args: ['apply', '-f', '-'], input: `${pool('ok-pool', '  cidr: 10.50.0.0/16\n')}---\n${pool('pool-b', '  cidr: 10.300.0.0/16\n')}`, culprit: [/document 2/, /pool-b/, /spec\.cidr/, /10\.300\.0\.0\/16/] },
    { name: 'host bits set', args: ['apply', '-f', '-'], input: pool('hb', '  cidr: 10.60.0.1/16\n'), culprit: [/spec\.cidr/, /host bits/] },
    { name: 'block size out of range', args: ['apply', '-f', '-'], input: pool('bs', '  cidr: 10.61.0.0/16\n  blockSize: 40\n'), culprit: [/spec\.blockSize/] },
    { name: 'overlapping pool', args: ['apply', '-f', '-'], input: pool('over', '  cidr: 10.244.128.0/17\n'), culprit: [/over/, /spec\.cidr/, /pool-a/] },
    { name: 'pools overlapping each other in one file', args: ['apply', '-f', '-'], input: `${pool('p1', '  cidr: 10.70.0.0/16\n')}---\n${pool('p2', '  cidr: 10.70.1.0/24\n')}`, culprit: [/p1|p2/, /overlaps/] },
    { name: 'unknown field', args: ['apply', '-f', '-'], input: pool('uf', '  cidr: 10.62.0.0/16\n  blocksize: 26\n'), culprit: [/spec\.blocksize/] },
    { name: 'bad mode', args: ['apply', '-f', '-'], input: pool('bm', '  cidr: 10.63.0.0/16\n  ipipMode: Sometimes\n'), culprit: [/spec\.ipipMode/] },
    { name: 'bad selector', args: ['apply', '-f', '-'], input: pool('bsel', "  cidr: 10.64.0.0/16\n  nodeSelector: \"a == \"\n"), culprit: [/spec\.nodeSelector/] },
    { name: 'changing a pool CIDR', args: ['apply', '-f', '-'], input: POOL_A.replace('10.244.0.0/16', '10.245.0.0/16'), culprit: [/pool-a/, /spec\.cidr/] },
    { name: 'bad AS in a BGPPeer', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 198.18.0.1, asNumber: 0}\n', culprit: [/spec\.asNumber/] },
    { name: 'bad peer IP', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 198.18.0.300, asNumber: 64512}\n', culprit: [/spec\.peerIP/, /198\.18\.0\.300/] },
    { name: 'missing name', args: ['apply', '-f', '-'], input: 'apiVersion: brindle.dev/v1\nkind: IPPool\nmetadata: {}\nspec: {cidr: 10.65.0.0/16}\n', culprit: [/metadata\.name/] },
    { name: 'missing file', args: ['apply', '-f', '/nonexistent/x.yaml'], culprit: [/\/nonexistent\/x\.yaml/] },
    { name: 'bad AS', args: ['config', 'set', 'as', '4294967296'], culprit: [/4294967296/] },
    { name: 'AS not a number', args: ['config', 'set', 'as', 'sixty'], culprit: [/sixty/] },
    { name: 'bad mesh value', args: ['config', 'set', 'node-to-node-mesh', 'maybe'], culprit: [/maybe/] },
    { name: 'unknown config key', args: ['config', 'set', 'mesh', 'off'], code: 2, culprit: [/mesh/] },
    { name: 'unknown kind', args: ['get', 'pods'], code: 2, culprit: [/pods/] },
    { name: 'unknown command', args: ['frobnicate'], code: 2, culprit: [/frobnicate/] },
    { name: 'unknown flag', args: ['get', 'pools', '--colour'], code: 2, culprit: [/--colour/] },
    { name: 'bad output format', args: ['get', 'pools', '-o', 'xml'], code: 2, culprit: [/xml/] },
    { name: 'release without target', args: ['ipam', 'release'], code: 2, culprit: [/--ip|--handle/] },
    { name: 'release a bad address', args: ['ipam', 'release', '--ip', '10.1.2'], culprit: [/10\.1\.2/] },
    { name: 'delete a missing pool', args: ['delete', 'ippool', 'ghost'], culprit: [/ghost/] },
    { name: 'bad datastore type', args: ['get', 'pools', '--datastore-type', 'mongo'], culprit: [/mongo/] },
  ];
  for (const c of cases) {
    const r = await ctl(c.args, c.input);
    t.equal(r.code, c.code ?? 1, `${c.name}: exit code (${r.stderr.trim()})`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${c.name}: one line on stderr`);
    for (const re of c.culprit) t.match(r.stderr, re, `${c.name}: names ${re}`);
  }
  // Nothing from the failed applies was written.
  const r = await ctl(['get', 'pools']);
  t.match(r.stdout, /^NAME\s+CIDR\s+SELECTOR\npool-a\s/);
  t.equal(r.stdout.trim().split('\n').length, 2, 'only pool-a exists');
});

t.test('--help on every command', async (t) => {
  for (const args of [['--help'], ['apply', '--help'], ['get', '-h'], ['delete', '--help'], ['config', '--help'], ['config', 'set', '--help'], ['node', 'status', '--help'], ['ipam', '--help'], ['ipam', 'show', '-h'], ['help', 'get']]) {
    const r = await ctl(args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stdout, /Usage/, args.join(' '));
  }
  const r = await ctl([]);
  t.equal(r.code, 0);
  t.match(r.stdout, /node-to-node-mesh/);
});
