// The datastore conformance suite: one set of checks that every backend passes unchanged.
// A backend file supplies a factory for clients on a fresh, empty store.
import type { Test } from 'tap';
import { readBatch } from '../../lib/datastore/common';
import {
  AlreadyExistsError, ConflictError, LabelSelectorError, NotFoundError,
  type Datastore, type Kind, type Resource, type WatchEvent, type WriteOp,
} from '../../lib/datastore/types';

export interface Backend {
  /** A client on an empty store (every call of fresh() starts a new store or clears it). */
  fresh(): Promise<Datastore>;
  /** Another client on the store of the last fresh() (separate connection). */
  another(): Promise<Datastore>;
  /** True when apply() is all or nothing; false when ordered and stopping at the first failure. */
  atomicApply: boolean;
  /** Makes `name` a Node the backend can create (the kubernetes backend annotates core Nodes). */
  prepareNode?(name: string): Promise<void>;
}

type T = Test;

function handle(name: string, n = 0, labels?: Record<string, string>): Resource<'IPAMHandle'> {
  return { kind: 'IPAMHandle', metadata: { name, labels }, spec: { handleID: name, block: { '10.244.0.0/26': n } } };
}

function block(cidr: string): Resource<'IPAMBlock'> {
  return {
    kind: 'IPAMBlock', metadata: { name: cidr },
    spec: { cidr, affinity: 'host:node-a', allocations: {}, unallocated: [0, 1, 2], sequence: {}, seqNumber: 0 },
  };
}

const rev = (r: { metadata: { revision?: string } } | { revision: string }) =>
  BigInt('metadata' in r ? r.metadata.revision! : r.revision);

/** Collects watch events until `n` arrived or `ms` passed. */
function collect<K extends Kind>(ds: Datastore, kind: K, from: string, n: number, ms = 5000) {
  const events: WatchEvent<K>[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => { done = r; });
  let error: Error | undefined;
  const w = ds.watch(kind, from, {
    onEvent: (ev) => { events.push(ev); if (events.length >= n) done(); },
    onError: (err) => { error = err; done(); },
  });
  const timer = setTimeout(done, ms);
  return {
    events,
    async wait(): Promise<WatchEvent<K>[]> {
      await finished;
      clearTimeout(timer);
      w.close();
      if (error) throw error;
      return events;
    },
    close() { clearTimeout(timer); w.close(); done(); },
  };
}

