// Session over real sockets (Unix socket pairs, no network) on a manual clock: connection
// collisions (RFC 4271 §6.8) settle on one connection without waiting for a timer, whatever the
// order in which each side's connect and accept happen; and the idle hold after repeated
// refusals is capped, so a peer that comes back is reached within a few seconds.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Session, IDLE_HOLD_MAX_MS } from '../../lib/bgp/session';
import { ManualClock } from '../../lib/bgp/clock';
import { encodeNotification } from '../../lib/bgp/codec/index';
import { CEASE } from '../../lib/bgp/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgp-session-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let pairs = 0;
const opened: net.Socket[] = [];
t.teardown(() => { for (const s of opened) s.destroy(); });

/** A connected socket pair: [the connecting end, the accepted end]. */
async function pair(): Promise<[net.Socket, net.Socket]> {
  const file = path.join(dir, `s${pairs++}`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(file, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(file);
  await new Promise<void>((r) => client.once('connect', () => r()));
  const s = await accepted;
  server.close();
  opened.push(client, s);
  return [client, s];
}

const tick = () => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Side { s: Session; connects: ((sock: net.Socket) => void)[] }

function side(clock: ManualClock, routerId: string, peerAddress: string): Side {
  const connects: ((sock: net.Socket) => void)[] = [];
  const s = new Session({
    asn: 64512, peerAsn: 64512, routerId, peerAddress, holdTime: 90, connectRetryTime: 5, passive: false,
    gracefulRestartTime: 0, restarting: false, clock,
    connect: () => new Promise<net.Socket>((resolve) => connects.push(resolve)),
  });
  return { s, connects };
}

// a: the higher BGP identifier (its outbound connection survives a collision).
type Step = 'aConnects' | 'bConnects' | 'aAccepts' | 'bAccepts';
const orders: { name: string; steps: Step[] }[] = [
  { name: 'both accept before either connect completes', steps: ['bAccepts', 'aAccepts', 'aConnects', 'bConnects'] },
  { name: 'both connects complete before either accept', steps: ['aConnects', 'bConnects', 'bAccepts', 'aAccepts'] },
  { name: 'a connects and b accepts, then b connects and a accepts', steps: ['aConnects', 'bAccepts', 'bConnects', 'aAccepts'] },
  { name: 'a accepts first, then the rest', steps: ['aAccepts', 'aConnects', 'bAccepts', 'bConnects'] },
  { name: 'b connects first, a accepts late', steps: ['bConnects', 'bAccepts', 'aConnects', 'aAccepts'] },
];

for (const o of orders) {
  t.test(`collision: ${o.name}`, async (t) => {
    const clock = new ManualClock();
    const a = side(clock, '192.0.2.2', 'b'), b = side(clock, '192.0.2.1', 'a');
    t.teardown(() => { a.s.stop(); b.s.stop(); });
    a.s.start(); b.s.start();
    t.equal(a.connects.length, 1, 'a is connecting');
    t.equal(b.connects.length, 1, 'b is connecting');
    const [aOut, bIn] = await pair(); // a → b
    const [bOut, aIn] = await pair(); // b → a
    for (const st of o.steps) {
      if (st === 'aConnects') a.connects[0](aOut);
      else if (st === 'bConnects') b.connects[0](bOut);
      else if (st === 'aAccepts') a.s.accept(aIn);
      else b.s.accept(bIn);
      await tick();
    }
    // No timer runs: the clock never moves.
    await until(() => a.s.state === 'Established' && b.s.state === 'Established', 5000, `both established (a ${a.s.state}, b ${b.s.state})`);
    t.pass('both established without a connect retry');
    // Both kept a's outbound connection (higher identifier), and it stays up.
    await new Promise((r) => setTimeout(r, 100));
    t.equal(a.s.state, 'Established');
    t.equal(b.s.state, 'Established');
    t.notOk(aOut.destroyed, 'the surviving connection is a → b');
    t.equal(a.connects.length, 1, 'no second connect');
  });
}

t.test('idle hold after refusals: 1, 2, 4 s, then capped at 5 s', async (t) => {
  const clock = new ManualClock();
  let refuse = true;
  let attempts = 0;
  const peerEnds: net.Socket[] = [];
  const s = new Session({
    asn: 64512, peerAsn: 64512, routerId: '192.0.2.1', peerAddress: 'p', holdTime: 90, connectRetryTime: 5, passive: false,
    gracefulRestartTime: 0, restarting: false, clock,
    connect: async () => {
      attempts++;
      const [mine, theirs] = await pair();
      peerEnds.push(theirs);
      // A peer not ready yet: accepts, answers with Cease / connection rejected (as BIRD does), closes.
      if (refuse) theirs.end(encodeNotification({ code: CEASE, subcode: 5 }));
      return mine;
    },
  });
  t.teardown(() => s.stop());
  s.start();
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    const n = attempts;
    await until(() => attempts === n && s.state === 'Idle' && clock.pending > 0, 5000, `refusal ${i + 1} handled`);
    // Find the idle hold: the first whole second at which the next attempt starts.
    let waited = 0;
    while (attempts === n) {
      if (waited >= IDLE_HOLD_MAX_MS) { t.fail(`attempt ${i + 2} not within ${IDLE_HOLD_MAX_MS} ms`); return; }
      clock.advance(1000);
      waited += 1000;
      await tick();
    }
    waits.push(waited);
  }
  t.same(waits, [1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000]);
  // The peer comes back: the next attempt (within 5 s) establishes.
  refuse = false;
  const n = attempts;
  await until(() => attempts === n && s.state === 'Idle' && clock.pending > 0, 5000, 'last refusal handled');
  clock.advance(IDLE_HOLD_MAX_MS);
  await until(() => attempts === n + 1 && peerEnds.length === n + 1, 5000, 'reconnect attempt');
  const peer = peerEnds[n];
  // Minimal peer: answer our OPEN with an OPEN and a KEEPALIVE.
  const { encodeOpen, encodeKeepalive } = await import('../../lib/bgp/codec/index');
  peer.write(encodeOpen({ type: 'open', version: 4, asn: 64512, holdTime: 90, routerId: '192.0.2.9', capabilities: [] }));
  peer.write(encodeKeepalive());
  peer.on('data', () => {});
  await until(() => s.state === 'OpenConfirm' || s.state === 'Established', 5000, 'open confirm');
  await until(() => s.state === 'Established', 5000, 'established');
  t.pass('reached once the peer is back');
});
