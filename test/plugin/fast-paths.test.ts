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
import { claimEarlyIpam, releaseUnclaimedEarlyIpam, startEarlyIpam } from '../../lib/cni/early';
import { validateIfname } from '../../lib/cni/skel';
import { CniError } from '../../lib/cni/errors';
import type { CniRequest } from '../../lib/cni/types';
import { builtAfterSources } from '../helpers/dist';
import { spawnAttr, startOnOwnCpu, startPlugin } from '../../lib/native/spawn';
import { libcLib } from '../../lib/native/koffi';

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
  t.equal(hostVethName({ containerId: 'abc' }), 'bri' + createHash('sha1').update('abc').digest('hex').slice(0, 11), 'no pod: the container id');
  t.not(hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c', ifname: 'net1' }),
    hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c' }), 'a second interface gets its own name');
});

t.test('isoTime equals toISOString', async (t) => {
  for (const ms of [0, 951782400000, 1709251199999, 4102444800123, Date.now()]) t.equal(isoTime(ms), new Date(ms).toISOString());
});

t.test('the spawn attributes filled in by hand are the bytes glibc functions make', async (t) => {
  const lib = libcLib();
  const f = (p: string) => lib.func(p) as (...a: unknown[]) => number;
  const attr = new Uint8Array(336), sigs = new Uint8Array(128), mask = new Uint8Array(128);
  t.equal(f('int posix_spawnattr_init(void *attr)')(attr), 0);
  f('int sigfillset(void *set)')(sigs);
  f('int sigemptyset(void *set)')(mask);
  t.equal(f('int posix_spawnattr_setsigdefault(void *attr, const void *set)')(attr, sigs), 0);
  t.equal(f('int posix_spawnattr_setsigmask(void *attr, const void *set)')(attr, mask), 0);
  t.equal(f('int posix_spawnattr_setflags(void *attr, short flags)')(attr, 0x04 | 0x08), 0);
  t.equal(Buffer.from(spawnAttr()).toString('hex'), Buffer.from(attr).toString('hex'), 'SETSIGDEF (all but glibc internals) + SETSIGMASK (empty)');
  const back = new Uint8Array(128);
  t.equal(f('int posix_spawnattr_getsigdefault(const void *attr, void *set)')(spawnAttr(), back), 0);
  t.same(back, sigs, 'glibc reads back the sigfillset set');
});