/** Runs the whole suite against one backend. */
export function runConformance(t: T, backend: Backend): void {
  const clients: Datastore[] = [];
  const fresh = async () => { const d = await backend.fresh(); clients.push(d); return d; };
  const another = async () => { const d = await backend.another(); clients.push(d); return d; };
  t.afterEach(async () => { for (const c of clients.splice(0)) await c.close(); });

  t.test('create, get, update, delete', async (t) => {
    const ds = await fresh();
    const created = await ds.create(handle('net.c1', 1, { app: 'x' }));
    t.equal(created.metadata.name, 'net.c1');
    t.type(created.metadata.revision, 'string');
    t.same(created.spec, { handleID: 'net.c1', block: { '10.244.0.0/26': 1 } });
    const got = await ds.get('IPAMHandle', 'net.c1');
    t.equal(got.metadata.revision, created.metadata.revision);
    t.same(got.metadata.labels, { app: 'x' });
    t.same(got.spec, created.spec);
    got.spec.block['10.244.0.0/26'] = 2;
    const updated = await ds.update(got);
    t.ok(rev(updated) > rev(created), 'update raises the revision');
    t.equal((await ds.get('IPAMHandle', 'net.c1')).spec.block['10.244.0.0/26'], 2);
    await ds.delete('IPAMHandle', 'net.c1');
    await t.rejects(ds.get('IPAMHandle', 'net.c1'), NotFoundError);
  });

  t.test('typed errors', async (t) => {
    const ds = await fresh();
    const a = await ds.create(handle('h1'));
    await t.rejects(ds.create(handle('h1')), AlreadyExistsError, 'create twice');
    await t.rejects(ds.get('IPAMHandle', 'nope'), NotFoundError, 'get absent');
    await t.rejects(ds.update(handle('nope')), NotFoundError, 'update absent');
    await t.rejects(ds.delete('IPAMHandle', 'nope'), NotFoundError, 'delete absent');
    const b = await ds.update({ ...a, spec: { ...a.spec, block: { x: 1 } } });
    await t.rejects(ds.update({ ...a, spec: { ...a.spec, block: { x: 2 } } }), ConflictError, 'stale update');
    t.same((await ds.get('IPAMHandle', 'h1')).spec.block, { x: 1 }, 'stale update changed nothing');
    const c = await ds.update({ ...b, metadata: { ...b.metadata, revision: undefined } });
    t.ok(rev(c) > rev(b), 'update without revision is unconditional');
    // Same name in another kind is another object.
    await ds.create({ kind: 'IPAMConfig', metadata: { name: 'h1' }, spec: { strictAffinity: false, maxBlocksPerHost: 0, autoAllocateBlocks: true } });
    t.equal((await ds.get('IPAMHandle', 'h1')).kind, 'IPAMHandle');
  });

  t.test('names that are not DNS names round-trip', async (t) => {
    const ds = await fresh();
    for (const cidr of ['10.244.0.0/26', 'fd00:10:244::/122', '10.244.0.64/26']) {
      const r = await ds.create(block(cidr));
      t.equal(r.metadata.name, cidr);
      t.equal((await ds.get('IPAMBlock', cidr)).spec.cidr, cidr);
    }
    const names = ['My_Net.ABC123', 'k8s-pod-network.0123456789abcdef'];
    for (const n of names) await ds.create(handle(n));
    const all = await ds.list('IPAMBlock');
    t.same(all.items.map((r) => r.metadata.name).sort(), ['10.244.0.0/26', '10.244.0.64/26', 'fd00:10:244::/122']);
    t.same((await ds.list('IPAMHandle')).items.map((r) => r.metadata.name).sort(), names.slice().sort());
    await ds.delete('IPAMBlock', '10.244.0.0/26');
    t.equal((await ds.list('IPAMBlock')).items.length, 2);
  });

  t.test('revisions increase across kinds and objects', async (t) => {
    const ds = await fresh();
    let last = 0n;
    for (let i = 0; i < 5; i++) {
      const h = await ds.create(handle(`r${i}`));
      t.ok(rev(h) > last, `create ${i} raises the revision`);
      last = rev(h);
      const b = await ds.create(block(`10.0.${i}.0/26`));
      t.ok(rev(b) > last);
      last = rev(b);
    }
    const l = await ds.list('IPAMHandle');
    t.ok(rev(l) >= last, 'list revision is at least the last write');
  });

  t.test('list with labels and prefix', async (t) => {
    const ds = await fresh();
    await ds.create(handle('net-a.1', 0, { node: 'n1', tier: 'web' }));
    await ds.create(handle('net-a.2', 0, { node: 'n2', tier: 'web' }));
    await ds.create(handle('net-b.1', 0, { node: 'n1' }));
    await ds.create(handle('net-b.2'));
    const names = async (opts: Parameters<Datastore['list']>[1]) =>
      (await ds.list('IPAMHandle', opts)).items.map((r) => r.metadata.name).sort();
    const cases: { name: string; opts: Parameters<Datastore['list']>[1]; want: string[] }[] = [
      { name: 'all', opts: undefined, want: ['net-a.1', 'net-a.2', 'net-b.1', 'net-b.2'] },
      { name: 'equality', opts: { labelSelector: 'node=n1' }, want: ['net-a.1', 'net-b.1'] },
      { name: 'double equals and two terms', opts: { labelSelector: 'node==n1,tier=web' }, want: ['net-a.1'] },
      { name: 'inequality', opts: { labelSelector: 'node!=n1' }, want: ['net-a.2', 'net-b.2'] },
      { name: 'exists', opts: { labelSelector: 'tier' }, want: ['net-a.1', 'net-a.2'] },
      { name: 'not exists', opts: { labelSelector: '!tier' }, want: ['net-b.1', 'net-b.2'] },
      { name: 'in', opts: { labelSelector: 'node in (n1,n2)' }, want: ['net-a.1', 'net-a.2', 'net-b.1'] },
      { name: 'in, one value', opts: { labelSelector: 'node in (n2)' }, want: ['net-a.2'] },
      { name: 'in, value nobody has', opts: { labelSelector: 'node in (n9)' }, want: [] },
      { name: 'notin also selects objects without the key', opts: { labelSelector: 'node notin (n1)' }, want: ['net-a.2', 'net-b.2'] },
      { name: 'notin, two values', opts: { labelSelector: 'tier notin (web,db)' }, want: ['net-b.1', 'net-b.2'] },
      { name: 'exists and notin', opts: { labelSelector: 'node,node notin (n1)' }, want: ['net-a.2'] },
      { name: 'in and equality', opts: { labelSelector: 'node in (n1,n2),tier=web' }, want: ['net-a.1', 'net-a.2'] },
      { name: 'not exists and exists', opts: { labelSelector: '!tier,node' }, want: ['net-b.1'] },
      { name: 'spaces everywhere', opts: { labelSelector: ' node in ( n1 , n2 ) , !tier ' }, want: ['net-b.1'] },
      { name: 'contradiction', opts: { labelSelector: 'node=n1,node notin (n1)' }, want: [] },
      { name: 'empty selector', opts: { labelSelector: '' }, want: ['net-a.1', 'net-a.2', 'net-b.1', 'net-b.2'] },
      { name: 'prefix', opts: { prefix: 'net-b.' }, want: ['net-b.1', 'net-b.2'] },
      { name: 'prefix and label', opts: { prefix: 'net-a.', labelSelector: 'node=n2' }, want: ['net-a.2'] },
      { name: 'prefix and set', opts: { prefix: 'net-b.', labelSelector: 'node notin (n2)' }, want: ['net-b.1', 'net-b.2'] },
      { name: 'nothing', opts: { prefix: 'zzz' }, want: [] },
    ];
    for (const c of cases) t.same(await names(c.opts), c.want, c.name);
    t.same((await ds.list('IPPool')).items, [], 'empty kind');
  });

  t.test('malformed label selectors: LabelSelectorError naming the selector', async (t) => {
    const ds = await fresh();
    await ds.create(handle('m.1', 0, { node: 'n1' }));
    const cases: { name: string; sel: string; position: number }[] = [
      { name: 'unterminated set', sel: 'node in (n1', position: 11 },
      { name: 'empty set', sel: 'node in ()', position: 9 },
      { name: 'trailing comma', sel: 'node=n1,', position: 8 },
      { name: 'unknown operator', sel: 'node > 1', position: 5 },
      { name: 'set without parentheses', sel: 'node in n1', position: 8 },
      { name: 'junk after a requirement', sel: 'tier in (web) x', position: 14 },
      { name: 'bare !', sel: '!', position: 1 },
      { name: 'two keys', sel: 'a b', position: 2 },
      { name: 'bad key', sel: '-node=n1', position: 0 },
      { name: 'bad value', sel: 'node=n1!', position: 7 },
      { name: 'calico syntax is not a label selector', sel: "node == 'n1'", position: 8 },
    ];
    for (const c of cases) {
      const err = await ds.list('IPAMHandle', { labelSelector: c.sel }).catch((e) => e);
      t.type(err, LabelSelectorError, `${c.name}: LabelSelectorError`);
      t.same([err.selector, err.position], [c.sel, c.position], `${c.name}: selector and position`);
    }
    if (ds.read) {
      const err = await ds.read([{ op: 'list', kind: 'IPAMHandle', opts: { labelSelector: 'node in (' } }]).catch((e) => e);
      t.type(err, LabelSelectorError, 'batched read: LabelSelectorError');
    }
  });

  t.test('batched reads (readBatch)', async (t) => {
    const ds = await fresh();
    const a = await ds.create(handle('rb.a', 1, { node: 'n1' }));
    await ds.create(handle('rb.b', 2, { node: 'n2' }));
    const b = await ds.create(block('10.3.0.0/26'));
    const got = await readBatch(ds, [
      { op: 'get', kind: 'IPAMHandle', name: 'rb.a' },
      { op: 'get', kind: 'IPAMHandle', name: 'rb.none' },
      { op: 'list', kind: 'IPAMHandle', opts: { labelSelector: 'node in (n2,n3)' } },
      { op: 'list', kind: 'IPAMHandle', opts: { prefix: 'rb.' } },
      { op: 'get', kind: 'IPAMBlock', name: '10.3.0.0/26' },
      { op: 'list', kind: 'IPPool' },
    ]);
    t.equal(got.length, 6);
    t.same([(got[0] as Resource).metadata.name, (got[0] as Resource).metadata.revision], ['rb.a', a.metadata.revision], 'get');
    t.equal(got[1], undefined, 'get of an absent object');
    t.same((got[2] as Resource[]).map((r) => r.metadata.name), ['rb.b'], 'list with a set selector');
    t.same((got[3] as Resource[]).map((r) => r.metadata.name).sort(), ['rb.a', 'rb.b'], 'list with a prefix');
    t.equal((got[4] as Resource).metadata.revision, b.metadata.revision, 'another kind');
    t.same(got[5], [], 'empty list');
  });

  t.test('watch from a revision sees later changes in order', async (t) => {
    const ds = await fresh();
    const writer = await another();
    const a = await ds.create(handle('w.a'));
    const from = (await ds.list('IPAMHandle')).revision;
    const c = collect(ds, 'IPAMHandle', from, 4);
    const a2 = await writer.update({ ...a, spec: { ...a.spec, block: { x: 1 } } });
    await writer.create(block('10.9.0.0/26')); // another kind: not seen
    const b = await writer.create(handle('w.b'));
    await writer.delete('IPAMHandle', 'w.a');
    const b2 = await writer.update({ ...b, spec: { ...b.spec, block: { y: 2 } } });
    const events = await c.wait();
    t.same(events.map((e) => [e.type, e.object.metadata.name]),
      [['MODIFIED', 'w.a'], ['ADDED', 'w.b'], ['DELETED', 'w.a'], ['MODIFIED', 'w.b']]);
    t.equal(events[0].object.metadata.revision, a2.metadata.revision);
    t.same(events[0].object.spec, { handleID: 'w.a', block: { x: 1 } });
    t.equal(events[3].object.metadata.revision, b2.metadata.revision);
    for (let i = 1; i < events.length; i++) {
      t.ok(rev(events[i].object) > rev(events[i - 1].object), `event ${i} revision increases`);
    }
    // Watching again from a later revision skips what came before it.
    const d = collect(ds, 'IPAMHandle', b.metadata.revision!, 2);
    const evs = await d.wait();
    t.same(evs.map((e) => [e.type, e.object.metadata.name]), [['DELETED', 'w.a'], ['MODIFIED', 'w.b']]);
  });

  t.test('watch stops after close', async (t) => {
    const ds = await fresh();
    const from = (await ds.list('IPAMHandle')).revision;
    const seen: string[] = [];
    const w = ds.watch('IPAMHandle', from, { onEvent: (e) => seen.push(e.object.metadata.name), onError: () => {} });
    await ds.create(handle('s.1'));
    const c = collect(ds, 'IPAMHandle', from, 1);
    await c.wait();
    await new Promise((r) => setTimeout(r, 150));
    w.close();
    await ds.create(handle('s.2'));
    const c2 = collect(ds, 'IPAMHandle', from, 2);
    await c2.wait();
    await new Promise((r) => setTimeout(r, 150));
    t.same(seen, ['s.1']);
  });

  t.test('delete guarded by revision', async (t) => {
    const ds = await fresh();
    const a = await ds.create(handle('d.a'));
    const a2 = await ds.update(a);
    await t.rejects(ds.delete('IPAMHandle', 'd.a', a.metadata.revision), ConflictError);
    t.ok(await ds.get('IPAMHandle', 'd.a'), 'still there');
    await ds.delete('IPAMHandle', 'd.a', a2.metadata.revision);
    await t.rejects(ds.get('IPAMHandle', 'd.a'), NotFoundError);
    await t.rejects(ds.delete('IPAMHandle', 'd.a', a2.metadata.revision), NotFoundError);
  });

  t.test('apply', async (t) => {
    const ds = await fresh();
    const x = await ds.create(handle('ap.x'));
    const y = await ds.create(handle('ap.y'));
    const res = await ds.apply([
      { op: 'create', res: block('10.1.0.0/26') },
      { op: 'update', res: { ...x, spec: { ...x.spec, block: { '10.1.0.0/26': 1 } } } },
      { op: 'delete', kind: 'IPAMHandle', name: 'ap.y', revision: y.metadata.revision },
    ]);
    t.equal(res.length, 3);
    t.equal(res[0]!.metadata.name, '10.1.0.0/26');
    t.same(res[1]!.spec, { handleID: 'ap.x', block: { '10.1.0.0/26': 1 } });
    t.equal(res[2], undefined);
    t.equal((await ds.get('IPAMHandle', 'ap.x')).metadata.revision, res[1]!.metadata.revision);
    await t.rejects(ds.get('IPAMHandle', 'ap.y'), NotFoundError);
    t.same(await ds.apply([]), []);

    // A failing op: a stale update last. Atomic backends change nothing; ordered ones keep the earlier ops.
    const failing: WriteOp[] = [
      { op: 'create', res: block('10.2.0.0/26') },
      { op: 'delete', kind: 'IPAMBlock', name: '10.1.0.0/26' },
      { op: 'update', res: x }, // stale: x was updated above
      { op: 'create', res: handle('ap.never') },
    ];
    await t.rejects(ds.apply(failing), ConflictError, 'the failing op\'s error');
    const blocks = (await ds.list('IPAMBlock')).items.map((b) => b.metadata.name).sort();
    if (backend.atomicApply) t.same(blocks, ['10.1.0.0/26'], 'nothing applied');
    else t.same(blocks, ['10.2.0.0/26'], 'ops before the failure applied, in order');
    await t.rejects(ds.get('IPAMHandle', 'ap.never'), NotFoundError, 'nothing after the failure');

    const cases: { name: string; ops: WriteOp[]; err: new (...a: any[]) => Error }[] = [
      { name: 'create existing', ops: [{ op: 'create', res: handle('ap.x') }], err: AlreadyExistsError },
      { name: 'update absent', ops: [{ op: 'update', res: handle('ap.none') }], err: NotFoundError },
      { name: 'delete absent', ops: [{ op: 'delete', kind: 'IPAMHandle', name: 'ap.none' }], err: NotFoundError },
      { name: 'delete stale', ops: [{ op: 'delete', kind: 'IPAMHandle', name: 'ap.x', revision: x.metadata.revision }], err: ConflictError },
    ];
    for (const c of cases) {
      const before = (await ds.list('IPAMHandle')).items.map((r) => r.metadata.name).sort();
      await t.rejects(ds.apply([{ op: 'create', res: handle(`ap.${c.name.replace(/ /g, '-')}`) }, ...c.ops]), c.err, c.name);
      const after = (await ds.list('IPAMHandle')).items.map((r) => r.metadata.name).sort();
      if (backend.atomicApply) t.same(after, before, `${c.name}: nothing applied`);
      else t.equal(after.length, before.length + 1, `${c.name}: the first op applied`);
    }
  });

  t.test('concurrent compare-and-swap counter', async (t) => {
    await fresh();
    const writers = await Promise.all(Array.from({ length: 8 }, () => another()));
    await writers[0].create(handle('counter', 0));
    const perWriter = 15;
    let conflicts = 0;
    await Promise.all(writers.map(async (ds) => {
      for (let i = 0; i < perWriter; i++) {
        for (;;) {
          const cur = await ds.get('IPAMHandle', 'counter');
          cur.spec.block.n = (cur.spec.block.n ?? 0) + 1;
          try {
            await ds.update(cur);
            break;
          } catch (err) {
            if (!(err instanceof ConflictError)) throw err;
            conflicts++;
          }
        }
      }
    }));
    const end = await writers[0].get('IPAMHandle', 'counter');
    t.equal(end.spec.block.n, 8 * perWriter, `exact count (${conflicts} conflicts retried)`);
  });

  t.test('node resource', async (t) => {
    const ds = await fresh();
    await backend.prepareNode?.('node-a');
    const n = await ds.create({
      kind: 'Node', metadata: { name: 'node-a', labels: { zone: 'z1' } },
      spec: { bgp: { ipv4Address: '198.18.0.11/24', asNumber: 64513, routeReflectorClusterID: '224.0.0.1' }, vxlanTunnelMACAddr: '66:00:00:00:00:01' },
    });
    t.same(n.spec.bgp, { ipv4Address: '198.18.0.11/24', asNumber: 64513, routeReflectorClusterID: '224.0.0.1' });
    await t.rejects(ds.create({ kind: 'Node', metadata: { name: 'node-a' }, spec: {} }), AlreadyExistsError);
    const got = await ds.get('Node', 'node-a');
    t.equal(got.metadata.labels?.zone, 'z1');
    t.equal(got.spec.vxlanTunnelMACAddr, '66:00:00:00:00:01');
    got.spec.bgp!.ipv6Address = 'fd00::11/64';
    delete got.spec.bgp!.routeReflectorClusterID;
    const up = await ds.update(got);
    await t.rejects(ds.update(n), ConflictError);
    t.same((await ds.get('Node', 'node-a')).spec.bgp, { ipv4Address: '198.18.0.11/24', ipv6Address: 'fd00::11/64', asNumber: 64513 });
    t.same((await ds.list('Node', { labelSelector: 'zone=z1' })).items.map((i) => i.metadata.name), ['node-a']);
    t.same((await ds.list('Node', { labelSelector: 'zone in (z0,z1)' })).items.map((i) => i.metadata.name), ['node-a']);
    t.same((await ds.list('Node', { labelSelector: 'zone notin (z1)' })).items, []);
    await ds.delete('Node', 'node-a', up.metadata.revision);
    await t.rejects(ds.get('Node', 'node-a'), NotFoundError);
  });

  t.test('ping', async (t) => {
    const ds = await fresh();
    await t.resolves(ds.ping());
  });
}
