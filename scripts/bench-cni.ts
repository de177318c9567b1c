// CNI ADD/DEL latency: the built `brindle` single executable against Debian's Go `ptp`, both
// with `host-local` IPAM, interleaved run by run (alternating which goes first), inside
// namespaces made here and removed at the end. Prints medians, p90 and the brindle/ptp ratio.
//
//   npm run bench -- cni [--n 100] [--bin dist/brindle] [--compare-bin other/brindle] [--json out.json] [--timing]
//
// --timing: the measured brindle runs print their start-up milestones (BRINDLE_DEBUG_TIMING=1;
// printing happens at exit), and the medians of each are listed after the table.
//
// --compare-bin: a second brindle build (e.g. the previous commit's, built with BRINDLE_DIST_DIR)
// measured in the same rounds, the three sides taking turns going first.
//
// The timing loop runs inside the node namespace (`ip netns exec`) so each plugin is spawned
// directly, as a runtime would, with no `ip` in the measured path.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

interface Sample { timing?: Record<string, { wall: number[]; cpu: number[] }>; brindleAdd: number[]; brindleDel: number[]; ptpAdd: number[]; ptpDel: number[]; brindleVersion: number[];
  compareAdd: number[]; compareDel: number[]; compareVersion: number[] }

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Inner loop: runs inside the node namespace. */
function inner(): void {
  const cfg = JSON.parse(fs.readFileSync(arg('inner')!, 'utf8'));
  const n: number = cfg.n;
  const baseEnv = (verb: string, cid: string, netns: string, cniPath: string = cfg.cniPath): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: verb, CNI_CONTAINERID: cid, CNI_NETNS: netns,
      CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: cniPath, BRINDLE_STATE_DIR: cfg.stateDir,
      // A private native dir: the warm code cache is the one this bench's own warm-up ADDs
      // leave (as on a node), not whatever an earlier test run put in /var/lib/brindle.
      BRINDLE_NATIVE_DIR: cfg.nativeDir,
    };
    if (process.env.NODE_EXTRA_CA_CERTS) env.NODE_EXTRA_CA_CERTS = process.env.NODE_EXTRA_CA_CERTS;
    if (cfg.timing && cniPath === cfg.cniPath) env.BRINDLE_DEBUG_TIMING = '1';
    return env;
  };
  const run = (bin: string, verb: string, cid: string, netns: string, conf: string, cniPath?: string): number => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(bin, [], { env: baseEnv(verb, cid, netns, cniPath), input: conf, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${path.basename(bin)} ${verb} failed: ${r.stdout}${r.stderr}`);
    // --timing: the brindle side's start-up milestones (BRINDLE_DEBUG_TIMING lines: wall, cpu, label).
    if (cfg.timing && bin === cfg.brindle && verb === 'ADD' && s.timing) {
      for (const m of r.stderr.matchAll(/^\s*([\d.]+)(?:\s+cpu\s+([\d.]+))?\s+(.+)$/gm)) {
        const t = (s.timing[m[3]] ??= { wall: [], cpu: [] });
        t.wall.push(Number(m[1]));
        if (m[2] !== undefined) t.cpu.push(Number(m[2]));
      }
    }
    return ms;
  };
  const s: Sample = { brindleAdd: [], brindleDel: [], ptpAdd: [], ptpDel: [], brindleVersion: [], compareAdd: [], compareDel: [], compareVersion: [] };
  const version = (bin: string, into: number[]) => {
    const t0 = process.hrtime.bigint();
    spawnSync(bin, [], { env: baseEnv('VERSION', '', ''), input: '{"cniVersion":"1.0.0"}' });
    into.push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  const compare = () => {
    if (!cfg.compare) return;
    s.compareAdd.push(run(cfg.compare, 'ADD', 'benchc', cfg.podC, cfg.compareConf, cfg.compareCniPath));
    s.compareDel.push(run(cfg.compare, 'DEL', 'benchc', cfg.podC, cfg.compareConf, cfg.compareCniPath));
  };
  const brindle = () => {
    s.brindleAdd.push(run(cfg.brindle, 'ADD', 'benchb', cfg.podB, cfg.brindleConf));
    s.brindleDel.push(run(cfg.brindle, 'DEL', 'benchb', cfg.podB, cfg.brindleConf));
  };
  const ptp = () => {
    s.ptpAdd.push(run(cfg.ptp, 'ADD', 'benchp', cfg.podP, cfg.ptpConf));
    s.ptpDel.push(run(cfg.ptp, 'DEL', 'benchp', cfg.podP, cfg.ptpConf));
  };
  // Warm-up (page cache, the extracted native addon), not counted.
  for (let i = 0; i < 3; i++) { brindle(); compare(); ptp(); }
  s.brindleAdd.length = s.brindleDel.length = s.ptpAdd.length = s.ptpDel.length = s.compareAdd.length = s.compareDel.length = 0;
  if (cfg.timing) s.timing = {};
  const sides = [brindle, compare, ptp];
  for (let i = 0; i < n; i++) {
    // Each side goes first, second and last equally often.
    for (let k = 0; k < sides.length; k++) sides[(i + k) % sides.length]();
    version(cfg.brindle, s.brindleVersion);
    if (cfg.compare) version(cfg.compare, s.compareVersion);
  }
  fs.writeSync(1, JSON.stringify(s));
}

function main(): void {
  const n = Number(arg('n', '100'));
  const bin = path.resolve(arg('bin', process.env.BRINDLE_BIN ?? path.join(REPO, 'dist', 'brindle'))!);
  if (!fs.existsSync(bin)) {
    console.error(`${bin} not found: run npm run build first`);
    process.exit(2);
  }
  const load0 = os.loadavg();
  const tag = `bb${process.pid.toString(16)}`;
  const node = `${tag}node`, podB = `${tag}podb`, podP = `${tag}podp`, podC = `${tag}podc`;
  const compareBin = arg('compare-bin') ? path.resolve(arg('compare-bin')!) : undefined;
  if (compareBin && !fs.existsSync(compareBin)) {
    console.error(`${compareBin} not found`);
    process.exit(2);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-bench-'));
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    for (const ns of [node, podB, podP, ...(compareBin ? [podC] : [])]) { ip('netns', 'add', ns); ip('-n', ns, 'link', 'set', 'lo', 'up'); }
    ip('-n', node, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'uplink0');
    ip('-n', node, 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
    ip('-n', node, 'link', 'set', 'eth0', 'up');
    ip('-n', node, 'link', 'set', 'uplink0', 'up');
    ip('-n', node, 'route', 'add', 'default', 'via', '198.18.0.254');
    const cniPath = path.join(root, 'bin');
    fs.mkdirSync(cniPath);
    for (const f of ['host-local', 'ptp']) fs.symlinkSync(`/usr/lib/cni/${f}`, path.join(cniPath, f));
    fs.symlinkSync(bin, path.join(cniPath, 'brindle'));
    // The compared build runs under the same name (the name picks the program) from its own CNI_PATH.
    const compareCniPath = path.join(root, 'bin-compare');
    if (compareBin) {
      fs.mkdirSync(compareCniPath);
      fs.symlinkSync('/usr/lib/cni/host-local', path.join(compareCniPath, 'host-local'));
      fs.symlinkSync(compareBin, path.join(compareCniPath, 'brindle'));
    }
    const ipam = (sub: string) => ({ type: 'host-local', dataDir: path.join(root, 'ipam'), ranges: [[{ subnet: sub }]] });
    const cfg = {
      n, cniPath, timing: process.argv.includes('--timing'), nativeDir: path.join(root, 'native'), stateDir: path.join(root, 'state'),
      brindle: path.join(cniPath, 'brindle'), ptp: path.join(cniPath, 'ptp'),
      podB: `/var/run/netns/${podB}`, podP: `/var/run/netns/${podP}`,
      // Both plugins get the same explicit MTU (`brindle install` writes the detected one into the
      // conflist, as Calico's installer does; ptp never detects).
      brindleConf: JSON.stringify({ cniVersion: '1.0.0', name: 'benchb', type: 'brindle', mtu: 1500, log_file_path: path.join(root, 'cni.log'), ipam: ipam('10.244.0.0/24') }),
      ptpConf: JSON.stringify({ cniVersion: '1.0.0', name: 'benchp', type: 'ptp', ipMasq: false, mtu: 1500, ipam: ipam('10.245.0.0/24') }),
      ...(compareBin ? {
        compare: path.join(compareCniPath, 'brindle'), compareCniPath, podC: `/var/run/netns/${podC}`,
        compareConf: JSON.stringify({ cniVersion: '1.0.0', name: 'benchc', type: 'brindle', mtu: 1500, log_file_path: path.join(root, 'cni-compare.log'), ipam: ipam('10.246.0.0/24') }),
      } : {}),
    };
    const cfgFile = path.join(root, 'bench.json');
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');
    const out = execFileSync('ip', ['netns', 'exec', node, tsx, __filename, '--inner', cfgFile],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    const s = JSON.parse(out) as Sample;
    const row = (name: string, xs: number[]) => `${name.padEnd(26)} ${quantile(xs, 0.5).toFixed(1).padStart(8)} ${quantile(xs, 0.9).toFixed(1).padStart(8)}`;
    const ratioAdd = quantile(s.brindleAdd, 0.5) / quantile(s.ptpAdd, 0.5);
    const ratioDel = quantile(s.brindleDel, 0.5) / quantile(s.ptpDel, 0.5);
    const lines = [
      `CNI latency, ${n} interleaved runs each (ms), cniVersion 1.0.0, host-local IPAM and mtu 1500 for both`,
      `brindle: ${bin}`,
      `NODE_EXTRA_CA_CERTS: ${process.env.NODE_EXTRA_CA_CERTS ? `set (${process.env.NODE_EXTRA_CA_CERTS}) and passed to the plugins` : 'not set'}`,
      `${'case'.padEnd(26)} ${'median'.padStart(8)} ${'p90'.padStart(8)}`,
      row('brindle ADD', s.brindleAdd),
      row('ptp + host-local ADD', s.ptpAdd),
      row('brindle DEL', s.brindleDel),
      row('ptp + host-local DEL', s.ptpDel),
      row('brindle VERSION (start-up)', s.brindleVersion),
      ...(compareBin ? [
        `compared build: ${compareBin}`,
        row('compared ADD', s.compareAdd),
        row('compared DEL', s.compareDel),
        row('compared VERSION', s.compareVersion),
        `ratio ADD compared/ptp: ${(quantile(s.compareAdd, 0.5) / quantile(s.ptpAdd, 0.5)).toFixed(2)}, DEL ${(quantile(s.compareDel, 0.5) / quantile(s.ptpDel, 0.5)).toFixed(2)}`,
      ] : []),
      `ratio ADD brindle/ptp: ${ratioAdd.toFixed(2)} (target <= 3)`,
      `load average ${load0.map((x) => x.toFixed(1)).join(' ')} at start, ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at end, ${os.cpus().length} cores, node ${process.version}`,
      `ratio DEL brindle/ptp: ${ratioDel.toFixed(2)}`,
    ];
    if (s.timing) {
      // Milestones in the order of a run, by median wall time since the process began.
      lines.push('brindle ADD milestones (--timing; medians, ms since process start):',
        ...Object.entries(s.timing).sort((a, b) => quantile(a[1].wall, 0.5) - quantile(b[1].wall, 0.5))
          .map(([k, t]) => `  ${quantile(t.wall, 0.5).toFixed(2).padStart(7)} wall ${t.cpu.length ? quantile(t.cpu, 0.5).toFixed(2).padStart(7) + ' cpu' : ''.padStart(11)}  ${k}`));
    }
    console.log(lines.join('\n'));
    const json = arg('json');
    if (json) fs.writeFileSync(json, JSON.stringify({ n, bin, nodeExtraCaCerts: !!process.env.NODE_EXTRA_CA_CERTS, loadStart: load0, loadEnd: os.loadavg(), samples: s, ratioAdd, ratioDel }, null, 2));
  } finally {
    for (const ns of [podB, podP, podC, node]) { try { ip('netns', 'del', ns); } catch { /* gone */ } }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv.includes('--inner')) inner();
else main();
