import t from 'tap';
import { validatePool, ensureDefaultPool, createPool, updatePool } from '../../lib/ipam/pools';
import { PoolValidationError } from '../../lib/ipam/errors';
import type { IPPoolSpec, Resource } from '../../lib/datastore/types';
import { MemStore } from '../helpers/memstore';

const pool = (name: string, spec: Partial<IPPoolSpec>): Resource<'IPPool'> => ({ kind: 'IPPool', metadata: { name }, spec: spec as IPPoolSpec });
const existing = [validatePool(pool('a', { cidr: '192.168.0.0/16' }), []), validatePool(pool('v6', { cidr: 'fd00:10:244::/48' }), [])];

t.test('validation table', async (t) => {
  const cases: { name: string; p: Resource<'IPPool'>; err?: RegExp; want?: Partial<IPPoolSpec> }[] = [
    { name: 'defaults v4', p: pool('p', { cidr: '10.244.0.0/16' }), want: { blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()', disabled: false } },
    { name: 'defaults v6', p: pool('p', { cidr: 'fd00:20::/48' }), want: { blockSize: 122 } },
    { name: 'canonical cidr', p: pool('p', { cidr: 'FD00:20:0::/48' }), want: { cidr: 'fd00:20::/48' } },
    { name: 'block = pool', p: pool('p', { cidr: '10.1.0.0/26', blockSize: 26 }), want: { blockSize: 26 } },
    { name: 'block /32', p: pool('p', { cidr: '10.1.0.0/24', blockSize: 32 }), want: { blockSize: 32 } },
    { name: 'invalid cidr', p: pool('p', { cidr: '10.1.0.0/33' }), err: /invalid cidr/ },
    { name: 'host bits', p: pool('p', { cidr: '10.1.0.1/24' }), err: /host bits/ },
    { name: 'block larger than pool', p: pool('p', { cidr: '10.1.0.0/28' }), err: /blockSize 26 is outside the pool 10\.1\.0\.0\/28/ },
    { name: 'block past 32', p: pool('p', { cidr: '10.1.0.0/24', blockSize: 33 }), err: /outside the pool/ },
    { name: 'block too big', p: pool('p', { cidr: '10.0.0.0/8', blockSize: 16 }), err: /more than 4096/ },
    { name: 'overlap', p: pool('p', { cidr: '192.168.10.0/24' }), err: /overlaps pool a/ },
    { name: 'overlap containing', p: pool('p', { cidr: '192.0.0.0/8' }), err: /overlaps pool a/ },
    { name: 'overlap v6', p: pool('p', { cidr: 'fd00:10:244:1::/64' }), err: /overlaps pool v6/ },
    { name: 'same name is not overlap', p: pool('a', { cidr: '192.168.0.0/16' }), want: { cidr: '192.168.0.0/16' } },
    { name: 'reserved v4', p: pool('p', { cidr: '169.254.0.0/24' }), err: /169\.254\.0\.0\/16 is reserved/ },
    { name: 'reserved v4 containing', p: pool('p', { cidr: '169.0.0.0/8', blockSize: 20 }), err: /reserved/ },
    { name: 'reserved v6', p: pool('p', { cidr: 'fe80::/64' }), err: /fe80::\/10 is reserved/ },
    { name: 'bad ipip', p: pool('p', { cidr: '10.1.0.0/16', ipipMode: 'Sometimes' as never }), err: /ipipMode "Sometimes"/ },
    { name: 'bad vxlan', p: pool('p', { cidr: '10.1.0.0/16', vxlanMode: 'always' as never }), err: /vxlanMode/ },
    { name: 'both encaps', p: pool('p', { cidr: '10.1.0.0/16', ipipMode: 'Always', vxlanMode: 'CrossSubnet' }), err: /both/ },
    { name: 'vxlan ok', p: pool('p', { cidr: '10.1.0.0/16', vxlanMode: 'CrossSubnet' }), want: { vxlanMode: 'CrossSubnet' } },
    { name: 'bad selector', p: pool('p', { cidr: '10.1.0.0/16', nodeSelector: "zone = 'a'" }), err: /nodeSelector: .*position 5/ },
    { name: 'no name', p: pool('', { cidr: '10.1.0.0/16' }), err: /metadata.name/ },
  ];
  for (const c of cases) {
    if (c.err) {
      t.throws(() => validatePool(c.p, existing), c.err, c.name);
      try { validatePool(c.p, existing); } catch (err) { t.ok(err instanceof PoolValidationError, `${c.name}: class`); }
    } else {
      t.match(validatePool(c.p, existing).spec, c.want!, c.name);
    }
  }
});

t.test('blockSize and cidr immutable on update', async (t) => {
  const ds = new MemStore();
  const p = await createPool(ds, pool('p', { cidr: '10.1.0.0/16' }));
  t.equal(p.spec.blockSize, 26);
  await t.rejects(updatePool(ds, { ...p, spec: { ...p.spec, blockSize: 28 } }), /blockSize is immutable/);
  const u = await updatePool(ds, { ...p, spec: { ...p.spec, disabled: true } });
  t.equal(u.spec.disabled, true);
  await t.rejects(createPool(ds, pool('q', { cidr: '10.1.128.0/17' })), /overlaps pool p/);
});

t.test('ensureDefaultPool: once, race-safe, only when no pool exists', async (t) => {
  const ds = new MemStore();
  const results = await Promise.all(Array.from({ length: 10 }, () => ensureDefaultPool(ds, { default_ipv6_pool: 'fd00:10:244::/48' })));
  for (const r of results) t.same(r.map((p) => p.spec.cidr).sort(), ['10.244.0.0/16', 'fd00:10:244::/48']);
  t.equal(ds.all('IPPool').length, 2);
  const ds2 = new MemStore();
  await createPool(ds2, pool('mine', { cidr: '172.16.0.0/16' }));
  const r2 = await ensureDefaultPool(ds2);
  t.same(r2.map((p) => p.metadata.name), ['mine']);
  const ds3 = new MemStore();
  t.same((await ensureDefaultPool(ds3, { default_ipv4_pool: '10.50.0.0/16' })).map((p) => p.spec.cidr), ['10.50.0.0/16']);
});
