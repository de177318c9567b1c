// `npm run bench -- bgp [--rounds N] [--sizes 10000,100000] [--agent-cmd CMD] [--compare-cmd CMD]`:
// route reception into the kernel, our agent vs BIRD (optionally also a second agent build, for
// A/B under one load), interleaved in one run, the receivers taking turns at going first.
// GoBGP (preloaded from an MRT TABLE_DUMP_V2 file through `gobgp mrt inject`, then sending its
// packed initial dump) offers N /26 prefixes; the receiver (`brindle agent` or BIRD 2, each
// started fresh with an empty kernel table) is timed from its start until all N routes are in
// its namespace's kernel. Two clocks, the same for every receiver: a netlink monitor in the
// receiver's namespace (RTMGRP_IPV4_ROUTE) stamps the kernel's RTM_NEWROUTE notifications of the
// first and the N-th route (exact), and a poll of `ip route show` every 20 ms (coarse: at 10,000
// routes one poll takes about as long as the whole insertion). Also: the agent's RSS holding
// 100,000 routes, and a live announcement of 100,000 prefixes from our speaker to BIRD (time
// until BIRD has them all). Everything runs in namespaces made here.
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

/**
 * A route monitor in namespace `ns`: a node process (koffi, blocking recv) subscribed to
 * RTMGRP_IPV4_ROUTE that counts RTM_NEWROUTE of `proto` in the main table and reports the
 * CLOCK_MONOTONIC time (process.hrtime) of the first and of the n-th notification.
 */
const MONITOR_CODE = `
const koffi = require('koffi');
const lib = koffi.load('libc.so.6');
const socket = lib.func('int socket(int domain, int type, int protocol)');
const bind = lib.func('int bind(int fd, const void *addr, uint32_t addrlen)');
const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const proto = Number(process.argv[1]), n = Number(process.argv[2]);
const fd = socket(16, 3, 0);
if (fd < 0) { console.log(JSON.stringify({ error: 'socket ' + koffi.errno() })); process.exit(1); }
setsockopt(fd, 1, 33, new Int32Array([256 << 20]), 4); // SO_RCVBUFFORCE: never drop a notification
const sa = new Uint8Array(12); sa[0] = 16; new DataView(sa.buffer).setUint32(8, 0x40, true); // RTMGRP_IPV4_ROUTE
if (bind(fd, sa, 12) < 0) { console.log(JSON.stringify({ error: 'bind ' + koffi.errno() })); process.exit(1); }
process.stdout.write('ready\\n');
const buf = new Uint8Array(1 << 20), dv = new DataView(buf.buffer);
let count = 0, first = 0n, all = 0n;
const marks = [], step = Math.max(1, Math.floor(n / 10));
while (count < n) {
  const r = recv(fd, buf, buf.length, 0);
  if (r < 0) { const e = koffi.errno(); if (e === 4) continue; console.log(JSON.stringify({ error: 'recv errno ' + e, count })); process.exit(1); }
  const now = process.hrtime.bigint();
  for (let p = 0; p + 28 <= r;) {
    const len = dv.getUint32(p, true);
    if (len < 16) break;
    // RTM_NEWROUTE (24); rtmsg: rtm_table at +4, rtm_protocol at +5.
    if (dv.getUint16(p + 4, true) === 24 && buf[p + 20] === 254 && buf[p + 21] === proto) { if (count === 0) first = now; if (++count === n) all = now; if (count % step === 0) marks.push(Number(now - first) / 1e6); }
    p += (len + 3) & ~3;
  }
}
console.log(JSON.stringify({ first: String(first), all: String(all), count, marks }));
`;

interface Monitor { result: Promise<{ first: bigint; all: bigint }>; proc: ChildProcess }

