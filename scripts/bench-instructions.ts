// Instructions one plugin ADD executes, counted by valgrind's callgrind: repeatable to about
// ±0.1% for the same executable and input whatever else the machine is doing, so two builds can
// be compared on a noisy VM where wall-clock medians move by milliseconds. User space only (the
// kernel's veth work is not counted), and less V8's hash-seed prime search, which is random per
// process (±2M instructions) and not ours. Wall time stays the figure that counts: bench-cni.
//
//   npm run bench -- instructions [--bin dist/brindle] [--compare-bin other/brindle] [--ipam host-local|brindle-ipam] [--runs 3]
//
// As root; namespaces made here (per-run names) and removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

/** Inclusive instruction counts of callgrind's output: the total, and the functions asked for. */
function counts(outFile: string, names: string[]): { total: number; [name: string]: number } {
  const text = execFileSync('callgrind_annotate', ['--inclusive=yes', outFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const got: { total: number; [name: string]: number } = { total: 0 };
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+)\s/.exec(line);
    if (!m) continue;
    const v = Number(m[1].replace(/,/g, ''));
    if (line.includes('PROGRAM TOTALS')) got.total = v;
    for (const n of names) if (got[n] === undefined && line.includes(n)) got[n] = v;
  }
  return got;
}

function main(): void {
  for (const tool of ['valgrind', 'callgrind_annotate', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) { console.error(`${tool} not found`); process.exit(2); }
  }
  const bins = [arg('bin', path.join(REPO, 'dist', 'brindle'))!, ...(arg('compare-bin') ? [arg('compare-bin')!] : [])].map((b) => path.resolve(b));
  for (const b of bins) if (!fs.existsSync(b)) { console.error(`${b} not found`); process.exit(2); }
  const ipamType = arg('ipam', 'host-local')!;
  const runs = Number(arg('runs', '3'));
  const tag = `bi${process.pid.toString(36)}`;
  const node = `${tag}n`, pod = `${tag}p`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-instr-'));
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  const made: string[] = [];
  try {
    for (const ns of [node, pod]) { ip('netns', 'add', ns); made.push(ns); ip('-n', ns, 'link', 'set', 'lo', 'up'); }
    const rows: string[] = [];
    for (const [i, bin] of bins.entries()) {
      const dir = path.join(root, `bin${i}`);
      fs.mkdirSync(dir);
      fs.symlinkSync(bin, path.join(dir, 'brindle'));
      fs.symlinkSync('/usr/lib/cni/host-local', path.join(dir, 'host-local'));
      const conf = JSON.stringify({
        cniVersion: '1.0.0', name: 'instr', type: 'brindle', mtu: 1500, nodename: 'instr', log_file_path: path.join(root, 'cni.log'),
        embedded_path: path.join(root, `db${i}`),
        ipam: ipamType === 'brindle-ipam' ? { type: 'brindle-ipam' } : { type: 'host-local', dataDir: path.join(root, `ipam${i}`), ranges: [[{ subnet: '10.252.0.0/24' }]] },
      });
      const env = (verb: string): NodeJS.ProcessEnv => ({
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: verb, CNI_CONTAINERID: 'instr', CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0',
        CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: dir, BRINDLE_STATE_DIR: path.join(root, `state${i}`), BRINDLE_RUN_DIR: path.join(root, `run${i}`),
        BRINDLE_NATIVE_DIR: path.join(root, `native${i}`),
      });
      const call = (verb: string, pre: string[] = []) => {
        const r = spawnSync('ip', ['netns', 'exec', node, ...pre, path.join(dir, 'brindle')], { env: env(verb), input: conf, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${bin} ${verb}: ${r.stdout}${r.stderr}`);
      };
      // Warm-up: addons extracted, a warm cache written where the build did not train one.
      call('ADD'); call('DEL');
      const totals: number[] = [], ours: number[] = [];
      for (let k = 0; k < runs; k++) {
        const out = path.join(root, `cg${i}-${k}.out`);
        call('ADD', ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`]);
        call('DEL');
        const c = counts(out, ['v8::internal::HashSeed::InitializeRoots', 'node::sea::LoadSingleExecutableApplication']);
        totals.push(c.total - (c['v8::internal::HashSeed::InitializeRoots'] ?? 0));
        ours.push(c['node::sea::LoadSingleExecutableApplication'] ?? 0);
      }
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      rows.push(`${(med(totals) / 1e6).toFixed(2).padStart(8)} M ${(med(ours) / 1e6).toFixed(2).padStart(8)} M  ${bin}`);
    }
    console.log([
      `instructions of one ADD (${ipamType} IPAM, median of ${runs}), less V8's hash-seed search; then the part from the SEA main on`,
      ...rows,
    ].join('\n'));
  } finally {
    for (const ns of made) { try { ip('netns', 'del', ns); } catch { /* gone */ } }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main();