t.test('a spawned plugin starts on this thread\'s CPU, then runs on the others; this thread\'s affinity comes back', async (t) => {
  const lib = libcLib();
  const getaff = lib.func('int sched_getaffinity(int pid, size_t size, void *mask)') as (...a: unknown[]) => number;
  const setaff = lib.func('int sched_setaffinity(int pid, size_t size, const void *mask)') as (...a: unknown[]) => number;
  const cpus = (mask: Uint8Array) => [...Array(mask.length * 8).keys()].filter((i) => mask[i >> 3] & (1 << (i & 7)));
  const mine = () => { const m = new Uint8Array(128); t.equal(getaff(0, 128, m), 0); return m; };
  // The child reports its allowed CPUs after a pause, by when the parent has moved it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-cpu-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const child = path.join(dir, 'child');
  fs.writeFileSync(child, '#!/bin/sh\nsleep 0.2\ngrep Cpus_allowed_list /proc/self/status\n', { mode: 0o755 });
  const listed = (out: string) => {
    const m = /Cpus_allowed_list:\s*(\S+)/.exec(out);
    if (!m) return [];
    return m[1].split(',').flatMap((r) => { const [a, b = a] = r.split('-').map(Number); return Array.from({ length: b - a + 1 }, (_, i) => a + i); });
  };
  const before = mine();
  const all = cpus(before);
  const out = startPlugin(child, { PATH: '/usr/bin:/bin' }, '').finish();
  t.equal(out.status, 0);
  t.same(cpus(mine()), all, 'this thread may use the same CPUs as before');
  if (all.length >= 2) {
    const got = listed(out.stdout);
    t.equal(got.length, all.length - 1, `the child runs on all but one of ${all.join(',')}: ${got.join(',')}`);
    t.ok(got.every((c) => all.includes(c)), 'and only on CPUs this thread may use');
  } else {
    t.same(listed(out.stdout), all, 'one CPU: the child keeps it');
  }
  // Pinned to one CPU, there is nothing to gain: no change, and the child inherits the one CPU.
  const one = new Uint8Array(128);
  one[all[0] >> 3] = 1 << (all[0] & 7);
  t.equal(setaff(0, 128, one), 0);
  try {
    t.equal(startOnOwnCpu(), undefined, 'a single CPU: nothing done');
    t.same(listed(startPlugin(child, { PATH: '/usr/bin:/bin' }, '').finish().stdout), [all[0]]);
  } finally {
    setaff(0, 128, before);
  }
  t.same(cpus(mine()), all);
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

t.test('early IPAM start: claimed when the plugin asks for exactly it, released when not', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-early-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logFile = path.join(dir, 'calls');
  const state = path.join(dir, 'state');
  // Records each call; ADD of a container named fail* fails.
  fs.writeFileSync(path.join(dir, 'rec'), `#!/bin/sh\ncat >/dev/null\necho "$CNI_COMMAND $CNI_CONTAINERID" >> ${logFile}\ncase "$CNI_CONTAINERID" in fail*) echo '{"code":11,"msg":"no"}'; exit 1;; esac\necho '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.9/32"}]}'\n`, { mode: 0o755 });
  const calls = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean) : []);
  const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'brindle', ipam: { type: 'rec' }, ...extra });
  const env = (cid: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    PATH: '/usr/bin:/bin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: cid, CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0',
    CNI_PATH: dir, CNI_ARGS: '', BRINDLE_STATE_DIR: state, ...extra,
  });
  const file = path.join(dir, 'rec');
  const ipamEnv = (e: NodeJS.ProcessEnv) => ({ ...e, CNI_COMMAND: 'ADD', CNI_PATH: dir });
  fs.rmSync(logFile, { force: true });

  startEarlyIpam(env('c1'), () => conf());
  const claimed = claimEarlyIpam('rec', ipamEnv(env('c1')), conf());
  t.ok(claimed, 'same plugin, environment and stdin: claimed');
  t.equal(claimed!.file, file, 'the file it found');
  t.equal(claimed!.running.finish().status, 0);
  t.equal(claimEarlyIpam('rec', ipamEnv(env('c1')), conf()), undefined, 'claimed once');
  t.same(calls(), ['ADD c1']);

  startEarlyIpam(env('c2'), () => conf());
  t.equal(claimEarlyIpam('rec', ipamEnv(env('c2', { K8S_EXTRA: '1' })), conf()), undefined, 'another environment: not claimed');
  t.same(calls(), ['ADD c1', 'ADD c2', 'DEL c2'], 'the early ADD was released');

  startEarlyIpam(env('c3'), () => conf());
  releaseUnclaimedEarlyIpam();
  t.same(calls().slice(3), ['ADD c3', 'DEL c3'], 'never claimed: released at exit');

  startEarlyIpam(env('fail4'), () => conf());
  releaseUnclaimedEarlyIpam();
  t.same(calls().slice(5), ['ADD fail4'], 'a failed early ADD holds nothing: no DEL');

  // Not started: other verbs, our own IPAM, doubtful input, an existing attachment.
  const before = calls().length;
  startEarlyIpam(env('c5', { CNI_COMMAND: 'DEL' }), () => conf());
  startEarlyIpam(env('c6'), () => conf({ ipam: { type: 'brindle-ipam' } }));
  startEarlyIpam(env('-bad'), () => conf());
  startEarlyIpam(env('c7', { CNI_IFNAME: 'eth0:1' }), () => conf());
  startEarlyIpam(env('c8'), () => conf({ cniVersions: ['1.0.0'] }));
  startEarlyIpam(env('c9'), () => '{not json');
  fs.mkdirSync(path.join(state, 'attachments/net'), { recursive: true });
  fs.writeFileSync(path.join(state, 'attachments/net/c10-eth0.json'), '{}');
  startEarlyIpam(env('c10'), () => conf());
  releaseUnclaimedEarlyIpam();
  t.equal(calls().length, before, 'nothing started');
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
  // Built as root with host-local at hand, the executable carries a code cache trained by real
  // ADDs, per IPAM flavour, chosen by the config's ipam.type (stdin).
  if (process.getuid?.() === 0 && fs.existsSync('/usr/lib/cni/host-local')) {
    for (const flavour of ['host-local', 'brindle-ipam']) {
      const v = spawnSync(exe, [], { env: { PATH: process.env.PATH, BRINDLE_NATIVE_DIR: nativeDir, BRINDLE_DEBUG_CCACHE: '1', BRINDLE_ARGV0: 'brindle', CNI_COMMAND: 'VERSION' },
        input: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'brindle', ipam: { type: flavour } }), encoding: 'utf8' });
      t.match(v.stderr, new RegExp(`cni code cache embedded \\[${flavour}\\] accepted`), `trained cache for ${flavour}`);
    }
    // The loader reads stdin in 8 KiB steps, growing its buffer, and decodes UTF-8: a config
    // of 100 KB with non-ASCII text still picks its flavour and reaches the plugin whole.
    const big = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'brindle', pad: 'p'.repeat(100_000), note: 'pod-é漢🙂', ipam: { type: 'host-local' } });
    const v = spawnSync(exe, [], { env: { PATH: process.env.PATH, BRINDLE_NATIVE_DIR: nativeDir, BRINDLE_DEBUG_CCACHE: '1', BRINDLE_ARGV0: 'brindle', CNI_COMMAND: 'VERSION' },
      input: big, encoding: 'utf8' });
    t.match(v.stderr, /cni code cache embedded \[host-local\] accepted/, 'a 100 KB config: its flavour found');
    t.equal(JSON.parse(v.stdout).cniVersion, '1.0.0', 'and the plugin answered in its version');
  }
  // BRINDLE_DEBUG_TIMING: Node's milestones, the loader's and the plugin's, in order, on stderr.
  r = run('brindle', [], 'VERSION', { BRINDLE_DEBUG_TIMING: '1' });
  const labels = r.stderr.split('\n').map((l) => /^\s*[\d.]+(?:\s+cpu\s+[\d.]+)?\s+(.+)$/.exec(l)?.[1]).filter(Boolean);
  t.same(labels.slice(0, 4), ['node: v8 start', 'node: environment', 'node: bootstrap complete', 'loader']);
  t.ok(labels.includes('request parsed') && labels[labels.length - 1] === 'exit', labels.join(', '));
  // An ADD of the brindle plugin with a delegated IPAM starts it from the early script; this one
  // is then refused (the netns does not exist), and what the IPAM plugin allocated is released.
  const ipamDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-early-exe-'));
  t.teardown(() => fs.rmSync(ipamDir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(ipamDir, 'rec'), `#!/bin/sh\ncat >/dev/null\necho "$CNI_COMMAND $CNI_CONTAINERID" >> ${ipamDir}/calls\necho '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.9/32"}]}'\n`, { mode: 0o755 });
  const add = spawnSync(exe, [], {
    env: { PATH: process.env.PATH, BRINDLE_NATIVE_DIR: nativeDir, BRINDLE_ARGV0: 'brindle', BRINDLE_DEBUG_TIMING: '1', BRINDLE_STATE_DIR: path.join(ipamDir, 'state'),
      CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'e1', CNI_NETNS: '/var/run/netns/brindle-no-such-ns', CNI_IFNAME: 'eth0', CNI_PATH: ipamDir, CNI_ARGS: '' },
    input: JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'brindle', log_file_path: path.join(ipamDir, 'cni.log'), ipam: { type: 'rec' } }), encoding: 'utf8',
  });
  t.equal(add.status, 1);
  t.equal(JSON.parse(add.stdout).code, 4, add.stdout);
  t.ok(add.stderr.includes(' early\n'), 'the early script ran');
  t.same(fs.readFileSync(path.join(ipamDir, 'calls'), 'utf8').trim().split('\n'), ['ADD e1', 'DEL e1'], 'early ADD released at exit');
});

t.test('interface names: the UTF-8 length limit counted by hand, as Buffer counts it', async (t) => {
  for (const name of ['eth0', 'abcdefghijklmno', 'abcdefghijklmnop', '\u00e9'.repeat(7), '\u00e9'.repeat(8), '\u7f51'.repeat(5), '\u7f51'.repeat(6),
    'a\u{1f600}'.repeat(3), 'a\u{1f600}'.repeat(4), 'x\ud800y', '\ud800'.repeat(5), '\ud800'.repeat(6), 'z\udc00'.repeat(4)]) {
    const fits = Buffer.byteLength(name) <= 15;
    let err: unknown;
    try { validateIfname(name); } catch (e) { err = e; }
    t.equal(err === undefined, fits, `${JSON.stringify(name)}: ${Buffer.byteLength(name)} bytes`);
  }
});
