// The start-up shortcuts of the plugin, each against the thing it replaces: the JS SHA-1
// against node:crypto, isoTime against toISOString, and IPAM delegation through posix_spawn
// (lib/cni/delegate.ts) against what a child must see: its stdin, its environment, default
// signal dispositions, an exit status or a signal, and big inputs through the fallback.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha1Hex, hostVethName } from '../../lib/dataplane/naming';
import { isoTime } from '../../lib/log';
import { delegateIpam } from '../../lib/cni/delegate';
import { CniError } from '../../lib/cni/errors';
import type { CniRequest } from '../../lib/cni/types';
import { builtAfterSources } from '../helpers/dist';

t.test('sha1Hex equals node:crypto sha1 (block edges, UTF-8)', async (t) => {
  let bad = 0;
  for (let n = 0; n < 200; n++) {
    const s = 'x'.repeat(n) + (n % 7 === 0 ? 'é漢🙂' : '');
    if (sha1Hex(s) !== createHash('sha1').update(s).digest('hex')) bad++;
  }
  t.equal(bad, 0);
  t.equal(sha1Hex('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d', 'FIPS 180 vector');
  t.equal(hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c' }),
    'bri' + createHash('sha1').update('default.web-0').digest('hex').slice(0, 11));
});

t.test('isoTime equals toISOString', async (t) => {
  for (const ms of [0, 951782400000, 1709251199999, 4102444800123, Date.now()]) t.equal(isoTime(ms), new Date(ms).toISOString());
});

t.test('delegation through posix_spawn', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-spawn-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const plugin = (name: string, body: string) => {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  };
  const req = (type: string, extra: Record<string, unknown> = {}): CniRequest => {
    const config = { cniVersion: '1.0.0', name: 'n', type: 'brindle', ipam: { type }, ...extra };
    return { verb: 'ADD', containerId: 'c1', netns: '/var/run/netns/x', ifname: 'eth0', args: {}, path: [dir], config, stdin: JSON.stringify(config) } as CniRequest;
  };
  const fail = (fn: () => unknown): CniError => {
    try { fn(); } catch (e) { if (e instanceof CniError) return e; throw e; }
    throw new Error('no error');
  };

  // Echoes what it was given: stdin, the CNI variables, its ignored-signal mask.
  plugin('echo', [
    'in=$(cat)',
    'ign=$(sed -n "s/^SigIgn:[[:space:]]*//p" /proc/$$/status)',
    'printf \'{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/32"}],"dns":{"domain":"%s|%s|%s|%s|%s"}}\' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$ign" "$(printf %s "$in" | wc -c)"',
  ].join('\n'));
  const r = delegateIpam(req('echo'), 'ADD')!;
  t.same(r.ips, [{ address: '10.9.0.2/32' }], 'result parsed');
  const [verb, cid, ifname, sigIgn, inLen] = String(r.dns?.domain).split('|');
  t.same([verb, cid, ifname], ['ADD', 'c1', 'eth0'], 'CNI variables passed');
  t.equal(Number(inLen), req('echo').stdin!.length, 'stdin passed whole');
  // Node ignores SIGPIPE; the child must start with default dispositions (bit 13 = SIGPIPE).
  t.equal(BigInt(`0x${sigIgn}`) & (1n << 12n), 0n, 'SIGPIPE not ignored in the child');

  plugin('err', 'cat >/dev/null; echo \'{"code":7,"msg":"bad range"}\'; exit 1');
  const e1 = fail(() => delegateIpam(req('err'), 'ADD'));
  t.equal(e1.code, 7, 'spec code passed through');
  t.match(e1.msg, /bad range/);

  plugin('killed', 'kill -9 $$');
  t.equal(fail(() => delegateIpam(req('killed'), 'ADD')).code, 110, 'killed child: ipam failure');

  plugin('noread', 'echo \'{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.3/32"}]}\'');
  t.same(delegateIpam(req('noread'), 'ADD')!.ips, [{ address: '10.9.0.3/32' }], 'child that never reads stdin');

  // Above 60 KiB of stdin the child_process fallback runs.
  const big = req('echo', { pad: 'p'.repeat(100 * 1024) });
  const rb = delegateIpam(big, 'ADD')!;
  t.equal(Number(String(rb.dns?.domain).split('|')[4]), big.stdin!.length, 'big stdin passed whole');

  fs.writeFileSync(path.join(dir, 'notexec'), 'not a program', { mode: 0o755 });
  t.equal(fail(() => delegateIpam(req('notexec'), 'ADD')).code, 110, 'exec failure is an ipam error');
  t.equal(fail(() => delegateIpam(req('absent'), 'ADD')).code, 110, 'absent plugin');

  // DEL: nothing on stdout is fine.
  plugin('quiet', 'cat >/dev/null; exit 0');
  t.equal(delegateIpam({ ...req('quiet'), verb: 'DEL' }, 'DEL'), undefined);
});

