// Codec: golden vectors both ways, RFC 6793 AS4 handling, RFC 7606 malformed rows (codes and
// handling, not messages), UPDATE packing.
import t from 'tap';
import * as v from './vectors';
import { hex } from './vectors';
import {
  decodeMessage, encodeMessage, encodeOpen, encodeUpdate, encodeEndOfRib, endOfRib, packAnnouncements, packWithdrawals,
  decodeUpdate, type CodecContext,
} from '../../lib/bgp/codec/index';
import { BgpError } from '../../lib/bgp/errors';
import { checkOpen } from '../../lib/bgp/fsm';

const C4: CodecContext = { fourOctetAs: true };
const C2: CodecContext = { fourOctetAs: false };

t.test('golden vectors decode and encode', async (t) => {
  const cases: { name: string; hex: string; want: unknown; ctx?: CodecContext }[] = [
    { name: 'bird open', hex: v.BIRD_OPEN, want: { type: 'open', version: 4, asn: 64512, holdTime: 90, routerId: '10.99.0.2', capabilities: [
      { kind: 'multiprotocol', afi: 1, safi: 1 }, { kind: 'routeRefresh' },
      { kind: 'gracefulRestart', flags: 0, restartTime: 120, families: [{ afi: 1, safi: 1, forwarding: false }] },
      { kind: 'fourOctetAs', asn: 64512 }, { kind: 'unknown', code: 70, value: new Uint8Array(0) }, { kind: 'unknown', code: 71, value: new Uint8Array(0) }] } },
    { name: 'gobgp open', hex: v.GOBGP_OPEN, want: { type: 'open', version: 4, asn: 64513, holdTime: 90, routerId: '10.99.0.3', capabilities: [
      { kind: 'routeRefresh' }, { kind: 'unknown', code: 73, value: hex('02766d00') },
      { kind: 'multiprotocol', afi: 1, safi: 1 }, { kind: 'multiprotocol', afi: 2, safi: 1 },
      { kind: 'fourOctetAs', asn: 64513 }, { kind: 'unknown', code: 5, value: hex('000100010002') }] } },
    { name: 'full update', hex: v.UPDATE_FULL, want: { type: 'update', withdrawn: ['10.244.9.0/26'], nlri: ['10.244.1.0/26', '10.0.0.0/8'], attrs: {
      origin: 0, asPath: [{ type: 2, asns: [64513, 4200000000] }], nextHop: '10.99.0.1', med: 50, localPref: 200,
      communities: [65000 * 65536 + 100], originatorId: '10.99.0.9', clusterList: ['1.1.1.1'] } } },
    { name: 'ipv6 update', hex: v.UPDATE_V6, want: { type: 'update', withdrawn: [], nlri: [], attrs: {
      origin: 0, asPath: [], localPref: 100, mpReach: { afi: 2, safi: 1, nextHops: ['fd00:99::1', 'fe80::1'], nlri: ['fd00:10:244:5::/64'] } } } },
    { name: 'end-of-rib v4', hex: v.EOR_V4, want: { type: 'update', withdrawn: [], nlri: [], attrs: {} } },
    { name: 'end-of-rib v6', hex: v.EOR_V6, want: { type: 'update', withdrawn: [], nlri: [], attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: [] } } } },
    { name: 'keepalive', hex: v.KEEPALIVE, want: { type: 'keepalive' } },
    { name: 'notification cease', hex: v.NOTIFICATION_CEASE, want: { type: 'notification', code: 6, subcode: 2, data: new Uint8Array(0) } },
    { name: 'notification bad peer as', hex: v.NOTIFICATION_BAD_PEER_AS, want: { type: 'notification', code: 2, subcode: 2, data: hex('fc01') } },
    { name: 'route refresh', hex: v.ROUTE_REFRESH_V4, want: { type: 'routeRefresh', afi: 1, safi: 1, subtype: 0 } },
  ];
  for (const c of cases) {
    const bytes = hex(c.hex);
    const got = decodeMessage(bytes, c.ctx ?? C4) as any;
    if (got.type === 'update') { t.same(got.errors, [], `${c.name}: no errors`); delete got.errors; delete got.treatAsWithdraw; }
    t.same(got, c.want, `${c.name}: decode`);
    t.same(encodeMessage(c.want as any, c.ctx ?? C4), bytes, `${c.name}: encode`);
  }
  t.same(endOfRib(decodeMessage(hex(v.EOR_V4), C4) as any), { afi: 1, safi: 1 });
  t.same(endOfRib(decodeMessage(hex(v.EOR_V6), C4) as any), { afi: 2, safi: 1 });
  t.equal(endOfRib(decodeMessage(hex(v.UPDATE_FULL), C4) as any), undefined);
  t.same(encodeEndOfRib(2), hex(v.EOR_V6));
});

