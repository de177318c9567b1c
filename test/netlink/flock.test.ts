// flock(2)-based file locks: exclusion within and across processes, timeout, release on throw.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { LockTimeoutError, withFileLock } from '../../lib/native/flock';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-flock-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const heldByOther = (file: string) => spawnSync('flock', ['-n', file, 'true']).status !== 0;

t.test('exclusive while fn runs, released after', async (t) => {
  const file = path.join(dir, 'a.lock');
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const first = withFileLock(file, async () => {
    order.push('first in');
    t.ok(heldByOther(file), 'another process cannot take it');
    await gate;
    order.push('first out');
    return 1;
  });
  await new Promise((r) => setImmediate(r));
  await t.rejects(withFileLock(file, async () => 0, { timeoutMs: 30 }), LockTimeoutError, 'timeout variant gives up');
  const second = withFileLock(file, async () => { order.push('second'); return 2; });
  release();
  t.same(await Promise.all([first, second]), [1, 2]);
  t.same(order, ['first in', 'first out', 'second'], 'blocking waiter ran after the holder');
  t.notOk(heldByOther(file), 'free afterwards');
});

t.test('released when fn throws', async (t) => {
  const file = path.join(dir, 'b.lock');
  await t.rejects(withFileLock(file, async () => { throw new RangeError('boom'); }), RangeError);
  t.equal(await withFileLock(file, async () => 'ok', { timeoutMs: 100 }), 'ok');
});

t.test('waits for another process', async (t) => {
  const file = path.join(dir, 'c.lock');
  const started = Date.now();
  const holder = spawn('flock', [file, 'sleep', '0.4'], { stdio: 'ignore' });
  t.teardown(() => { if (holder.exitCode === null) holder.kill('SIGKILL'); });
  while (!heldByOther(file)) await new Promise((r) => setTimeout(r, 5));
  await t.rejects(withFileLock(file, async () => 0, { timeoutMs: 20 }), LockTimeoutError);
  let waits = 0;
  const waited = await withFileLock(file, async () => Date.now() - started, { onWait: () => { waits++; } });
  t.ok(waited >= 350, `blocking wait ended when the holder let go (${waited} ms)`);
  t.equal(waits, 1, 'onWait told once that the wait began');
  await withFileLock(file, async () => 0, { onWait: () => { waits++; } });
  t.equal(waits, 1, 'a free lock: no wait, no onWait');
});
