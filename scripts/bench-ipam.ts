// `npm run bench -- ipam [--total N] [--iterations N] [--no-add]`: IPAM allocations per second
// for 1, 10 and 50 simulated nodes (in-process allocators, one datastore client and node name
// each) on etcd (real fsync, and --unsafe-no-fsync) and on the embedded store, with
// conflict/retry counts and a duplicate check; then the ADD latency of `brindle` +
// `brindle-ipam` (embedded) against Debian's ptp + host-local, interleaved, in namespaces.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../lib/ipam/allocator';
import { createPool } from '../lib/ipam/pools';
import { openDatastore } from '../lib/datastore/open';
import type { Datastore, DatastoreSettings, IPPoolSpec } from '../lib/datastore/types';
import { startEtcd } from '../test/helpers/etcd';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : dflt; };
const TOTAL = opt('total', 1000);
const ITER = opt('iterations', 30);

interface Row { store: string; nodes: number; cache: string; allocs: number; secs: number; perSec: number; conflicts: number; retries: number; claims: number; dups: number }

async function allocRun(store: string, settings: () => DatastoreSettings, nodes: number, cacheTtlMs: number): Promise<Row> {
  const stores: Datastore[] = Array.from({ length: nodes }, () => openDatastore(settings()));
  try {
    try { await createPool(stores[0], { kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.128.0.0/9', blockSize: 26 } as IPPoolSpec }); } catch { /* exists */ }
    const ipams = stores.map((s) => new Ipam(s, { cacheTtlMs }));
    const per = Math.ceil(TOTAL / nodes);
    const tag = `${store}-${nodes}-${cacheTtlMs}`.replace(/[^a-z0-9-]/gi, '');
    const t0 = process.hrtime.bigint();
    // Each node runs `per` allocations, up to 10 in flight (the allocator queues per node as the plugin's lock does).
    const results = await Promise.all(ipams.map(async (ipam, n) => {
      const ips: string[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(10, per) }, async () => {
        for (let i = next++; i < per; i = next++) {
          const r = await ipam.autoAssign({ handle: `bench.${tag}-n${n}-c${i}`, node: `${tag}-node${n}`, num4: 1 });
          ips.push(...r.ips4);
        }
      }));
      return ips;
    }));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const ips = results.flat();
    const s = ipams.reduce((a, i) => ({ conflicts: a.conflicts + i.stats.conflicts, retries: a.retries + i.stats.retries, claims: a.claims + i.stats.claims }), { conflicts: 0, retries: 0, claims: 0 });
    return { store, nodes, cache: cacheTtlMs ? 'cached' : 'uncached', allocs: ips.length, secs, perSec: ips.length / secs, ...s, dups: ips.length - new Set(ips).size };
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

function table(rows: Row[]): string {
  const head = 'store                         nodes  mode      allocs   secs   allocs/s  conflicts retries claims dups';
  return [head, ...rows.map((r) => `${r.store.padEnd(30)}${String(r.nodes).padStart(5)}  ${r.cache.padEnd(9)}${String(r.allocs).padStart(6)}${r.secs.toFixed(2).padStart(7)}${r.perSec.toFixed(0).padStart(11)}${String(r.conflicts).padStart(11)}${String(r.retries).padStart(8)}${String(r.claims).padStart(7)}${String(r.dups).padStart(5)}`)].join('\n');
}

async function allocations(): Promise<Row[]> {
  const rows: Row[] = [];
  const modes = [5000, 0];
  for (const fsync of [true, false]) {
    const etcd = await startEtcd({ unsafeNoFsync: !fsync });
    try {
      const name = `etcd (${fsync ? 'fsync' : '--unsafe-no-fsync'})`;
      for (const nodes of [1, 10, 50]) for (const c of modes) {
        rows.push(await allocRun(name, () => ({ type: 'etcd', etcdEndpoints: [etcd.endpoint], timeoutMs: 10000 }), nodes, c));
        process.stderr.write(`${table(rows.slice(-1)).split('\n')[1]}\n`);
      }
    } finally { await etcd.stop(); }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-bench-ipam-'));
  try {
    for (const nodes of [1, 10, 50]) for (const c of modes) {
      rows.push(await allocRun('embedded (sqlite, one file)', () => ({ type: 'embedded', embeddedPath: path.join(dir, 'db'), timeoutMs: 10000 }), nodes, c));
      process.stderr.write(`${table(rows.slice(-1)).split('\n')[1]}\n`);
    }
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
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
      brindle: { cniVersion: '1.0.0', name: 'benchnet', type: 'brindle', nodename: 'bench', embedded_path: path.join(tmp, 'db'), log_file_path: path.join(tmp, 'cni.log'), ipam: { type: 'brindle-ipam' } },
      ptp: { cniVersion: '1.0.0', name: 'benchptp', type: 'ptp', ipam: { type: 'host-local', subnet: '10.99.0.0/16', dataDir: path.join(tmp, 'hl') } },
    };
    const bins: Record<string, { exe: string; path: string }> = { brindle: { exe: path.join(dist, 'brindle'), path: dist }, ptp: { exe: '/usr/lib/cni/ptp', path: '/usr/lib/cni' } };
    const times: Record<string, number[]> = { brindle: [], ptp: [] };
    const failures: string[] = [];
    for (let i = 0; i < ITER; i++) {
      for (const k of (i % 2 ? ['ptp', 'brindle'] : ['brindle', 'ptp']) as ('brindle' | 'ptp')[]) {
        const pod = `${tag}p${k[0]}${i}`;
        sh(['netns', 'add', pod]); made.push(pod);
        const env = { PATH: process.env.PATH, CNI_CONTAINERID: `${k}${i}`, CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0', CNI_PATH: bins[k].path, BRINDLE_RUN_DIR: tmp, BRINDLE_STATE_DIR: tmp };
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
  const rows = await allocations();
  const out = [
    `IPAM allocations (${TOTAL} per run; "cached" = long-lived allocator with cacheTtlMs 5000, "uncached" = every call re-reads config/pools/blocks as a plugin process does)`,
    table(rows),
    `load average at end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`,
  ];
  if (!argv.includes('--no-add')) out.push(addLatency());
  process.stdout.write(`${out.join('\n')}\n`);
})().catch((err) => { process.stderr.write(`bench-ipam: ${err?.stack ?? err}\n`); process.exit(1); });