t.test('the built executable runs the CNI-only bundle exactly for plugin invocations', async (t) => {
  const root = path.resolve(__dirname, '../..');
  const exe = path.join(root, 'dist/brindle');
  if (!builtAfterSources(root, exe) && !process.env.BRINDLE_USE_DIST) { t.plan(0, 'dist/brindle is older than the sources (npm run build)'); return; }
  const nativeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-native-'));
  t.teardown(() => fs.rmSync(nativeDir, { recursive: true, force: true }));
  const run = (argv0: string, args: string[], cniCommand: string | undefined, extra: Record<string, string> = {}) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, BRINDLE_NATIVE_DIR: nativeDir, BRINDLE_DEBUG_CCACHE: '1', BRINDLE_ARGV0: argv0, ...extra };
    if (cniCommand !== undefined) env.CNI_COMMAND = cniCommand;
    return spawnSync(exe, args, { env, input: '{"cniVersion":"1.1.0"}', encoding: 'utf8' });
  };
  const bundleOf = (stderr: string) => /brindle: (\w+) code cache/.exec(stderr)?.[1];
  let r = run('brindle', [], 'VERSION');
  t.equal(bundleOf(r.stderr), 'cni', 'brindle with CNI_COMMAND: the CNI bundle');
  t.match(r.stdout, /"supportedVersions"/);
  r = run('brindle-ipam', [], 'VERSION');
  t.equal(bundleOf(r.stderr), 'cni', 'brindle-ipam with CNI_COMMAND: the CNI bundle');
  t.match(r.stdout, /"supportedVersions"/);
  r = run('brindle', ['--version'], undefined);
  t.equal(bundleOf(r.stderr), 'brindle', 'no CNI_COMMAND: the whole bundle');
  t.match(r.stdout, /^brindle \d/);
  r = run('brindlectl', ['version'], 'ADD');
  t.equal(bundleOf(r.stderr), 'brindle', 'brindlectl, even with CNI_COMMAND in its environment: the whole bundle');
  t.match(r.stdout, /^brindlectl \d/);
  r = run('brindle', ['ctl', 'version'], 'ADD');
  t.equal(bundleOf(r.stderr), 'brindle', 'arguments mean a command, not a plugin call: the whole bundle');
  t.match(r.stdout, /^brindlectl \d/);
  // BRINDLE_DEBUG_TIMING: Node's milestones, the loader's and the plugin's, in order, on stderr.
  r = run('brindle', [], 'VERSION', { BRINDLE_DEBUG_TIMING: '1' });
  const labels = r.stderr.split('\n').map((l) => /^\s*[\d.]+(?:\s+cpu\s+[\d.]+)?\s+(.+)$/.exec(l)?.[1]).filter(Boolean);
  t.same(labels.slice(0, 4), ['node: v8 start', 'node: environment', 'node: bootstrap complete', 'loader']);
  t.ok(labels.includes('request parsed') && labels[labels.length - 1] === 'exit', labels.join(', '));
});
