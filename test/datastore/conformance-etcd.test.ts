// The conformance suite on the etcd backend against a real etcd (Debian etcd-server),
// plus what only this backend has: unreachable endpoints, failover, auth, compaction.
import t from 'tap';
import * as http from 'node:http';
import { COMPRESS_OVER, EtcdDatastore, EtcdError, KEY_PREFIX, prefixEnd } from '../../lib/datastore/etcd';
import { ExpiredError, TlsError, UnavailableError, type DatastoreSettings } from '../../lib/datastore/types';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd';
import { runConformance } from './conformance';

let etcd: EtcdServer;
t.before(async () => { etcd = await startEtcd({ unsafeNoFsync: true }); });
t.teardown(async () => { await etcd?.stop(); });

const settings = (extra: Partial<DatastoreSettings> = {}): DatastoreSettings =>
  ({ type: 'etcd', etcdEndpoints: [etcd.endpoint], ...extra });

/** Raw gateway call for test setup. */
async function gw(path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const r = await fetch(etcd.endpoint + path, { method: 'POST', body: JSON.stringify(body), headers });
  return r.json();
}

t.test('conformance', async (t) => {
  runConformance(t, {
    atomicApply: true,
    async fresh() {
      const p = Buffer.from(KEY_PREFIX).toString('base64');
      await gw('/v3/kv/deleterange', { key: p, range_end: prefixEnd(KEY_PREFIX) });
      return new EtcdDatastore(settings());
    },
    async another() { return new EtcdDatastore(settings()); },
  });
});

t.test('unreachable etcd fails with UnavailableError within the deadline', async (t) => {
  const port = await freePort();
  const ds = new EtcdDatastore({ type: 'etcd', etcdEndpoints: [`http://127.0.0.1:${port}`], timeoutMs: 500 });
  const t0 = Date.now();
  await t.rejects(ds.get('IPPool', 'x'), UnavailableError, 'connection refused');
  t.ok(Date.now() - t0 < 600);
  await ds.close();

  // A server that accepts and never answers: the deadline ends the call.
  const sockets = new Set<import('node:net').Socket>();
  const silent = http.createServer(() => { /* never answers */ });
  silent.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port2 = (silent.address() as import('node:net').AddressInfo).port;
  const ds2 = new EtcdDatastore({ type: 'etcd', etcdEndpoints: [`127.0.0.1:${port2}`], timeoutMs: 300 });
  const t1 = Date.now();
  await t.rejects(ds2.create({ kind: 'IPAMConfig', metadata: { name: 'default' }, spec: { strictAffinity: false, maxBlocksPerHost: 0, autoAllocateBlocks: true } }), UnavailableError, 'silent server');
  const took = Date.now() - t1;
  t.ok(took >= 290 && took < 800, `deadline honoured (${took} ms)`);
  await t.rejects(ds2.ping(), UnavailableError);
  await ds2.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

t.test('fails over to the next endpoint', async (t) => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const ds = new EtcdDatastore({ type: 'etcd', etcdEndpoints: [dead, etcd.endpoint] });
  await ds.ping();
  const r = await ds.create({ kind: 'BGPPeer', metadata: { name: 'failover' }, spec: { peerIP: '198.18.0.1', asNumber: 64512 } });
  t.equal((await ds.get('BGPPeer', 'failover')).metadata.revision, r.metadata.revision);
  await ds.delete('BGPPeer', 'failover');
  await ds.close();
});

t.test('watch from a compacted revision reports ExpiredError', async (t) => {
  const ds = new EtcdDatastore(settings());
  const a = await ds.create({ kind: 'BGPPeer', metadata: { name: 'compact' }, spec: {} });
  const b = await ds.update(a);
  await ds.update(b);
  await gw('/v3/kv/compaction', { revision: b.metadata.revision, physical: true });
  const err = await new Promise<Error>((resolve) => {
    ds.watch('BGPPeer', String(Number(a.metadata.revision) - 1), { onEvent: () => {}, onError: resolve });
  });
  t.type(err, ExpiredError);
  await ds.delete('BGPPeer', 'compact');
  await ds.close();
});

t.test('username and password authentication', async (t) => {
  // Runs last: enables auth on this etcd, then turns it off again.
  await gw('/v3/auth/user/add', { name: 'root', password: 'rootpw' });
  await gw('/v3/auth/role/add', { name: 'root' });
  await gw('/v3/auth/user/grant', { user: 'root', role: 'root' });
  await gw('/v3/auth/enable', {});
  t.teardown(async () => {
    const { token } = await gw('/v3/auth/authenticate', { name: 'root', password: 'rootpw' });
    await gw('/v3/auth/disable', {}, { authorization: token });
  });
  const anon = new EtcdDatastore(settings());
  await t.rejects(anon.get('IPPool', 'x'), EtcdError, 'no credentials: refused');
  await anon.close();
  const ds = new EtcdDatastore(settings({ etcdUsername: 'root', etcdPassword: 'rootpw' }));
  const p = await ds.create({ kind: 'IPPool', metadata: { name: 'auth' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, nodeSelector: 'all()', disabled: false } });
  const events: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const w = ds.watch('IPPool', String(Number(p.metadata.revision) - 1), {
      onEvent: (e) => { events.push(`${e.type} ${e.object.metadata.name}`); w.close(); resolve(); },
      onError: reject,
    });
  });
  t.same(events, ['ADDED auth']);
  await ds.delete('IPPool', 'auth');
  await ds.close();
});

