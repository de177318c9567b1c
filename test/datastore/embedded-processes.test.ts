// The embedded store under many processes: CAS increments from 8 processes end with the exact
// count, and processes SIGKILLed mid-write leave a readable, consistent database.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedDatastore } from '../../lib/datastore/embedded';

const root = path.resolve(__dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-emb-'));
const worker = path.join(dir, 'worker.js');
const children = new Set<ChildProcess>();

t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

t.before(() => {
  // One bundled worker: starting 8 plain node processes costs far less than 8 TypeScript loaders.
  require('esbuild').buildSync({
    entryPoints: [path.join(__dirname, 'fixtures/embedded-worker.ts')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: worker,
    external: ['better-sqlite3'], logLevel: 'error',
  });
});

function run(args: string[]): ChildProcess {
  const c = spawn(process.execPath, [worker, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_PATH: path.join(root, 'node_modules') },
  });
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

function finish(c: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  c.stdout!.on('data', (d) => { out += d; });
  c.stderr!.on('data', (d) => { err += d; });
  return new Promise((resolve) => c.on('close', (code) => resolve({ code, out, err })));
}

t.test('8 processes doing compare-and-swap increments', async (t) => {
  const file = path.join(dir, 'cas', 'brindle.db');
  const ds = new EmbeddedDatastore({ embeddedPath: file });
  await ds.create({ kind: 'IPAMHandle', metadata: { name: 'counter' }, spec: { handleID: 'counter', block: { n: 0 } } });
  const per = 40;
  const results = await Promise.all(Array.from({ length: 8 }, () => finish(run(['cas', file, String(per)]))));
  for (const r of results) t.equal(r.code, 0, r.err);
  const conflicts = results.reduce((s, r) => s + Number(r.out.trim() || 0), 0);
  const end = await ds.get('IPAMHandle', 'counter');
  t.equal(end.spec.block.n, 8 * per, `exact count (${conflicts} conflicts retried)`);
  t.equal(end.metadata.revision, String(8 * per + 1), 'one revision per write');
  await ds.close();
});

t.test('processes SIGKILLed mid-write leave a consistent database', async (t) => {
  const file = path.join(dir, 'kill', 'brindle.db');
  const ds0 = new EmbeddedDatastore({ embeddedPath: file });
  await ds0.create({ kind: 'IPAMHandle', metadata: { name: 'counter' }, spec: { handleID: 'counter', block: { n: 0 } } });
  await ds0.close();
  for (let round = 0; round < 3; round++) {
    const procs = Array.from({ length: 3 }, (_, i) => run(['churn', file, `${round}-${i}`]));
    const errs = procs.map((p) => { let e = ''; p.stderr!.on('data', (d) => { e += d; }); return () => e; });
    // Wait until every writer is well into its loop, then kill at a random moment.
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
      let seen = 0;
      p.stdout!.on('data', (d: Buffer) => { seen += d.toString().split('\n').length - 1; if (seen >= 2) resolve(); });
      p.on('exit', () => resolve());
    })));
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    for (const p of procs) t.equal(p.exitCode, null, `round ${round}: writer still running ${errs[procs.indexOf(p)]()}`);
    for (const p of procs) process.kill(p.pid!, 'SIGKILL');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.on('exit', r)))));

    const Database = require('better-sqlite3');
    const raw = new Database(file, { readonly: true });
    t.equal(raw.pragma('integrity_check', { simple: true }), 'ok', `round ${round}: integrity_check`);
    const maxRev = raw.prepare('SELECT max(rev) AS m FROM resources').get().m;
    const counterRev = raw.prepare("SELECT v FROM meta WHERE k = 'rev'").get().v;
    t.ok(counterRev >= maxRev, `round ${round}: revision counter ${counterRev} covers every row (${maxRev})`);
    raw.close();

    const ds = new EmbeddedDatastore({ embeddedPath: file });
    const all = (await ds.list('IPAMHandle')).items;
    const names = new Set(all.map((r) => r.metadata.name));
    const pairs = all.filter((r) => r.metadata.name.endsWith('.a'));
    const broken = pairs.filter((r) => !names.has(r.metadata.name.replace(/\.a$/, '.b')));
    t.equal(broken.length, 0, `round ${round}: every batch all or nothing (${pairs.length} pairs)`);
    const counter = all.find((r) => r.metadata.name === 'counter')!;
    t.equal(counter.spec.block.n, pairs.length, `round ${round}: the counter moved with every committed batch`);
    // Still writable after the crash.
    await ds.update(counter);
    await ds.close();
  }
});
