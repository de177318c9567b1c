// Framer: a stream of messages split at every byte yields the same messages; header errors are BgpErrors.
import t from 'tap';
import * as v from './vectors';
import { hex } from './vectors';
import { Framer } from '../../lib/bgp/framer';
import { BgpError } from '../../lib/bgp/errors';

const msgs = [v.BIRD_OPEN, v.GOBGP_OPEN, v.UPDATE_FULL, v.UPDATE_V6, v.EOR_V4, v.EOR_V6, v.KEEPALIVE, v.NOTIFICATION_CEASE, v.ROUTE_REFRESH_V4].map(hex);
const stream = Uint8Array.from(msgs.flatMap((m) => [...m]));

t.test('every split point (one and two cuts) yields the same messages', async (t) => {
  for (let i = 0; i <= stream.length; i++) {
    const f = new Framer();
    const got = [...f.push(stream.subarray(0, i)), ...f.push(stream.subarray(i))];
    if (got.length !== msgs.length || got.some((m, k) => Buffer.compare(m, msgs[k]) !== 0)) { t.fail(`split at ${i}`); return; }
    t.equal(f.pending, 0);
  }
  const f = new Framer();
  const got: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...f.push(stream.subarray(i, i + 1)));
  t.same(got, msgs, 'byte at a time');
});

t.test('header errors', async (t) => {
  const M = 'ffffffffffffffffffffffffffffffff';
  const rows = [
    { name: 'marker', hex: `${M.slice(2)}00 0013 04`, subcode: 1 },
    { name: 'length 18', hex: `${M} 0012 04`, subcode: 2 },
    { name: 'length 4097', hex: `${M} 1001 02`, subcode: 2 },
    { name: 'type 9', hex: `${M} 0013 09`, subcode: 3 },
  ];
  for (const r of rows) {
    const f = new Framer();
    const bytes = Uint8Array.from([...hex(v.KEEPALIVE), ...hex(r.hex)]);
    let err: unknown;
    try { f.push(bytes); } catch (e) { err = e; }
    t.ok(err instanceof BgpError, r.name);
    t.same([(err as BgpError).code, (err as BgpError).subcode], [1, r.subcode], r.name);
  }
});