async function startMonitor(scope: Scope, ns: string, proto: number, n: number): Promise<Monitor> {
  const proc = scope.track(spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', MONITOR_CODE, String(proto), String(n)],
    { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => { readyResolve = r; });
  const result = new Promise<{ first: bigint; all: bigint }>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) readyResolve();
    });
    proc.on('exit', () => {
      const line = out.split('\n').filter(Boolean).pop() ?? '';
      try {
        const j = JSON.parse(line) as { first?: string; all?: string; error?: string; marks?: number[] };
        if (j.error || !j.first) throw new Error(j.error ?? 'no result');
        if (process.env.BENCH_BGP_MARKS) console.log(`    ${ns} proto ${proto}: ms after the first route at each tenth: ${j.marks!.map((x) => x.toFixed(0)).join(' ')}`);
        resolve({ first: BigInt(j.first), all: BigInt(j.all!) });
      } catch (err) { reject(new Error(`route monitor in ${ns}: ${(err as Error).message}`)); }
      readyResolve();
    });
  });
  result.catch(() => {});
  await ready;
  return { result, proc };
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
    // --compare-cmd "<cmd>": a second agent build, run in every round right after the first (A/B under one load).
    const cmpOpt = opt('compare-cmd', '');
    const compare = cmpOpt ? { cmd: cmpOpt.split(' ')[0], args: cmpOpt.split(' ').slice(1) } : undefined;
    type Series = 'agent' | 'bird' | 'agentFirst' | 'birdFirst' | 'agentExact' | 'birdExact' | 'agentExactFirst' | 'birdExactFirst';
    type CompareSeries = 'compareExact' | 'compareExactFirst' | 'comparePoll' | 'comparePollFirst' | 'compareRss';
    const results: Record<string, Record<Series, number[]> & Partial<Record<CompareSeries, number[]>>> = {};
    let rss100k: number | undefined;
    for (const n of SIZES) {
      results[n] = { agent: [], bird: [], agentFirst: [], birdFirst: [], agentExact: [], birdExact: [], agentExactFirst: [], birdExactFirst: [] };
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
        const runAgent = async (c: string, a: string[]) => {
          await senderReady(gobgp);
          const env = { PATH: process.env.PATH, NODENAME: 'bench', BRINDLE_RUN_DIR: path.join(tmp, 'run'), BRINDLE_STATE_DIR: path.join(tmp, 'state'), DATASTORE_TYPE: 'embedded', BRINDLE_DB: db, BRINDLE_LOG_LEVEL: process.env.BENCH_BGP_AGENT_LOG ?? 'warn' };
          const logFd = fs.openSync(process.env.BENCH_BGP_AGENT_LOGFILE ?? path.join(tmp, 'agent.log'), 'a');
          const mon = await startMonitor(scope, recv, 177, n);
          const t0ns = process.hrtime.bigint();
          const t0 = performance.now();
          const agent: ChildProcess = scope.track(spawn('ip', ['netns', 'exec', recv, c, ...a, 'agent', '--node-name', 'bench', '--node-ip', RECV, '--stale-time', '0'], { env, stdio: ['ignore', logFd, logFd] }));
          fs.closeSync(logFd);
          const fa = await waitCount(recv, '177', n, 120_000);
          const t = performance.now();
          const m = await mon.result;
          let rss: number | undefined;
          if (n === 100_000) { await new Promise((r) => setTimeout(r, 1000)); rss = rssMb(agent.pid!); }
          await stop(agent);
          sh('ip', ['-n', recv, 'route', 'flush', 'proto', '177']);
          return { poll: (t - t0) / 1000, pollFirst: (t - fa) / 1000, exact: Number(m.all - t0ns) / 1e9, exactFirst: Number(m.all - m.first) / 1e9, rss };
        };
        const runBird = async () => {
          await senderReady(gobgp);
          const mon = await startMonitor(scope, recv, 12, n); // RTPROT_BIRD
          const t0ns = process.hrtime.bigint();
          const t0 = performance.now();
          // `connect delay time 0`: BIRD otherwise waits 5 s before its first connect.
          const bird = await Bird.start(scope, recv, birdConfig({ routerId: RECV, asn: ASN, neighbors: [{ address: SEND, asn: ASN }] }).replace('connect retry time 2;', 'connect retry time 2; connect delay time 0;'));
          const fb = await waitCount(recv, 'bird', n, 120_000);
          const t = performance.now();
          const m = await mon.result;
          await bird.stop();
          try { sh('ip', ['-n', recv, 'route', 'flush', 'proto', 'bird']); } catch { /* none left */ }
          return { poll: (t - t0) / 1000, pollFirst: (t - fb) / 1000, exact: Number(m.all - t0ns) / 1e9, exactFirst: Number(m.all - m.first) / 1e9 };
        };
        // The receivers take turns going first (the sender's state after one session can favour
        // whichever comes next): round k starts with receiver k mod 2 (or 3 with a compare build).
        const kinds: ('agent' | 'compare' | 'bird')[] = compare ? ['agent', 'compare', 'bird'] : ['agent', 'bird'];
        const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
        let ra!: Awaited<ReturnType<typeof runAgent>>, rb: Awaited<ReturnType<typeof runAgent>> | undefined, rbird!: Awaited<ReturnType<typeof runBird>>;
        for (const k of order) {
          if (k === 'agent') ra = await runAgent(cmd, cmdArgs);
          else if (k === 'compare') rb = await runAgent(compare!.cmd, compare!.args);
          else rbird = await runBird();
        }
        const ta = ra.poll, tb = rbird.poll;
        results[n].agent.push(ra.poll);
        results[n].agentFirst.push(ra.pollFirst);
        results[n].agentExact.push(ra.exact);
        results[n].agentExactFirst.push(ra.exactFirst);
        if (ra.rss !== undefined) rss100k ??= ra.rss;
        if (rb) {
          (results[n].compareExact ??= []).push(rb.exact);
          (results[n].compareExactFirst ??= []).push(rb.exactFirst);
          (results[n].comparePoll ??= []).push(rb.poll);
          (results[n].comparePollFirst ??= []).push(rb.pollFirst);
          if (rb.rss !== undefined) (results[n].compareRss ??= []).push(rb.rss);
        }
        results[n].bird.push(rbird.poll);
        results[n].birdFirst.push(rbird.pollFirst);
        results[n].birdExact.push(rbird.exact);
        results[n].birdExactFirst.push(rbird.exactFirst);
        const r = results[n], f = (x: number) => x.toFixed(3);
        console.log(`  ${n} prefixes, round ${round + 1}: monitor: agent ${f(r.agentExact[round])} s (first → all ${f(r.agentExactFirst[round])} s), bird ${f(r.birdExact[round])} s (${f(r.birdExactFirst[round])} s)`
          + ` | poll: agent ${f(ta)} s (${f(r.agentFirst[round])} s), bird ${f(tb)} s (${f(r.birdFirst[round])} s)`
          + ` [${order.join(', ')}]` + (rb ? ` | compare agent: monitor ${f(rb.exact)} s (${f(rb.exactFirst)} s), poll ${f(rb.poll)} s (${f(rb.pollFirst)} s)` : ''));
      }
      await gobgp.stop();
    }
    console.log(`\nreception into the kernel (receiver start → all N routes in its kernel; GoBGP sends its initial dump), medians, load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}:`);
    console.log('| clock | prefixes | brindle agent | BIRD 2 | agent / BIRD | first route → all: agent | BIRD | ratio |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [clock, tot, fst] of [['monitor', 'Exact', 'ExactFirst'], ['poll', '', 'First']] as const) {
      for (const n of SIZES) {
        const r = results[n];
        const a = median(r[`agent${tot}`]), b = median(r[`bird${tot}`]);
        const af = median(r[`agent${fst}`]), bf = median(r[`bird${fst}`]);
        console.log(`| ${clock} | ${n} | ${a.toFixed(3)} s | ${b.toFixed(3)} s | ${(a / b).toFixed(2)}x | ${af.toFixed(3)} s | ${bf.toFixed(3)} s | ${(af / bf).toFixed(2)}x |`);
      }
    }
    if (compare) {
      console.log(`\ncompare agent (${compare.cmd} ${compare.args.join(' ')}), same rounds, medians:`);
      console.log('| clock | prefixes | agent | compare | BIRD | agent / BIRD | compare / BIRD | first → all: agent | compare | BIRD | agent / BIRD | compare / BIRD |');
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const [clock, tot, fst, ctot, cfst] of [['monitor', 'Exact', 'ExactFirst', 'compareExact', 'compareExactFirst'], ['poll', '', 'First', 'comparePoll', 'comparePollFirst']] as const) {
        for (const n of SIZES) {
          const r = results[n], f = (x: number) => `${x.toFixed(3)} s`, q = (x: number) => `${x.toFixed(2)}x`;
          const a = median(r[`agent${tot}`]), c = median(r[ctot]!), b = median(r[`bird${tot}`]);
          const af = median(r[`agent${fst}`]), cf = median(r[cfst]!), bf = median(r[`bird${fst}`]);
          console.log(`| ${clock} | ${n} | ${f(a)} | ${f(c)} | ${f(b)} | ${q(a / b)} | ${q(c / b)} | ${f(af)} | ${f(cf)} | ${f(bf)} | ${q(af / bf)} | ${q(cf / bf)} |`);
        }
      }
      if (results[100_000]?.compareRss) console.log(`compare agent RSS holding 100,000 routes: ${results[100_000].compareRss![0].toFixed(1)} MB`);
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
