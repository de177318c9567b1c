// brindle-ipam as real processes on one node with the embedded store: 200 concurrent ADDs
// (unique addresses, only the blocks needed), then crash safety: 300 ADDs with SIGKILLs at
// random moments; afterwards no address is held twice and checkConsistency names exactly the
// leaked handles, which releaseByHandle frees.
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam } from '../../lib/ipam/allocator';
import { EmbeddedDatastore } from '../../lib/datastore/embedded';
import { ipamPluginCommand, type PluginCommand } from './plugin-bin';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-ipam-proc-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run { code: number | null; signal: string | null; stdout: string }

function runPlugin(cmd: PluginCommand, verb: string, id: string, db: string, killAfterMs?: number): Promise<Run> {
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'net', type: 'brindle-ipam', nodename: 'node1', embedded_path: db, datastore_timeout_ms: 20000, ipam: { type: 'brindle-ipam' } });
  return new Promise((resolve, reject) => {
    const p = spawn(cmd.cmd, cmd.args, {
      env: { PATH: process.env.PATH, BRINDLE_RUN_DIR: dir, CNI_COMMAND: verb, CNI_CONTAINERID: id, CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', BRINDLE_ARGV0: 'brindle-ipam' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let stdout = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout }));
    p.stdin!.end(conf);
    if (killAfterMs !== undefined) setTimeout(() => { if (p.exitCode === null) p.kill('SIGKILL'); }, killAfterMs).unref();
  });
}

async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { for (let i = next++; i < n; i = next++) out[i] = await fn(i); }));
  return out;
}

t.test('200 concurrent ADDs on one node', async (t) => {
  const cmd = await ipamPluginCommand();
  t.comment(`running ${cmd.how}`);
  const db = path.join(dir, 'a.db');
  const runs = await pool(200, 200, (i) => runPlugin(cmd, 'ADD', `c${i}`, db));
  const ips = runs.map((r, i) => {
    t.equal(r.code, 0, `ADD c${i}: ${r.stdout}`);
    return JSON.parse(r.stdout).ips[0].address as string;
  });
  t.equal(new Set(ips).size, 200, 'every address unique');
  const ds = new EmbeddedDatastore({ embeddedPath: db });
  t.teardown(() => ds.close());
  const blocks = (await ds.list('IPAMBlock')).items;
  t.equal(blocks.length, Math.ceil(200 / 64), 'only the blocks needed were claimed');
  t.ok(blocks.every((b) => b.spec.affinity === 'host:node1'));
  const rep = await new Ipam(ds).checkConsistency({ validHandles: runs.map((_, i) => `net.c${i}`) });
  t.ok(rep.ok, JSON.stringify(rep.problems.slice(0, 5)));
  const dels = await pool(200, 200, (i) => runPlugin(cmd, 'DEL', `c${i}`, db));
  t.ok(dels.every((r) => r.code === 0), 'all DELs succeed');
  t.equal((await ds.list('IPAMHandle')).items.length, 0);
  t.equal((await ds.list('IPAMBlock')).items.reduce((s, b) => s + Object.keys(b.spec.allocations).length, 0), 0, 'all released');
});

t.test('crash safety: SIGKILL at random points during 300 ADDs', async (t) => {
  const cmd = await ipamPluginCommand();
  const db = path.join(dir, 'b.db');
  // Calibrate: how long one ADD takes here, so kills land before, during and after the write.
  const t0 = Date.now();
  const warm = await runPlugin(cmd, 'ADD', 'warm', db);
  t.equal(warm.code, 0, warm.stdout);
  const one = Math.max(Date.now() - t0, 20);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const runs = await pool(300, 30, (i) => runPlugin(cmd, 'ADD', `k${i}`, db, i % 3 === 0 ? Math.floor(rnd() * one * 4) : undefined));
  const ok = new Set<string>(), killed = new Set<string>();
  ok.add('net.warm');
  runs.forEach((r, i) => {
    if (r.code === 0) ok.add(`net.k${i}`);
    else if (r.signal === 'SIGKILL') killed.add(`net.k${i}`);
    else t.fail(`ADD k${i}: ${r.code} ${r.stdout}`);
  });
  t.comment(`${ok.size} succeeded, ${killed.size} killed (one ADD ~${one} ms)`);
  t.ok(killed.size > 0, 'some were killed');
  const ds = new EmbeddedDatastore({ embeddedPath: db });
  t.teardown(() => ds.close());
  const ipam = new Ipam(ds);
  const handles = (await ds.list('IPAMHandle')).items.map((h) => h.spec.handleID);
  for (const h of ok) t.ok(handles.includes(h), `${h} kept`);
  const leaked = handles.filter((h) => !ok.has(h)).sort();
  t.ok(leaked.every((h) => killed.has(h)), 'only killed ADDs leave handles behind');
  const rep = await ipam.checkConsistency({ validHandles: ok });
  t.same(rep.leakedHandles, leaked, 'the check names exactly the leaked handles');
  t.same(rep.problems.filter((p) => p.kind !== 'leakedHandle'), [], 'nothing else is wrong (no address twice)');
  t.equal(rep.allocations, handles.length, 'one address per handle');
  t.comment(`${leaked.length} leaked handles`);
  for (const h of rep.leakedHandles) await ipam.releaseByHandle(h);
  const after = await ipam.checkConsistency({ validHandles: ok });
  t.ok(after.ok, JSON.stringify(after.problems.slice(0, 5)));
  t.equal(after.allocations, ok.size, 'exactly the successful ADDs hold addresses');
});