t.test('4-octet AS: AS_TRANS in OPEN, AS4_PATH toward and from 2-octet speakers (RFC 6793)', async (t) => {
  const open = encodeOpen({ type: 'open', version: 4, asn: 4200000000, holdTime: 90, routerId: '1.2.3.4', capabilities: [{ kind: 'fourOctetAs', asn: 4200000000 }] });
  t.same([...open.subarray(20, 22)], [0x5b, 0xa0], 'my AS field is AS_TRANS 23456');
  t.equal((decodeMessage(open, C4) as any).asn, 4200000000);
  const msg = { type: 'update' as const, withdrawn: [], nlri: ['10.1.0.0/16'], attrs: { origin: 0, asPath: [{ type: 2, asns: [64513, 4200000000] }], nextHop: '10.0.0.1' } };
  const two = encodeUpdate(msg, C2);
  // AS_PATH carries AS_TRANS, AS4_PATH the real ASes; decoding merges them back.
  t.match(Buffer.from(two).toString('hex'), '4002060202fc015ba0', 'AS_PATH [64513, AS_TRANS]');
  t.match(Buffer.from(two).toString('hex'), 'c0110a02020000fc01fa56ea00', 'AS4_PATH [64513, 4200000000]');
  const back = decodeUpdate(two, C2);
  t.same(back.attrs.asPath, [{ type: 2, asns: [64513, 4200000000] }]);
  t.same(back.errors, []);
  // AS4_PATH longer than AS_PATH is ignored (§4.2.3).
  const odd = update('', '40 01 01 00  40 02 04 02 01 5ba0  40 03 04 0a000001  c0 11 0a 02 02 fa56ea00 fa56ea01', '10 0a01');
  t.same(decodeUpdate(odd, C2).attrs.asPath, [{ type: 2, asns: [23456] }]);
});

/** Builds an UPDATE with correct length fields from hex parts. */
function update(withdrawn: string, attrs: string, nlri: string): Uint8Array {
  const w = hex(withdrawn), a = hex(attrs), n = hex(nlri);
  const len = 23 + w.length + a.length + n.length;
  return Uint8Array.from([...new Uint8Array(16).fill(255), len >> 8, len & 255, 2, w.length >> 8, w.length & 255, ...w, a.length >> 8, a.length & 255, ...a, ...n]);
}
const ORIGIN = '40 01 01 00', ASPATH = '40 02 06 02 01 0000fc01', NH = '40 03 04 0a000001';
const BASE = `${ORIGIN} ${ASPATH} ${NH}`;
const NLRI = '18 0af401';

