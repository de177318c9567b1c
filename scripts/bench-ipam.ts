// `npm run bench -- ipam [--per-node N] [--min-total N] [--repeat N] [--stores etcd-fsync,etcd-tmpfs,embedded]
//   [--nodes 1,10,50] [--modes cached,uncached[,uncached-nohint,uncached-unbatched,uncached-before]] [--iterations N] [--no-add]`:
// IPAM allocations per second for 1, 10 and 50 simulated nodes (in-process allocators, one
// datastore client and node name each, all concurrent) on etcd (data dir on disk with real
// fsync, and on tmpfs) and on the embedded store. Every run really allocates, then checks
// that no address was handed out twice (in the results and in the stored blocks, plus the
// consistency check), then releases everything by handle (DELs/s) and checks nothing is left.
// Modes of one row are interleaved run by run; on etcd, the KV requests etcd served during the
// timed allocations (its /metrics) are reported per allocation, with the CPU time of this
// process and of etcd. BENCH_ETCD_PPROF=1 starts etcd with --enable-pprof (for `go tool pprof`).
// Then the ADD latency of `brindle` + `brindle-ipam` (embedded) against Debian's ptp +
// host-local, interleaved, in namespaces.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../lib/ipam/allocator';
import { fileBlockHints } from '../lib/ipam/hints';
import { createPool } from '../lib/ipam/pools';
import { openDatastore } from '../lib/datastore/open';
import type { Datastore, DatastoreSettings, IPPoolSpec } from '../lib/datastore/types';
import { startEtcd } from '../test/helpers/etcd';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : dflt; };
const list = (name: string, dflt: string) => { const i = argv.indexOf(`--${name}`); return (i >= 0 ? argv[i + 1] : dflt).split(',').filter(Boolean); };
/** Allocations per simulated node in one measured run (a node's pods over its life). */
const PER_NODE = opt('per-node', 100);
/** At least this many allocations per run (so the 1-node run is not a handful). */
const MIN_TOTAL = opt('min-total', 1000);
const REPEAT = opt('repeat', 3);
const ITER = opt('iterations', 30);
const STORES = list('stores', 'etcd-fsync,etcd-tmpfs,embedded');
const NODES = list('nodes', '1,10,50').map(Number);
const MODES = list('modes', 'cached,uncached');
/** In-flight requests per node (the allocator queues per node, as the plugin's file lock does). */
const IN_FLIGHT = 10;
const CACHE_TTL = 5000;

interface Run { cpuMsPerAlloc: number; etcdCpuMsPerAlloc: number; reqPerAlloc: number; perSec: number; delPerSec: number; allocs: number; secs: number; conflicts: number; retries: number; claims: number; borrows: number; dups: number }
interface Row { store: string; nodes: number; mode: string; runs: Run[] }

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };

let runNo = 0;

