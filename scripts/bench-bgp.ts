// `npm run bench -- bgp [--rounds N] [--sizes 10000,100000]`: route reception into the kernel,
// our agent vs BIRD, interleaved in one run. GoBGP (preloaded from an MRT TABLE_DUMP_V2 file
// through `gobgp mrt inject`, then sending its packed initial dump) offers N /26 prefixes;
// the receiver (`brindle agent` or BIRD 2, each started fresh with an empty kernel table) is
// timed from its start until all N routes are in its namespace's kernel. Also: the agent's
// RSS holding 100,000 routes, and a live announcement of 100,000 prefixes from our speaker to
// BIRD (time until BIRD has them all). Everything runs in namespaces made here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Scope, linkNamespaces, nsExec, sh } from '../test/helpers/netns';
import { Bird, Gobgp, birdConfig, gobgpConfig } from '../test/helpers/peers';
import { brindleCommand } from '../test/helpers/cluster';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const ROUNDS = Number(opt('rounds', '3'));
const SIZES = opt('sizes', '10000,100000').split(',').map(Number);
const RECV = '10.99.0.1', SEND = '10.99.0.2', ASN = 64512;

function prefixOf(i: number): [number, number, number, number] { return [10, (i >> 10) & 255, (i >> 2) & 255, (i & 3) * 64]; }