t.test('malformed updates: RFC 7606 handling and codes', async (t) => {
  const rows: { name: string; msg: Uint8Array; ctx?: CodecContext; code: number; subcode: number; handling: string }[] = [
    { name: 'origin length 2', msg: update('', `40 01 02 0000 ${ASPATH} ${NH}`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'origin value 3', msg: update('', `40 01 01 03 ${ASPATH} ${NH}`, NLRI), code: 3, subcode: 6, handling: 'treat-as-withdraw' },
    { name: 'as path segment overrun', msg: update('', `${ORIGIN} 40 02 04 02 02 0000 ${NH}`, NLRI), code: 3, subcode: 11, handling: 'treat-as-withdraw' },
    { name: 'as path zero-length segment', msg: update('', `${ORIGIN} 40 02 02 02 00 ${NH}`, NLRI), code: 3, subcode: 11, handling: 'treat-as-withdraw' },
    { name: 'next hop length 5', msg: update('', `${ORIGIN} ${ASPATH} 40 03 05 0a00000100`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'next hop 0.0.0.0', msg: update('', `${ORIGIN} ${ASPATH} 40 03 04 00000000`, NLRI), code: 3, subcode: 8, handling: 'treat-as-withdraw' },
    { name: 'med length 3', msg: update('', `${BASE} 80 04 03 000001`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'local pref length 2', msg: update('', `${BASE} 40 05 02 0001`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'atomic aggregate length 1', msg: update('', `${BASE} 40 06 01 00`, NLRI), code: 3, subcode: 5, handling: 'attribute-discard' },
    { name: 'aggregator length 7', msg: update('', `${BASE} c0 07 07 00000001 0a0000`, NLRI), code: 3, subcode: 5, handling: 'attribute-discard' },
    { name: 'communities length 3', msg: update('', `${BASE} c0 08 03 000001`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'originator id length 3', msg: update('', `${BASE} 80 09 03 0a0000`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'cluster list length 5', msg: update('', `${BASE} 80 0a 05 0101010102`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'origin with optional flag', msg: update('', `c0 01 01 00 ${ASPATH} ${NH}`, NLRI), code: 3, subcode: 4, handling: 'treat-as-withdraw' },
    { name: 'missing origin', msg: update('', `${ASPATH} ${NH}`, NLRI), code: 3, subcode: 3, handling: 'treat-as-withdraw' },
    { name: 'missing next hop', msg: update('', `${ORIGIN} ${ASPATH}`, NLRI), code: 3, subcode: 3, handling: 'treat-as-withdraw' },
    { name: 'attribute overruns the attribute area', msg: update('', `${BASE} c0 08 08 00000001`, NLRI), code: 3, subcode: 5, handling: 'treat-as-withdraw' },
    { name: 'as4 path malformed (2-octet session)', ctx: C2, msg: update('', `${ORIGIN} 40 02 04 02 01 5ba0 ${NH} c0 11 03 020100`, NLRI), code: 3, subcode: 11, handling: 'attribute-discard' },
    { name: 'mp reach bad next hop length', msg: update('', `${ORIGIN} ${ASPATH} 80 0e 0a 0002 01 05 0000000000 00`, ''), code: 3, subcode: 9, handling: 'session-reset' },
    { name: 'mp reach nlri overrun', msg: update('', `${ORIGIN} ${ASPATH} 80 0e 17 0002 01 10 fd000000000000000000000000000001 00 40 fd00`, ''), code: 3, subcode: 9, handling: 'session-reset' },
    { name: 'duplicate mp unreach', msg: update('', '80 0f 03 0002 01 80 0f 03 0002 01', ''), code: 3, subcode: 1, handling: 'session-reset' },
    { name: 'unrecognized well-known attribute', msg: update('', `${BASE} 40 63 01 00`, NLRI), code: 3, subcode: 2, handling: 'session-reset' },
    { name: 'withdrawn length overruns', msg: Uint8Array.from([...hex('ffffffffffffffffffffffffffffffff 0017 02 00ff 0000')]), code: 3, subcode: 1, handling: 'session-reset' },
    { name: 'nlri prefix length 33', msg: update('', BASE, '21 0a000000 00'), code: 3, subcode: 10, handling: 'session-reset' },
    { name: 'withdrawn prefix overruns', msg: update('18 0a', '', ''), code: 3, subcode: 10, handling: 'session-reset' },
  ];
  for (const r of rows) {
    let err: BgpError | undefined;
    let decoded: ReturnType<typeof decodeUpdate> | undefined;
    try { decoded = decodeUpdate(r.msg, r.ctx ?? C4); err = decoded.errors[0]; } catch (e) { err = e as BgpError; }
    t.ok(err instanceof BgpError, `${r.name}: a BgpError`);
    t.same([err?.code, err?.subcode, err?.handling], [r.code, r.subcode, r.handling], r.name);
    if (r.handling === 'session-reset') t.equal(decoded, undefined, `${r.name}: thrown`);
    if (r.handling === 'treat-as-withdraw') t.same([decoded?.nlri, decoded?.withdrawn, decoded?.treatAsWithdraw], [[], ['10.244.1.0/24'], true], `${r.name}: nlri withdrawn`);
    if (r.handling === 'attribute-discard') t.same([decoded?.nlri, decoded?.treatAsWithdraw], [['10.244.1.0/24'], false], `${r.name}: route kept`);
  }
  // Duplicates (non-MP) keep the first; LOCAL_PREF from eBGP is dropped (RFC 7606 §3.g, §7.5).
  const dup = decodeUpdate(update('', `${BASE} 40 01 01 02 40 05 04 00000064`, NLRI), { fourOctetAs: true, ebgp: true });
  t.same([dup.attrs.origin, dup.attrs.localPref, dup.errors.length], [0, undefined, 0]);
  // Optional transitive unknown attribute is passed on with the Partial bit.
  const unk = decodeUpdate(update('', `${BASE} c0 63 02 abcd`, NLRI), C4);
  t.same(unk.attrs.unknown, [{ flags: 0xe0, code: 0x63, value: hex('abcd') }]);
  t.same(decodeUpdate(update('', `${BASE} 80 63 02 abcd`, NLRI), C4).attrs.unknown, undefined, 'optional non-transitive unknown dropped');
});

t.test('malformed headers and opens', async (t) => {
  const M = 'ffffffffffffffffffffffffffffffff';
  const rows: { name: string; hex: string; code: number; subcode: number }[] = [
    { name: 'bad marker', hex: `${M.slice(0, 30)}00 0013 04`, code: 1, subcode: 1 },
    { name: 'length 18', hex: `${M} 0012 04`, code: 1, subcode: 2 },
    { name: 'length 4097', hex: `${M} 1001 04`, code: 1, subcode: 2 },
    { name: 'type 6', hex: `${M} 0013 06`, code: 1, subcode: 3 },
    { name: 'keepalive length 20', hex: `${M} 0014 04 00`, code: 1, subcode: 2 },
    { name: 'open version 3', hex: `${M} 001d 01 03 fc00 005a 0a000001 00`, code: 2, subcode: 1 },
    { name: 'open hold time 1', hex: `${M} 001d 01 04 fc00 0001 0a000001 00`, code: 2, subcode: 6 },
    { name: 'open router id 0', hex: `${M} 001d 01 04 fc00 005a 00000000 00`, code: 2, subcode: 3 },
    { name: 'open unsupported parameter', hex: `${M} 001f 01 04 fc00 005a 0a000001 02 01 00`, code: 2, subcode: 4 },
    { name: 'route refresh length 24', hex: `${M} 0018 05 0001 00 01 00`, code: 7, subcode: 1 },
  ];
  for (const r of rows) {
    try { decodeMessage(hex(r.hex), C4); t.fail(`${r.name}: decoded`); } catch (e) {
      t.ok(e instanceof BgpError, r.name);
      t.same([(e as BgpError).code, (e as BgpError).subcode], [r.code, r.subcode], r.name);
    }
  }
  const open = decodeMessage(hex(v.GOBGP_OPEN), C4) as any;
  const cfg = { asn: 64512, peerAsn: 64514, routerId: '10.99.0.1', holdTime: 90, connectRetryTime: 5, passive: false };
  t.same([checkOpen(cfg, open)?.code, checkOpen(cfg, open)?.subcode], [2, 2], 'bad peer AS');
  t.same([checkOpen({ ...cfg, peerAsn: 64513, asn: 64513, routerId: '10.99.0.3' }, open)?.subcode], [3], 'our own router id');
  t.equal(checkOpen({ ...cfg, peerAsn: 64513 }, open), undefined);
});

t.test('packing: prefixes sharing attributes fill 4096-octet UPDATEs', async (t) => {
  const v4: string[] = [], v6: string[] = [];
  for (let i = 0; i < 10000; i++) v4.push(`10.${(i >> 10) & 255}.${(i >> 2) & 255}.${(i & 3) << 6}/26`);
  for (let i = 1; i <= 2000; i++) v6.push(`fd00:10:244:${i.toString(16)}::/64`);
  const attrs = { origin: 0, asPath: [], localPref: 100, nextHop: '10.99.0.2', communities: [1, 2] };
  const msgs = packAnnouncements(attrs, v4, v6, ['fd00:99::2'], C4);
  const got4: string[] = [], got6: string[] = [];
  for (const m of msgs) {
    t.ok(m.length <= 4096);
    const u = decodeUpdate(m, C4);
    got4.push(...u.nlri);
    got6.push(...(u.attrs.mpReach?.nlri ?? []));
    if (u.nlri.length) t.same(u.attrs.communities, [1, 2]);
  }
  t.same(got4, v4);
  t.same(got6, v6);
  // 10,000 /26 = 50,000 octets of NLRI: 13 messages, not 10,000.
  t.ok(msgs.length <= 13 + 5, `${msgs.length} messages`);
  const w = packWithdrawals(v4, v6);
  t.ok(w.length <= 13 + 5);
  t.same(w.flatMap((m) => { const u = decodeUpdate(m, C4); return [...u.withdrawn, ...(u.attrs.mpUnreach?.withdrawn ?? [])]; }), [...v4, ...v6]);
});

t.test('ipv4 prefix text: every octet width, host bits cleared', async (t) => {
  const { readPrefixes } = await import('../../lib/bgp/codec/prefix');
  const b = new Uint8Array([0, 32, 255, 255, 255, 255, 8, 10, 26, 10, 1, 2, 199, 17, 100, 99, 255, 24, 9, 99, 100]);
  t.same(readPrefixes(b, 0, b.length, 4), ['0.0.0.0/0', '255.255.255.255/32', '10.0.0.0/8', '10.1.2.192/26', '100.99.128.0/17', '9.99.100.0/24']);
});