/** KV requests etcd has served so far (grpc_server_handled_total of etcdserverpb.KV), or NaN. */
async function etcdKvRequests(endpoint: string | undefined): Promise<number> {
  if (!endpoint) return NaN;
  try {
    const text = await (await fetch(`${endpoint}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/^grpc_server_handled_total\{[^}]*grpc_service="etcdserverpb\.KV"[^}]*\} (\S+)$/gm)) n += Number(m[1]);
    return n;
  } catch { return NaN; }
}

/** The etcd under test, for its CPU time (/proc/<pid>/stat utime + stime, ms). */
let etcdPid: number | undefined;
function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch { return NaN; }
}

async function allocRun(settings: () => DatastoreSettings, nodes: number, mode: string): Promise<Run> {
  const cacheTtlMs = mode === 'cached' ? CACHE_TTL : 0;
  // "before": the path as it was (one request per read, plain JSON values on etcd).
  const before = mode === 'uncached-before';
  // Block hints in files, as the plugin keeps them in its run dir (each node its own file).
  const hintDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-bench-hints-'));
  const stores: Datastore[] = Array.from({ length: nodes }, () => openDatastore({ ...settings(), ...(before ? { etcdCompressOver: Infinity } : {}) }));
  try {
    try { await createPool(stores[0], { kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.128.0.0/9', blockSize: 26 } as IPPoolSpec }); } catch { /* exists */ }
    const blockHints = mode === 'uncached' ? fileBlockHints(hintDir) : undefined;
    const ipams = stores.map((s) => new Ipam(s, { cacheTtlMs, maxRetries: 50, batchReads: mode !== 'uncached-unbatched' && !before, blockHints }));
    const endpoint = settings().etcdEndpoints?.[0];
    const per = Math.max(PER_NODE, Math.ceil(MIN_TOTAL / nodes));
    const tag = `r${process.pid}x${runNo++}`;
    const node = (n: number) => `${tag}-node${n}`;
    // Warm-up (not timed): one allocation per node opens its connections and compiles the paths.
    await Promise.all(ipams.map((ipam, n) => ipam.autoAssign({ handle: `bench.${tag}-n${n}-warm`, node: node(n), num4: 1 })));
    for (const i of ipams) Object.assign(i.stats, { allocations: 0, conflicts: 0, retries: 0, claims: 0, borrows: 0 });
    const req0 = await etcdKvRequests(endpoint);
    const cpu0 = process.cpuUsage();
    const ecpu0 = procCpuMs(etcdPid);
    const t0 = process.hrtime.bigint();
    const results = await Promise.all(ipams.map(async (ipam, n) => {
      const ips: string[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, per) }, async () => {
        for (let i = next++; i < per; i = next++) {
          const r = await ipam.autoAssign({ handle: `bench.${tag}-n${n}-c${i}`, node: node(n), num4: 1 });
          if (r.ips4.length !== 1) throw new Error(`node ${node(n)}: got ${r.ips4.length} addresses`);
          ips.push(...r.ips4);
        }
      }));
      return ips;
    }));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const ecpu = procCpuMs(etcdPid) - ecpu0;
    const reqs = await etcdKvRequests(endpoint) - req0;
    const s = ipams.reduce((a, i) => ({ conflicts: a.conflicts + i.stats.conflicts, retries: a.retries + i.stats.retries, claims: a.claims + i.stats.claims, borrows: a.borrows + i.stats.borrows }), { conflicts: 0, retries: 0, claims: 0, borrows: 0 });
    const ips = results.flat();
    // Uniqueness: in what the callers got, and in what the store holds (every block, every handle).
    const valid = Array.from({ length: nodes }, (_, n) => [`bench.${tag}-n${n}-warm`, ...Array.from({ length: per }, (_, i) => `bench.${tag}-n${n}-c${i}`)]).flat();
    const rep = await ipams[0].checkConsistency({ validHandles: valid });
    const dupsStored = rep.problems.filter((p) => p.kind === 'duplicateAddress' || p.kind === 'duplicateOwnership').length;
    if (!rep.ok) throw new Error(`consistency: ${rep.problems.slice(0, 3).map((p) => p.message).join('; ')}`);
    if (rep.allocations !== ips.length + nodes) throw new Error(`store holds ${rep.allocations} allocations, callers got ${ips.length + nodes}`);
    const dups = ips.length - new Set(ips).size + dupsStored;
    // DEL everything, per node, concurrently.
    const d0 = process.hrtime.bigint();
    await Promise.all(ipams.map(async (ipam, n) => {
      const hs = [`bench.${tag}-n${n}-warm`, ...Array.from({ length: per }, (_, i) => `bench.${tag}-n${n}-c${i}`)];
      let next = 0;
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = next++; i < hs.length; i = next++) await ipam.releaseByHandle(hs[i], { node: node(n) });
      }));
    }));
    const delSecs = Number(process.hrtime.bigint() - d0) / 1e9;
    await Promise.all(ipams.map((ipam, n) => ipam.releaseEmptyBlocks(node(n))));
    const after = await ipams[0].checkConsistency();
    if (!after.ok || after.allocations !== 0 || after.handles !== 0 || after.blocks !== 0) throw new Error(`not all released: ${after.allocations} allocations, ${after.handles} handles, ${after.blocks} blocks left`);
    return { cpuMsPerAlloc: (cpu.user + cpu.system) / 1000 / results.flat().length, etcdCpuMsPerAlloc: ecpu / results.flat().length, reqPerAlloc: reqs / results.flat().length, perSec: ips.length / secs, delPerSec: (ips.length + nodes) / delSecs, allocs: ips.length, secs, ...s, dups };
  } finally {
    fs.rmSync(hintDir, { recursive: true, force: true });
    await Promise.all(stores.map((s) => s.close()));
  }
}

function table(rows: Row[]): string {
  const head = 'store                               nodes  mode                allocs/run  allocs/s (median; runs)        DELs/s  req/alloc  cpu ms/alloc (client etcd) conflicts retries claims borrows dups';
  return [head, ...rows.map((r) => {
    const m = median(r.runs.map((x) => x.perSec));
    const each = r.runs.map((x) => x.perSec.toFixed(0)).join(' ');
    const sum = (k: keyof Run) => String(r.runs.reduce((a, x) => a + (x[k] as number), 0));
    return `${r.store.padEnd(36)}${String(r.nodes).padStart(5)}  ${r.mode.padEnd(18)}${String(r.runs[0]?.allocs ?? 0).padStart(11)}  ${`${m.toFixed(0)} (${each})`.padEnd(28)}${median(r.runs.map((x) => x.delPerSec)).toFixed(0).padStart(8)}${median(r.runs.map((x) => x.reqPerAlloc)).toFixed(2).padStart(10)}${median(r.runs.map((x) => x.cpuMsPerAlloc)).toFixed(2).padStart(12)}${median(r.runs.map((x) => x.etcdCpuMsPerAlloc)).toFixed(2).padStart(7)}        ${sum('conflicts').padStart(11)}${sum('retries').padStart(8)}${sum('claims').padStart(7)}${sum('borrows').padStart(8)}${sum('dups').padStart(5)}`;
  })].join('\n');
}

async function measure(store: string, settings: () => DatastoreSettings, rows: Row[]): Promise<void> {
  for (const nodes of NODES) {
    // Interleaved: run i of every mode before run i + 1 of any, so load drifts hit all alike.
    const group = MODES.map((mode): Row => ({ store, nodes, mode, runs: [] }));
    for (let i = 0; i < REPEAT; i++) for (const row of group) row.runs.push(await allocRun(settings, nodes, row.mode));
    rows.push(...group);
    process.stderr.write(`${table(group).split('\n').slice(1).join('\n')}\n`);
  }
}

async function allocations(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const s of STORES.filter((x) => x.startsWith('etcd'))) {
    const tmpfs = s === 'etcd-tmpfs';
    const etcd = await startEtcd({ unsafeNoFsync: tmpfs, extraArgs: process.env.BENCH_ETCD_PPROF ? ['--enable-pprof'] : [] });
    if (process.env.BENCH_ETCD_PPROF) process.stderr.write(`etcd pprof: ${etcd.endpoint}/debug/pprof/\n`);
    etcdPid = etcd.pid;
    try {
      const where = etcd.dataDir.startsWith('/dev/shm') ? 'tmpfs /dev/shm' : `disk ${path.dirname(etcd.dataDir)}`;
      const fsType = spawnSync('stat', ['-f', '-c', '%T', etcd.dataDir], { encoding: 'utf8' }).stdout.trim();
      await measure(`etcd 3.4 (${where}, ${fsType})`, () => ({ type: 'etcd', etcdEndpoints: [etcd.endpoint], timeoutMs: 10000 }), rows);
    } finally { etcdPid = undefined; await etcd.stop(); }
  }
  if (STORES.includes('embedded')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-bench-ipam-'));
    try {
      const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();
      await measure(`embedded (sqlite, ${fsType})`, () => ({ type: 'embedded', embeddedPath: path.join(dir, 'db'), timeoutMs: 10000 }), rows);
    } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  }
  return rows;
}

/** ADD+DEL latency, interleaved, each plugin run inside a node namespace on a fresh pod namespace. */
function addLatency(): string {
  const root = path.resolve(__dirname, '..');
  const dist = path.join(root, 'dist');
  if (!fs.existsSync(path.join(dist, 'brindle'))) return 'ADD latency: skipped (dist/brindle not built: npm run build)';
  if (!fs.existsSync('/usr/lib/cni/ptp')) return 'ADD latency: skipped (/usr/lib/cni/ptp missing)';
  const tag = `bi${process.pid % 10000}`;
  const nodeNs = `${tag}node`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-bench-add-'));
  const sh = (a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  const made: string[] = [];
  try {
    sh(['netns', 'add', nodeNs]); made.push(nodeNs);
    sh(['-n', nodeNs, 'link', 'set', 'lo', 'up']);
    const confs = {
      brindle: { cniVersion: '1.0.0', name: 'benchnet', type: 'brindle', mtu: 1500, nodename: 'bench', embedded_path: path.join(tmp, 'db'), log_file_path: path.join(tmp, 'cni.log'), ipam: { type: 'brindle-ipam' } },
      ptp: { cniVersion: '1.0.0', name: 'benchptp', type: 'ptp', mtu: 1500, ipam: { type: 'host-local', subnet: '10.99.0.0/16', dataDir: path.join(tmp, 'hl') } },
    };
    const bins: Record<string, { exe: string; path: string }> = { brindle: { exe: path.join(dist, 'brindle'), path: dist }, ptp: { exe: '/usr/lib/cni/ptp', path: '/usr/lib/cni' } };
    const times: Record<string, number[]> = { brindle: [], ptp: [] };
    const failures: string[] = [];
    for (let i = 0; i < ITER; i++) {
      for (const k of (i % 2 ? ['ptp', 'brindle'] : ['brindle', 'ptp']) as ('brindle' | 'ptp')[]) {
        const pod = `${tag}p${k[0]}${i}`;
        sh(['netns', 'add', pod]); made.push(pod);
        const env = { PATH: process.env.PATH, CNI_CONTAINERID: `${k}${i}`, CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0', CNI_PATH: bins[k].path, BRINDLE_RUN_DIR: tmp, BRINDLE_STATE_DIR: tmp,
          // A private native dir: the warm code cache is the one these ADDs leave (the first one writes it).
          BRINDLE_NATIVE_DIR: path.join(tmp, 'native') };
        const t0 = process.hrtime.bigint();
        const r = spawnSync('ip', ['netns', 'exec', nodeNs, bins[k].exe], { input: JSON.stringify(confs[k]), env: { ...env, CNI_COMMAND: 'ADD' }, encoding: 'utf8' });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status === 0) times[k].push(ms); else failures.push(`${k} ADD: ${r.stdout}${r.stderr}`.slice(0, 200));
        spawnSync('ip', ['netns', 'exec', nodeNs, bins[k].exe], { input: JSON.stringify(confs[k]), env: { ...env, CNI_COMMAND: 'DEL' }, encoding: 'utf8' });
        sh(['netns', 'del', pod]); made.splice(made.indexOf(pod), 1);
      }
    }
    const stat = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? `median ${s[Math.floor(s.length / 2)].toFixed(1)} ms, p90 ${s[Math.floor(s.length * 0.9)].toFixed(1)} ms (n=${s.length})` : 'no successful runs'; };
    const mb = [...times.brindle].sort((a, b) => a - b)[Math.floor(times.brindle.length / 2)];
    const mp = [...times.ptp].sort((a, b) => a - b)[Math.floor(times.ptp.length / 2)];
    return [
      `ADD latency (interleaved, each via \`ip netns exec <node ns>\`; plugins get a minimal environment: NODE_EXTRA_CA_CERTS not passed):`,
      `  brindle + brindle-ipam (embedded): ${stat(times.brindle)}`,
      `  ptp + host-local (Go):             ${stat(times.ptp)}`,
      mb && mp ? `  ratio ${(mb / mp).toFixed(2)}x (target <= 3x)` : '',
      ...failures.slice(0, 3).map((f) => `  failure: ${f}`),
    ].join('\n');
  } finally {
    for (const ns of made.reverse()) { try { sh(['netns', 'del', ns]); } catch { /* gone */ } }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

(async () => {
  const load0 = os.loadavg();
  const rows = await allocations();
  const out = [
    `IPAM allocations: ${PER_NODE} per node (at least ${MIN_TOTAL} per run), ${IN_FLIGHT} in flight per node, ${REPEAT} runs per row, after a one-allocation-per-node warm-up.`,
    `"cached" = long-lived allocator (cacheTtlMs ${CACHE_TTL}: agent-like; config/pools/own blocks remembered, handles created optimistically);`,
    `"uncached" = every call re-reads config, pools, handle, affinities and blocks, as one plugin process per ADD does, in one batched read with the blocks hinted by a file per node (plus one when the hint is stale);`,
    `"uncached-nohint" = two batched reads (affinities, then their blocks);`,
    `"uncached-unbatched" = the same reads one request per object; "uncached-before" = that and etcd values stored as plain JSON (no deflate). Each allocation is one atomic write (block + handle). req/alloc = etcd KV requests served per allocation (timed part).`,
    table(rows),
    `load average: ${load0.map((x) => x.toFixed(1)).join(' ')} at start, ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at end, on ${os.cpus().length} cores`,
  ];
  if (!argv.includes('--no-add')) out.push(addLatency());
  process.stdout.write(`${out.join('\n')}\n`);
})().catch((err) => { process.stderr.write(`bench-ipam: ${err?.stack ?? err}\n`); process.exit(1); });
