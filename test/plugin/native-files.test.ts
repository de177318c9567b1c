// lib/native/files.ts (file operations through libc for the plugin's per-pod path) against
// what node:fs says about the same files.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FileError, closeFd, errnoCode, exists, isExecutableFile, nativeFilesReady, openAppend, openFile, readAllFd, readTextFile,
  statPath, utf8Text, writeAllFd, writeFileAtomic,
} from '../../lib/native/files';
import { ownerAndMode, trusted } from '../../lib/native/addon';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-files-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => path.join(dir, name);

function fileError(fn: () => unknown): FileError {
  try { fn(); } catch (e) { if (e instanceof FileError) return e; throw e; }
  throw new Error('no FileError');
}

t.test('exists, stat and executable files agree with node:fs', async (t) => {
  fs.writeFileSync(p('plain'), 'x', { mode: 0o644 });
  fs.writeFileSync(p('prog'), '#!/bin/sh\n', { mode: 0o755 });
  fs.mkdirSync(p('sub'));
  t.ok(exists(p('plain')));
  t.notOk(exists(p('absent')));
  for (const name of ['plain', 'prog', 'sub']) {
    const st = fs.statSync(p(name));
    t.same(statPath(p(name)), { mode: st.mode, uid: st.uid, size: st.size, isFile: st.isFile() }, `stat ${name}`);
  }
  t.equal(statPath(p('absent')), undefined, 'missing: undefined');
  t.equal(statPath(p('plain/below')), undefined, 'ENOTDIR: undefined');
  t.ok(isExecutableFile(p('prog')));
  t.notOk(isExecutableFile(p('plain')), 'no x bit');
  t.notOk(isExecutableFile(p('sub')), 'a directory is not');
  t.notOk(isExecutableFile(p('absent')));
  t.ok(nativeFilesReady(), 'koffi is loaded now');
});

t.test('writeFileAtomic and readTextFile', async (t) => {
  const text = JSON.stringify({ name: 'pod-é漢🙂', n: 'x'.repeat(40000) });
  writeFileAtomic(p('rec.json'), text, 0o600);
  t.equal(fs.readFileSync(p('rec.json'), 'utf8'), text, 'bytes as node:fs reads them (UTF-8, past one 16 KiB read)');
  t.equal(fs.statSync(p('rec.json')).mode & 0o777, 0o600, 'mode');
  t.equal(readTextFile(p('rec.json')), text, 'read back');
  writeFileAtomic(p('rec.json'), 'short', 0o600);
  t.equal(readTextFile(p('rec.json')), 'short', 'replaced whole');
  t.equal(readTextFile(p('absent.json')), undefined, 'missing: undefined, no throw');
  t.equal(fileError(() => readTextFile(p('sub'))).code, 'EISDIR', 'a directory: EISDIR');
  const noDir = fileError(() => writeFileAtomic(p('nodir/rec.json'), 'x', 0o600));
  t.match(noDir, { op: 'open', errno: 2, code: 'ENOENT' }, 'missing directory: ENOENT from open (the caller makes it)');
  fs.mkdirSync(p('target'));
  fs.writeFileSync(p('target/keep'), 'k');
  const ren = fileError(() => writeFileAtomic(p('target'), 'x', 0o600));
  t.equal(ren.op, 'rename');
  t.same(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left after a failed rename');
});

t.test('descriptors: append, write all, read all', async (t) => {
  const fd = openAppend(p('log'), 0o640);
  writeAllFd(fd, 'one\n');
  writeAllFd(fd, 'twø\n');
  writeAllFd(fd, new Uint8Array([0x33, 0x0a]));
  closeFd(fd);
  t.equal(fs.readFileSync(p('log'), 'utf8'), 'one\ntwø\n3\n');
  t.equal(fs.statSync(p('log')).mode & 0o777, 0o640);
  const fd2 = openAppend(p('log'), 0o640);
  writeAllFd(fd2, 'four\n');
  closeFd(fd2);
  t.match(fs.readFileSync(p('log'), 'utf8'), /3\nfour\n$/, 'appends');
  const big = 'y'.repeat(100000);
  fs.writeFileSync(p('big'), big);
  const rfd = openFile(p('big'), 0);
  t.equal(utf8Text(readAllFd(rfd)), big, 'read past the first buffer');
  closeFd(rfd);
  const rfd2 = openFile(p('big'), 0);
  t.equal(fileError(() => readAllFd(rfd2, 1024)).errno, 27, 'past max: EFBIG');
  closeFd(rfd2);
  t.equal(fileError(() => openFile(p('absent'), 0)).code, 'ENOENT');
});

t.test('utf8Text and errno names', async (t) => {
  for (const s of ['', 'ascii', 'é漢🙂', 'a\u0000b']) {
    const b = new Uint8Array(Buffer.from(s));
    t.equal(utf8Text(b), s, JSON.stringify(s));
  }
  const b = new Uint8Array(Buffer.from('xxhelloxx'));
  t.equal(utf8Text(b, 2, 7), 'hello', 'a range');
  t.equal(errnoCode(2), 'ENOENT');
  t.equal(errnoCode(32), 'EPIPE');
  t.equal(errnoCode(999), 'errno 999');
});

t.test('the extracted-addon trust check: owner and mode as node:fs reads them, and what it refuses', async (t) => {
  fs.writeFileSync(p('addon'), 'x', { mode: 0o500 });
  fs.symlinkSync(p('addon'), p('link'));
  for (const name of ['addon', 'link', 'sub']) {
    if (name === 'sub' && !fs.existsSync(p('sub'))) fs.mkdirSync(p('sub'));
    const st = fs.statSync(p(name));
    t.same(ownerAndMode(p(name)), { mode: st.mode, uid: st.uid }, `owner and mode of ${name}`);
  }
  t.throws(() => ownerAndMode(p('absent')), { code: 'ENOENT' }, 'a missing file is ENOENT');
  t.ok(trusted(p('addon')), 'ours, r-x------');
  t.ok(trusted(p('link')), 'through a link to it');
  t.notOk(trusted(p('sub')), 'a directory');
  t.notOk(trusted(p('absent')), 'missing');
  fs.chmodSync(p('addon'), 0o520);
  t.notOk(trusted(p('addon')), 'group-writable');
  fs.chmodSync(p('addon'), 0o502);
  t.notOk(trusted(p('addon')), 'writable by others');
  fs.chmodSync(p('addon'), 0o500);
  if (process.getuid?.() === 0) {
    fs.chownSync(p('addon'), 65534, 65534);
    t.notOk(trusted(p('addon')), 'owned by someone else');
  }
});
