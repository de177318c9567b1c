import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { install } from '../../plugins/install/main';
import { nsExec, Scope } from '../helpers/netns';

const dist = path.resolve(__dirname, '../../dist/brindle');

t.test('install writes the executable, the ipam link and a conflist', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, 'fake-exe');
  fs.writeFileSync(exe, 'binary');
  const wrote = install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), exe, env: { DATASTORE_TYPE: 'etcd', ETCD_ENDPOINTS: 'http://127.0.0.1:2379' }, mtu: () => 1440 });
  t.equal(wrote.length, 3);
  t.equal(fs.readFileSync(path.join(dir, 'bin/brindle'), 'utf8'), 'binary');
  t.equal(fs.readlinkSync(path.join(dir, 'bin/brindle-ipam')), 'brindle');
  const conf = JSON.parse(fs.readFileSync(path.join(dir, 'net.d/10-brindle.conflist'), 'utf8'));
  t.equal(conf.plugins[0].type, 'brindle');
  t.equal(conf.plugins[0].datastore_type, 'etcd');
  t.equal(conf.plugins[0].etcd_endpoints, 'http://127.0.0.1:2379');
  t.equal(conf.plugins[0].mtu, 1440, 'detected MTU written');
  install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), exe, env: { CNI_MTU: '1380' }, mtu: () => 1440 });
  t.equal(JSON.parse(fs.readFileSync(path.join(dir, 'net.d/10-brindle.conflist'), 'utf8')).plugins[0].mtu, 1380, 'CNI_MTU wins');
  install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), exe, env: {}, mtu: () => { throw new Error('no netlink'); } });
  t.notOk('mtu' in JSON.parse(fs.readFileSync(path.join(dir, 'net.d/10-brindle.conflist'), 'utf8')).plugins[0], 'no MTU when detection fails');
  t.equal(fs.statSync(path.join(dir, 'bin/brindle')).mode & 0o777, 0o755);
});

t.test('a conflist whose first plugin is not brindle is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.conflist');
  fs.writeFileSync(bad, JSON.stringify({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'ptp' }] }));
  t.throws(() => install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), conflist: bad, exe: bad }), /plugins\[0\]\.type/);
  t.notOk(fs.existsSync(path.join(dir, 'net.d/10-brindle.conflist')), 'nothing written');
});

t.test('the built executable installs itself and its links dispatch', { skip: !fs.existsSync(dist) && 'dist/brindle not built (npm run build)' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Inside a namespace of ours whose default route leaves by an uplink of MTU 1400: that MTU
  // goes into the conflist (nothing is read from or written to the root namespace).
  const scope = new Scope();
  t.teardown(() => scope.cleanup());
  const ns = scope.netns('inst');
  nsExec(ns, 'ip', ['link', 'add', 'up0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'up1']);
  nsExec(ns, 'ip', ['addr', 'add', '198.18.7.1/24', 'dev', 'up0']);
  nsExec(ns, 'ip', ['link', 'set', 'up0', 'up']);
  nsExec(ns, 'ip', ['link', 'set', 'up1', 'up']);
  nsExec(ns, 'ip', ['route', 'add', 'default', 'via', '198.18.7.254']);
  const out = nsExec(ns, dist, ['install', '--cni-bin-dir', path.join(dir, 'bin'), '--cni-conf-dir', path.join(dir, 'net.d')]);
  t.match(out, /installed .*10-brindle\.conflist/);
  t.equal(JSON.parse(fs.readFileSync(path.join(dir, 'net.d/10-brindle.conflist'), 'utf8')).plugins[0].mtu, 1400, 'uplink MTU detected');
  const version = spawnSync(path.join(dir, 'bin/brindle'), ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  t.match(version.stdout, /^brindle \d+\.\d+\.\d+/);
  const bad = spawnSync(dist, ['install', '--nope'], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /--nope/);
});