t.test('TLS with client certificates', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-etcd-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=brindle-test-ca');
  // etcd 3.4's JSON gateway dials its own gRPC port with the server certificate: it needs clientAuth too.
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`);
    fs.writeFileSync(f(`${who}.ext`), who === 'server' ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' : 'extendedKeyUsage=clientAuth\n');
    ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '1', '-extfile', f(`${who}.ext`));
  }
  const secure = await startEtcd({ unsafeNoFsync: true, tls: { certFile: f('server.crt'), keyFile: f('server.key'), caFile: f('ca.crt') } });
  t.teardown(() => secure.stop());
  t.match(secure.endpoint, /^https:/);
  const ds = new EtcdDatastore({
    type: 'etcd', etcdEndpoints: [secure.endpoint],
    etcdCaCertFile: f('ca.crt'), etcdCertFile: f('client.crt'), etcdKeyFile: f('client.key'),
  });
  const r = await ds.create({ kind: 'IPAMConfig', metadata: { name: 'default' }, spec: { strictAffinity: true, maxBlocksPerHost: 4, autoAllocateBlocks: true } });
  t.equal((await ds.get('IPAMConfig', 'default')).metadata.revision, r.metadata.revision);
  const ev = await new Promise<string>((resolve, reject) => {
    const w = ds.watch('IPAMConfig', String(Number(r.metadata.revision) - 1), { onEvent: (e) => { w.close(); resolve(e.type); }, onError: reject });
  });
  t.equal(ev, 'ADDED', 'watch over TLS');
  await ds.close();
  const noCert = new EtcdDatastore({ type: 'etcd', etcdEndpoints: [secure.endpoint], etcdCaCertFile: f('ca.crt'), timeoutMs: 1000 });
  await t.rejects(noCert.ping(), 'no client certificate: refused');
  await noCert.close();
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('other.key'), '-out', f('other.crt'), '-days', '1', '-subj', '/CN=other-ca');
  const wrongCa = new EtcdDatastore({
    type: 'etcd', etcdEndpoints: [secure.endpoint], timeoutMs: 5000,
    etcdCaCertFile: f('other.crt'), etcdCertFile: f('client.crt'), etcdKeyFile: f('client.key'),
  });
  const t0 = Date.now();
  const err = await wrongCa.ping().catch((e) => e);
  await wrongCa.close();
  t.type(err, TlsError, 'unknown CA: TlsError');
  t.type(err, UnavailableError, 'unknown CA: an UnavailableError');
  t.equal(err.server, secure.endpoint, 'names the server');
  t.ok(Date.now() - t0 < 2500, 'fails at once, not at the deadline');
});

t.test('large values are stored deflated, small ones as JSON; both read back', async (t) => {
  const p = Buffer.from(KEY_PREFIX).toString('base64');
  await gw('/v3/kv/deleterange', { key: p, range_end: prefixEnd(KEY_PREFIX) });
  const ds = new EtcdDatastore(settings());
  const plain = new EtcdDatastore(settings({ etcdCompressOver: Infinity }));
  t.teardown(async () => { await ds.close(); await plain.close(); });
  const big = (name: string): any => ({ kind: 'IPAMHandle', metadata: { name }, spec: { handleID: name, block: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`10.0.${i}.0/26`, i])) } });
  await ds.create(big('big'));
  await ds.create({ kind: 'IPAMHandle', metadata: { name: 'small' }, spec: { handleID: 'small', block: {} } });
  await plain.create(big('big-plain'));
  const first = async (name: string) => {
    const r = await gw('/v3/kv/range', { key: Buffer.from(`${KEY_PREFIX}ipamhandle/${name}`).toString('base64') });
    return Buffer.from(r.kvs[0].value, 'base64');
  };
  const cases = [
    { name: 'big', stored: 0x78, desc: 'over COMPRESS_OVER: a zlib stream' },
    { name: 'small', stored: 0x7b, desc: 'small: plain JSON' },
    { name: 'big-plain', stored: 0x7b, desc: 'compression off: plain JSON' },
  ];
  for (const c of cases) {
    const raw = await first(c.name);
    t.equal(raw[0], c.stored, c.desc);
    t.equal(raw[0] === 0x78 ? raw.length < COMPRESS_OVER : true, true, `${c.name}: stored size ${raw.length}`);
    for (const reader of [ds, plain]) t.same((await reader.get('IPAMHandle', c.name)).spec, c.name === 'small' ? { handleID: 'small', block: {} } : big(c.name).spec, `${c.name}: read back`);
  }
  t.same((await ds.list('IPAMHandle')).items.map((h) => h.metadata.name), ['big', 'big-plain', 'small'], 'list decodes both forms');
  // A watch sees the decoded value too.
  const from = (await ds.list('IPAMHandle')).revision;
  const got = new Promise<any>((resolve, reject) => {
    const w = ds.watch('IPAMHandle', from, { onEvent: (e) => { w.close(); resolve(e.object.spec); }, onError: reject });
  });
  const b = await ds.get('IPAMHandle', 'big');
  await ds.update(b);
  t.same(await got, big('big').spec, 'watch event decoded');
});