/** An MRT TABLE_DUMP_V2 file (RFC 6396): PEER_INDEX_TABLE, then one RIB_IPV4_UNICAST per /26. */
function writeMrt(file: string, n: number, nextHop: string): void {
  const nh = nextHop.split('.').map(Number);
  const parts: Buffer[] = [];
  const rec = (subtype: number, body: Buffer) => {
    const h = Buffer.alloc(12);
    h.writeUInt32BE(Math.floor(Date.now() / 1000), 0); h.writeUInt16BE(13, 4); h.writeUInt16BE(subtype, 6); h.writeUInt32BE(body.length, 8);
    parts.push(h, body);
  };
  // PEER_INDEX_TABLE: collector id, empty view name, 1 peer (type 2: AS4 + IPv4).
  const pit = Buffer.alloc(4 + 2 + 2 + 1 + 4 + 4 + 4);
  Buffer.from(nh).copy(pit, 0); pit.writeUInt16BE(0, 4); pit.writeUInt16BE(1, 6);
  pit[8] = 2; Buffer.from(nh).copy(pit, 9); Buffer.from(nh).copy(pit, 13); pit.writeUInt32BE(ASN, 17);
  rec(1, pit);
  // ORIGIN IGP, AS_PATH empty (iBGP), NEXT_HOP.
  const attrs = Buffer.from([0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, ...nh]);
  for (let i = 0; i < n; i++) {
    const p = prefixOf(i);
    const b = Buffer.alloc(4 + 1 + 4 + 2 + 2 + 4 + 2 + attrs.length);
    let o = 0;
    b.writeUInt32BE(i, o); o += 4; b[o++] = 26;
    for (let k = 0; k < 4; k++) b[o++] = p[k];
    b.writeUInt16BE(1, o); o += 2; b.writeUInt16BE(0, o); o += 2; b.writeUInt32BE(Math.floor(Date.now() / 1000), o); o += 4;
    b.writeUInt16BE(attrs.length, o); o += 2; attrs.copy(b, o);
    rec(2, b);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

function routeCount(ns: string, proto: string): number {
  const out = execFileSync('ip', ['-n', ns, '-4', 'route', 'show', 'proto', proto], { maxBuffer: 1 << 28 }).toString();
  let c = 0;
  for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n', i + 1)) c++;
  return c;
}

/** Waits until `n` routes of `proto` are in the kernel; returns when the first one appeared (ms, performance.now()). */
async function waitCount(ns: string, proto: string, n: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  let first = 0;
  for (;;) {
    const c = routeCount(ns, proto);
    if (c > 0 && !first) first = performance.now();
    if (c >= n) return first;
    if (Date.now() > end) throw new Error(`timed out: ${c} of ${n} routes of proto ${proto} in ${ns}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const scope = new Scope();
  const tmp = fs.mkdtempSync('/tmp/brindle-bench-bgp-');
  scope.defer(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const onSignal = () => { scope.cleanup().finally(() => process.exit(130)); };
  process.on('SIGINT', onSignal);
  try {
    // --agent-cmd "node /tmp/brindle.js": run the agent from a bundle (e.g. while dist/ is stale).
    const override = opt('agent-cmd', '');
    const { cmd, args: cmdArgs } = override ? { cmd: override.split(' ')[0], args: override.split(' ').slice(1) } : brindleCommand();
    console.log(`bench bgp: rounds ${ROUNDS}, sizes ${SIZES.join(', ')}; agent ${cmd === process.execPath ? 'from sources (tsx)' : cmd}; NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set' : 'unset'}`);
    const results: Record<string, { agent: number[]; bird: number[]; agentFirst: number[]; birdFirst: number[] }> = {};
    let rss100k: number | undefined;
    for (const n of SIZES) {
      results[n] = { agent: [], bird: [], agentFirst: [], birdFirst: [] };
      const sender = scope.netns('snd');
      const recv = scope.netns('rcv');
      linkNamespaces(sender, 'eth0', `${SEND}/24`, recv, 'eth0', `${RECV}/24`);
      const mrt = path.join(tmp, `p${n}.mrt`);
      writeMrt(mrt, n, SEND);
      const gobgp = await Gobgp.start(scope, sender, gobgpConfig({ routerId: SEND, asn: ASN, localAddress: SEND, neighbors: [{ address: RECV, asn: ASN, passive: true }] }));
      // `gobgp mrt inject` drops the last records when EOF follows right after them (lab README).
      sh('bash', ['-c', `(cat ${mrt}; sleep 1) | ip netns exec ${sender} gobgp -u 127.0.0.1 mrt inject global /dev/stdin`]);
      const summary = gobgp.gobgp('global', 'rib', 'summary', '-a', 'ipv4');
      const have = Number(/Destination:\s*(\d+)/.exec(summary)?.[1] ?? 0);
      if (have < n) throw new Error(`gobgp holds ${have} of ${n} prefixes after mrt inject`);
      const db = path.join(tmp, `agent-${n}.db`);
      // Seed the agent's store: one BGPPeer to GoBGP.
      const { openDatastore } = require('../lib/datastore/open') as typeof import('../lib/datastore/open');
      const ds = openDatastore({ type: 'embedded', embeddedPath: db, timeoutMs: 5000 });
      await ds.create({ kind: 'BGPPeer', metadata: { name: 'gobgp' }, spec: { peerIP: SEND, asNumber: ASN } });
      await ds.close();
      for (let round = 0; round < ROUNDS; round++) {
        // ---- our agent ----
        await senderReady(gobgp);
        const env = { PATH: process.env.PATH, NODENAME: 'bench', BRINDLE_RUN_DIR: path.join(tmp, 'run'), BRINDLE_STATE_DIR: path.join(tmp, 'state'), DATASTORE_TYPE: 'embedded', BRINDLE_DB: db, BRINDLE_LOG_LEVEL: 'warn' };
        const logFd = fs.openSync(path.join(tmp, 'agent.log'), 'a');
        const t0 = performance.now();
        const agent: ChildProcess = scope.track(spawn('ip', ['netns', 'exec', recv, cmd, ...cmdArgs, 'agent', '--node-name', 'bench', '--node-ip', RECV, '--stale-time', '0'], { env, stdio: ['ignore', logFd, logFd] }));
        fs.closeSync(logFd);
        const fa = await waitCount(recv, '177', n, 120_000);
        const ta = (performance.now() - t0) / 1000;
        results[n].agent.push(ta);
        results[n].agentFirst.push((performance.now() - fa) / 1000);
        if (n === 100_000 && rss100k === undefined) { await new Promise((r) => setTimeout(r, 1000)); rss100k = rssMb(agent.pid!); }
        await stop(agent);
        sh('ip', ['-n', recv, 'route', 'flush', 'proto', '177']);
        // ---- BIRD ----
        await senderReady(gobgp);
        const t1 = performance.now();
        // `connect delay time 0`: BIRD otherwise waits 5 s before its first connect.
        const bird = await Bird.start(scope, recv, birdConfig({ routerId: RECV, asn: ASN, neighbors: [{ address: SEND, asn: ASN }] }).replace('connect retry time 2;', 'connect retry time 2; connect delay time 0;'));
        const fb = await waitCount(recv, 'bird', n, 120_000);
        const tb = (performance.now() - t1) / 1000;
        results[n].bird.push(tb);
        results[n].birdFirst.push((performance.now() - fb) / 1000);
        await bird.stop();
        try { sh('ip', ['-n', recv, 'route', 'flush', 'proto', 'bird']); } catch { /* none left */ }
        console.log(`  ${n} prefixes, round ${round + 1}: agent ${ta.toFixed(3)} s (first route → all ${results[n].agentFirst[round].toFixed(3)} s), bird ${tb.toFixed(3)} s (${results[n].birdFirst[round].toFixed(3)} s)`);
      }
      await gobgp.stop();
    }
    console.log('\nreception into the kernel (receiver start → all N routes in its kernel; GoBGP sends its initial dump), medians:');
    console.log('| prefixes | brindle agent | BIRD 2 | agent / BIRD | first route → all: agent | BIRD | ratio |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of SIZES) {
      const a = median(results[n].agent), b = median(results[n].bird);
      const af = median(results[n].agentFirst), bf = median(results[n].birdFirst);
      console.log(`| ${n} | ${a.toFixed(3)} s | ${b.toFixed(3)} s | ${(a / b).toFixed(2)}x | ${af.toFixed(3)} s | ${bf.toFixed(3)} s | ${(af / bf).toFixed(2)}x |`);
    }
    if (rss100k !== undefined) console.log(`\nagent RSS holding 100,000 routes: ${rss100k.toFixed(1)} MB (target < 150 MB)`);
    if (SIZES.includes(100_000)) await announceBench(scope, 100_000);
  } finally {
    await scope.cleanup();
  }
}

/** Our speaker announces `n` prefixes live to BIRD; time until BIRD has all of them. */
async function announceBench(scope: Scope, n: number): Promise<void> {
  const a = scope.netns('ann');
  const b = scope.netns('brd');
  linkNamespaces(a, 'eth0', `${SEND}/24`, b, 'eth0', `${RECV}/24`);
  const bird = await Bird.start(scope, b, birdConfig({ routerId: RECV, asn: ASN, kernel: false, neighbors: [{ address: SEND, asn: ASN }] }));
  const { Speaker } = require('../lib/bgp/speaker');
  const { netnsPath } = require('../lib/netlink/netns');
  const sp = new Speaker({ routerId: SEND, asn: ASN, listenPort: 0, netns: netnsPath(a) });
  sp.setPeers([{ address: RECV, asn: ASN, type: 'global', localAddress: SEND }]);
  await sp.start();
  const end = Date.now() + 30_000;
  while (!sp.status().some((p: any) => p.state === 'Established')) {
    if (Date.now() > end) throw new Error('speaker did not reach Established with BIRD');
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 500));
  const routes = [];
  for (let i = 0; i < n; i++) routes.push({ prefix: `${prefixOf(i).join('.')}/26` });
  const t0 = performance.now();
  sp.setOriginated(routes);
  for (;;) {
    const c = bird.routeCount();
    if (c >= n) break;
    if (performance.now() - t0 > 120_000) throw new Error(`BIRD has ${c} of ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`\nlive announcement, our speaker → BIRD: ${n} prefixes in ${s.toFixed(3)} s`);
  await sp.stop();
  await bird.stop();
}

/**
 * After a receiver goes, GoBGP holds the neighbour idle for a while and refuses connections;
 * each receiver is started once GoBGP is back to Active (waiting passively), so neither
 * receiver's time includes the previous one's aftermath.
 */
async function senderReady(g: Gobgp): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const st = g.neighborState(RECV);
    if (st === 'active') return;
    if (Date.now() > end) throw new Error(`gobgp neighbor ${RECV} still ${st} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
    p.once('exit', () => { clearTimeout(t); resolve(); });
    p.kill('SIGTERM');
  });
}

main().catch((err) => { console.error(`bench bgp: ${(err as Error).stack ?? err}`); process.exit(1); });
