// Runs the demo end to end (3 nodes, --json) in its own state directory and checks the story:
// every matrix all ✓ before and after each live change, `node status` Established with the
// right peer types, agents never restarted, and `down` leaves no namespace or process behind.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const demoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-demo-test-'));

function runDemo(args: string[]): Promise<{ code: number; events: any[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(REPO, 'node_modules', '.bin', 'tsx'), [path.join(REPO, 'scripts', 'demo.ts'), ...args], {
      env: { ...process.env, BRINDLE_DEMO_DIR: demoDir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({
      code: code ?? -1, stderr: err,
      events: out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return { event: 'garbage', line: l }; } }),
    }));
  });
}

function namespacesWith(prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(prefix));
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

t.teardown(async () => {
  // Whatever happened, remove what the demo recorded.
  await new Promise<void>((resolve) => {
    const c = spawn(path.join(REPO, 'node_modules', '.bin', 'tsx'), [path.join(REPO, 'scripts', 'demo.ts'), 'down'], { env: { ...process.env, BRINDLE_DEMO_DIR: demoDir }, stdio: 'ignore' });
    c.on('close', () => resolve());
  });
  fs.rmSync(demoDir, { recursive: true, force: true });
});

t.test('demo: 3 nodes, live changes, down', { timeout: 600_000 }, async (t) => {
  if (!fs.existsSync(path.join(REPO, 'dist', 'brindle'))) {
    t.fail('dist/brindle is missing: run npm run build');
    return;
  }
  const { code, events, stderr } = await runDemo(['--nodes', '3', '--json', '--keep']);
  const errors = events.filter((e) => e.event === 'error');
  t.same(errors, [], 'no error events');
  t.equal(code, 0, `demo exits 0 (${stderr.split('\n').slice(-5).join(' | ')})`);

  const net = events.find((e) => e.event === 'network');
  t.ok(net, 'network event');
  const prefix: string = net?.prefix ?? 'none';

  const matrices = events.filter((e) => e.event === 'matrix');
  t.same(matrices.map((m) => m.phase), ['mesh', 'rr', 'as', 'pool2'], 'a matrix before and after each live change');
  for (const m of matrices) {
    t.ok(m.allOk, `matrix ${m.phase}: all ✓`);
    const n = m.pods.length;
    t.equal(m.results.length, n * (n - 1), `matrix ${m.phase}: every pair`);
    t.ok(m.results.every((r: any) => r.ok), `matrix ${m.phase}: every ping answered`);
  }
  t.equal(matrices[0]?.pods.length, 6, 'two pods per node');
  t.equal(matrices[3]?.pods.length, 7, 'plus one pod from the new pool');
  t.ok(matrices[3]?.pods.some((p: any) => p.ip.startsWith('10.245.')), 'the new pod has an address from 10.245.0.0/16');

  const status = (phase: string) => events.filter((e) => e.event === 'nodeStatus' && e.phase === phase);
  for (const s of status('mesh')) {
    t.equal(s.exitCode, 0, `mesh ${s.node}: node status exit 0`);
    t.equal(s.status.peers.length, 2, `mesh ${s.node}: two peers`);
    t.ok(s.status.peers.every((p: any) => p.state === 'Established' && p.type === 'nodeMesh'), `mesh ${s.node}: Established node-to-node mesh`);
  }
  for (const phase of ['rr', 'as']) {
    const st = status(phase);
    t.equal(st.length, 3, `${phase}: status of every node`);
    for (const s of st) {
      if (s.node === 'node-1') {
        t.equal(s.status.peers.length, 2, `${phase} node-1: two clients`);
        t.ok(s.status.peers.every((p: any) => p.state === 'Established' && p.type === 'rrClient'), `${phase} node-1: Established route reflector clients`);
      } else {
        t.equal(s.status.peers.length, 1, `${phase} ${s.node}: one peer`);
        const p = s.status.peers[0];
        t.equal(p?.address, '198.18.0.11', `${phase} ${s.node}: peers only with the reflector`);
        t.equal(p?.state, 'Established', `${phase} ${s.node}: Established`);
        t.ok(['routeReflector', 'global'].includes(p?.type), `${phase} ${s.node}: reflector peer type (${p?.type})`);
      }
      if (phase === 'as') t.equal(s.status.asn, 64513, `as ${s.node}: AS 64513`);
    }
  }

  const check = events.find((e) => e.event === 'agentsCheck');
  t.same(check?.restarted, [], 'no agent restarted');
  const pids: number[] = Object.values(check?.pids ?? {}) as number[];
  t.equal(pids.length, 3);
  t.ok(pids.every(alive), 'agents still running with --keep');
  t.equal(namespacesWith(prefix).length, 1 + 3 + 7, 'fabric, nodes and pods are up with --keep');

  const down = await runDemo(['down', '--json']);
  t.equal(down.code, 0);
  t.same(namespacesWith(prefix), [], 'down removes every namespace');
  t.ok(pids.every((p) => !alive(p)), 'down stops every agent');
  t.notOk(fs.existsSync(path.join(demoDir, 'state.json')), 'down removes the state file');
});

t.test('down after a crash removes what the crashed run recorded (a new run does the same first)', { timeout: 120_000 }, async (t) => {
  // Simulate the leftovers of a crash: a recorded namespace and process.
  const ns = `bdcr${process.pid % 10000}-n1`;
  execFileSync('ip', ['netns', 'add', ns]);
  const sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '300'], { detached: true, stdio: 'ignore' });
  sleeper.unref();
  await new Promise((r) => setTimeout(r, 200));
  const start = fs.readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
  fs.mkdirSync(path.join(demoDir, 'bdcr'), { recursive: true });
  fs.writeFileSync(path.join(demoDir, 'state.json'), JSON.stringify({
    prefix: 'bdcr', dir: path.join(demoDir, 'bdcr'), createdAt: new Date().toISOString(), datastore: 'embedded',
    namespaces: [ns], processes: [{ pid: sleeper.pid, start, what: 'crash leftover' }],
  }));
  const r = await runDemo(['down']);
  t.equal(r.code, 0);
  t.same(namespacesWith(ns), [], 'the leftover namespace is gone');
  for (let i = 0; i < 20 && alive(sleeper.pid!); i++) await new Promise((res) => setTimeout(res, 100));
  t.notOk(alive(sleeper.pid!), 'the leftover process is gone');
});
