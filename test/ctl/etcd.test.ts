// brindlectl against a real etcd (Debian etcd-server), and the --etcd-endpoints flag.
import t from 'tap';
import { startEtcd, type EtcdServer } from '../helpers/etcd';
import { POOL_A, brindlectl } from './helpers';
import { ctlSuite } from './suite';

let etcd: EtcdServer;
t.before(async () => { etcd = await startEtcd({ unsafeNoFsync: true }); });
t.teardown(async () => { await etcd?.stop(); });

ctlSuite(t, () => ({ DATASTORE_TYPE: 'etcd', ETCD_ENDPOINTS: etcd.endpoint }));

t.test('flags instead of the environment; an unreachable etcd is one clear line', async (t) => {
  let r = await brindlectl(['apply', '-f', '-', '--datastore-type', 'etcd', `--etcd-endpoints=${etcd.endpoint}`], { input: POOL_A.replace('pool-a', 'pool-f') });
  t.equal(r.code, 0, r.stderr);
  r = await brindlectl(['--datastore-type', 'etcd', '--etcd-endpoints', etcd.endpoint, 'get', 'pool', 'pool-f']);
  t.match(r.stdout, /pool-f/);
  r = await brindlectl(['get', 'pools', '--datastore-type', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:1']);
  t.equal(r.code, 1);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: /);
});
