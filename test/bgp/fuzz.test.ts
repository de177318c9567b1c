// Fuzz: 100,000+ random and mutated messages to the decoder, and a stream of them to a live
// Session: nothing throws out, every decode error is a BgpError with a NOTIFICATION code and
// an RFC 7606 handling, and every session reset sends a NOTIFICATION before closing.
import t from 'tap';
import { Duplex } from 'node:stream';
import * as v from './vectors';
import { hex } from './vectors';
import { decodeMessage } from '../../lib/bgp/codec/index';
import { encodeOpen, encodeKeepalive } from '../../lib/bgp/codec/message';
import { Framer } from '../../lib/bgp/framer';
import { BgpError } from '../../lib/bgp/errors';
import { Session } from '../../lib/bgp/session';
import { ManualClock } from '../../lib/bgp/clock';

let seed = 0x2545f491;
const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 0x100000000; };
const ri = (n: number) => Math.floor(rnd() * n);
const seeds = [v.BIRD_OPEN, v.GOBGP_OPEN, v.UPDATE_FULL, v.UPDATE_V6, v.EOR_V4, v.EOR_V6, v.KEEPALIVE, v.NOTIFICATION_CEASE, v.ROUTE_REFRESH_V4].map(hex);

/** A mutated or random message whose header length is consistent (or not, sometimes). */
function mutant(): Uint8Array {
  const kind = ri(10);
  let m: Uint8Array;
  if (kind === 0) { m = new Uint8Array(19 + ri(200)); for (let i = 19; i < m.length; i++) m[i] = ri(256); m.fill(255, 0, 16); m[18] = 1 + ri(5); }
  else {
    m = seeds[ri(seeds.length)].slice();
    const n = 1 + ri(4);
    for (let i = 0; i < n; i++) {
      const op = ri(4);
      if (op === 0 && m.length > 19) m[19 + ri(m.length - 19)] = ri(256);
      else if (op === 1 && m.length > 20) m = m.slice(0, 19 + ri(m.length - 19));
      else if (op === 2) { const ext = new Uint8Array(ri(20)); for (let k = 0; k < ext.length; k++) ext[k] = ri(256); m = Uint8Array.from([...m, ...ext]); }
      else if (m.length > 19) { const p = 19 + ri(m.length - 19); m[p] ^= 1 << ri(8); }
    }
  }
  if (ri(20) !== 0) { m[16] = m.length >> 8; m[17] = m.length & 255; }
  else m[16 + ri(3)] = ri(256); // header damage now and then
  return m;
}

function checkError(t: { fail(m: string): void }, e: unknown): boolean {
  if (!(e instanceof BgpError)) { t.fail(`not a BgpError: ${(e as Error)?.stack ?? e}`); return false; }
  if (!(e.code >= 1 && e.code <= 7) || e.handling !== 'session-reset') { t.fail(`bad thrown error ${e.code}/${e.subcode} ${e.handling}`); return false; }
  return true;
}

t.test('decoder: 100,000 mutated and random messages', async (t) => {
  let ok = 0, errs = 0, taw = 0, bad = 0;
  for (let i = 0; i < 100_000; i++) {
    const m = mutant();
    const f = new Framer();
    try {
      for (const msg of f.push(m)) {
        const d = decodeMessage(msg, { fourOctetAs: ri(2) === 0, ebgp: ri(2) === 0 }) as any;
        if (d.type === 'update') for (const e of d.errors) { if (!(e instanceof BgpError) || e.handling === 'session-reset') bad++; else taw++; }
        ok++;
      }
    } catch (e) { if (!checkError(t, e)) { bad++; if (bad > 5) break; } errs++; }
  }
  t.equal(bad, 0, 'no improper errors');
  t.ok(ok > 1000 && errs > 1000 && taw > 100, `decoded ${ok}, fatal ${errs}, treat-as-withdraw/discard ${taw}`);
});

class FakeSocket extends Duplex {
  written: Buffer[] = [];
  localAddress = '10.0.0.1';
  remoteAddress = '10.0.0.2';
  setNoDelay() { return this; }
  override _read() {}
  override _write(chunk: Buffer, _enc: string, cb: () => void) { this.written.push(chunk); cb(); }
  override _final(cb: () => void) { cb(); setImmediate(() => this.destroy()); }
}

t.test('session: a stream of mutants never crashes; resets send a NOTIFICATION', async (t) => {
  const clock = new ManualClock();
  const s = new Session({
    asn: 64512, routerId: '10.0.0.1', peerAsn: 64512, peerAddress: '10.0.0.2', holdTime: 90, connectRetryTime: 5,
    passive: true, gracefulRestartTime: 120, restarting: false, clock, connect: () => Promise.reject(new Error('passive')),
  });
  let updates = 0, downs = 0;
  s.on('update', () => updates++);
  s.on('down', () => downs++);
  s.start();
  const peerOpen = encodeOpen({ type: 'open', version: 4, asn: 64512, holdTime: 90, routerId: '10.0.0.2', capabilities: [{ kind: 'fourOctetAs', asn: 64512 }, { kind: 'multiprotocol', afi: 2, safi: 1 }] });
  let sent = 0, sessions = 0, noNotification = 0;
  while (sent < 20_000) {
    const sock = new FakeSocket();
    s.accept(sock as any);
    sock.push(Buffer.concat([peerOpen, encodeKeepalive()]));
    await new Promise((r) => setImmediate(r));
    if (s.state !== 'Established') { t.fail(`not established: ${s.state} ${s.info}`); break; }
    sessions++;
    const before = s.state;
    for (let k = 0; k < 500 && !sock.destroyed && s.state === 'Established'; k++) {
      sock.push(Buffer.from(mutant())); sent++;
      if (k % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    if (s.state !== 'Established' && before === 'Established') {
      // The session went down: the last thing written is a NOTIFICATION (type 3), unless the peer sent one.
      const last = sock.written[sock.written.length - 1];
      if (!last || last[18] !== 3) noNotification++;
    }
    sock.destroy();
    await new Promise((r) => setImmediate(r));
    clock.advance(120_000);
  }
  t.ok(sessions > 10, `${sessions} sessions, ${sent} messages, ${updates} updates delivered, ${downs} downs`);
  t.ok(noNotification <= sessions * 0.2, `resets without our NOTIFICATION (peer notified us): ${noNotification}`);
});
