// Builds the single executable dist/brindle (+ links brindle-ipam, brindlectl):
// esbuild bundles plugins/main.ts into one CommonJS file; Node's SEA (single executable
// application) turns it into a blob with a V8 code cache and the native addons as assets;
// postject injects the blob into a copy of this machine's own node binary. Offline.
//
// Why not `pkg --sea`: it wraps the same Node SEA steps but fetches a Node binary of its own
// and cannot embed assets; Node's own SEA flow with postject builds from the local Node.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'package.json'));
// BRINDLE_BUILD_DIR / BRINDLE_DIST_DIR: build elsewhere (experiments, benchmarks of variants)
// without replacing the dist/brindle that tests are running.
const finalOut = path.resolve(process.env.BRINDLE_BUILD_DIR ?? path.join(root, 'build', 'sea'));
const dist = path.resolve(process.env.BRINDLE_DIST_DIR ?? path.join(root, 'dist'));
fs.mkdirSync(finalOut, { recursive: true });
fs.mkdirSync(dist, { recursive: true });
// Several engineers build at once: each build works in a private directory and installs
// its results by rename, so no build ever injects another's half-written blob.
const out = fs.mkdtempSync(path.join(finalOut, '.work-'));
process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

// BRINDLE_SEA_MODE (default 'warmcache'):
// - 'warmcache': the SEA main is a small loader (below) that compiles the bundle, stored as an
//   asset, with vm.Script and a V8 code cache. Node's own SEA code cache only holds the
//   top-level code (functions compile lazily, from source, on their first call: ~5 ms on the
//   ADD path); so after the first successful CNI ADD the loader saves a code cache taken
//   *after* the run, which holds every function that ADD compiled, next to the extracted
//   native addons (root-owned, per bundle hash), and later invocations load that. The plugin
//   names the path it took (its IPAM type: host-local and in-process brindle-ipam compile
//   different code); an ADD down a path the cache lacks re-takes it, covering both.
// - 'codecache': Node's SEA useCodeCache on the bundle itself (the previous build).
// - 'snapshot': SEA useSnapshot with the CNI modules evaluated (measured slower here: the
//   start-up snapshot is larger than Node's built-in one and deserializes on every start).
const mode = process.env.BRINDLE_SEA_MODE ?? 'warmcache';
const entry = process.env.BRINDLE_ENTRY ?? path.join(root, 'plugins/main.ts');
const snapshotEntry = `
const v8 = require('node:v8');
if (v8.startupSnapshot && v8.startupSnapshot.isBuildingSnapshot()) {
  require('./plugins/brindle/main');
  v8.startupSnapshot.setDeserializeMainFunction(() => { require(${JSON.stringify(entry)}); });
} else {
  require(${JSON.stringify(entry)});
}
`;
// The warmcache loader. Kept tiny: it runs on every start, before the bundle.
const loaderSource = (bundleHash) => `'use strict';
const sea = require('node:sea');
const fs = require('node:fs');
const vm = require('node:vm');
const env = process.env;
// BRINDLE_DEBUG_TIMING=1: start-up milestones (ms since the process began) on stderr at exit.
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const tm = env.BRINDLE_DEBUG_TIMING ? [['loader', performance.now(), cpu()]] : null;
if (tm) globalThis[Symbol.for('brindle.timing')] = (label) => tm.push([label, performance.now(), cpu()]);
const dir = (env.BRINDLE_NATIVE_DIR || '/var/lib/brindle/native') + '/' + ${JSON.stringify(bundleHash)};
const a0 = env.BRINDLE_ARGV0 || process.argv0;
const prog = a0.slice(a0.lastIndexOf('/') + 1);
// A CNI invocation (a plugin exec'd with CNI_COMMAND and no arguments, one short process per
// call) runs the CNI-only bundle (plugins/cni.ts), and keeps a warm cache, one per program name.
// Anything else runs the whole bundle (plugins/main.ts).
const cni = !!env.CNI_COMMAND && process.argv.length <= 2 && prog !== 'brindlectl';
const bundle = cni ? 'cni' : 'brindle';
// Bytes as text through Buffer's native latin1 slice, on plain Uint8Array views: Node's
// Buffer.from/toString/readUInt*/subarray are JavaScript that V8 compiles on a first call
// (~0.1 ms each in every new process); these are V8's own or native.
const latin1 = Buffer.prototype.latin1Slice;
const text = (u8) => latin1 ? latin1.call(u8, 0, u8.length) : Buffer.from(u8.buffer, u8.byteOffset, u8.length).toString('latin1');
const raw = (name) => new Uint8Array(sea.getRawAsset(name));
// A compiled script from its asset: ASCII (checked at build), so its bytes are its latin1
// text, read in place from the executable.
const compile = (name, cachedData) => new vm.Script(text(raw(name + '.js')), { filename: name + '.js', cachedData });
const run = (script) => { const mod = { exports: {} }; script.runInThisContext()(mod.exports, require, mod, process.execPath, dir); };
// A plugin call's stdin is read here, once (the early script and the plugin take it from
// here): its IPAM type (the "flavour") picks the warm code cache.
let flavour = '';
if (cni) {
  try {
    // readvSync into a growing Uint8Array: the fs reader with the least JavaScript to compile on
    // its first call (readFileSync's option parsing and readSync's argument checks are ~1 KB more).
    let b = new Uint8Array(8192), n = 0;
    for (;;) {
      let r;
      try { r = fs.readvSync(0, [b.subarray(n)], null); } catch (e) { if (e.code === 'EAGAIN') continue; throw e; }
      if (r === 0) break;
      n += r;
      if (n === b.length) { const bigger = new Uint8Array(b.length * 2); bigger.set(b); b = bigger; }
    }
    const input = Buffer.prototype.utf8Slice ? Buffer.prototype.utf8Slice.call(b, 0, n) : Buffer.from(b.buffer, 0, n).toString('utf8');
    globalThis[Symbol.for('brindle.stdin')] = input;
    const t = JSON.parse(input).ipam.type;
    if (typeof t === 'string') flavour = t;
  } catch { /* the plugin reads or reports it */ }
}
// Layout: uint16 LE header length, header = the flavours it covers (comma-separated), uint32 LE
// length of the early script's cache (0: none) and that cache, then the bundle's V8 cache data.
// From: the one the build trained for this flavour and embedded (asset <prog>@<flavour>.warm,
// a real ADD run when the executable was built), else a file under the native dir, written
// after an ADD down a path not cached yet, else the build-time caches (top-level code only).
const warmFile = cni ? dir + '/' + prog + '.ccache' : '';
let data, earlyData, warm = '', flavours = [];
if (warmFile) {
  let buf = null;
  if (flavour) { try { buf = raw(prog + '@' + flavour + '.warm'); warm = 'embedded'; } catch { /* not trained for it */ } }
  if (!buf && fs.existsSync(warmFile)) {
    let fd = -1;
    try {
      fd = fs.openSync(warmFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      const st = fs.fstatSync(fd);
      // Trusted as the extracted addons are: a regular file owned by us, not writable by others.
      if (st.isFile() && st.uid === process.getuid() && (st.mode & 0o022) === 0) { const b = fs.readFileSync(fd); buf = new Uint8Array(b.buffer, b.byteOffset, b.length); warm = warmFile; }
    } catch { /* unreadable: the embedded one */ }
    if (fd >= 0) fs.closeSync(fd);
  }
  if (buf) {
    const n = buf[0] | buf[1] << 8;
    flavours = text(buf.subarray(2, 2 + n)).split(',').filter(Boolean);
    const e = (buf[2 + n] | buf[3 + n] << 8 | buf[4 + n] << 16 | buf[5 + n] << 24) >>> 0;
    if (e) earlyData = buf.subarray(6 + n, 6 + n + e);
    data = buf.subarray(6 + n + e);
  }
}
if (tm) tm.push(['cache read', performance.now(), cpu()]);
// An ADD of the brindle plugin with a delegated IPAM plugin (not its own, in-process) first runs
// the small early script (plugins/early.ts): it starts that plugin, which then works while this
// process compiles and runs the plugin.
let early = null;
if (cni && prog === 'brindle' && env.CNI_COMMAND === 'ADD' && flavour && flavour !== 'brindle-ipam') {
  try {
    early = compile('early', earlyData || raw('early.ccache'));
    run(early);
  } catch { /* the plugin starts its IPAM itself */ }
}
if (!data) data = raw(bundle + '.ccache');
const script = compile(bundle, data);
if (tm) tm.push(['compiled', performance.now(), cpu()]);
if (env.BRINDLE_DEBUG_CCACHE) fs.writeSync(2, 'brindle: ' + bundle + ' code cache ' + (warm ? warm + ' [' + flavours + ']' : 'build') + (script.cachedDataRejected ? ' rejected' : ' accepted') + (early ? ', early script ' + (earlyData ? 'warm' : 'build') + (early.cachedDataRejected ? ' rejected' : ' accepted') : '') + '\\n');
const wanted = new Set();
// The plugin names the path it took (its IPAM type); a cache lacking it is re-taken after the run.
globalThis[Symbol.for('brindle.codeCache')] = { want(f) { wanted.add(String(f)); } };
// At exit, a small check (compiled on every ADD) and the writing apart (compiled only when needed).
const valid = () => warm && !script.cachedDataRejected && (!early || (!!earlyData && !early.cachedDataRejected));
if (warmFile && env.CNI_COMMAND === 'ADD') {
  process.on('exit', (code) => {
    if (code === 0 && !(valid() && [...wanted].every((f) => flavours.includes(f)))) saveWarm();
  });
}
function saveWarm() {
  try {
    const header = Buffer.from([...new Set([...(valid() ? flavours : []), ...wanted])].join(','));
    const e = early ? early.createCachedData() : Buffer.alloc(0);
    const len = Buffer.alloc(2);
    len.writeUInt16LE(header.length, 0);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = warmFile + '.' + process.pid + '.tmp';
    const elen = Buffer.alloc(4);
    elen.writeUInt32LE(e.length, 0);
    fs.writeFileSync(tmp, Buffer.concat([len, header, elen, e, script.createCachedData()]), { mode: 0o600 });
    fs.renameSync(tmp, warmFile);
  } catch { /* read-only or full: the next ADD tries again */ }
}
if (tm) {
  process.on('exit', () => {
    const nt = performance.nodeTiming;
    const rows = [['node: v8 start', nt.v8Start], ['node: environment', nt.environment], ['node: bootstrap complete', nt.bootstrapComplete], ...tm, ['exit', performance.now(), cpu()]];
    fs.writeSync(2, rows.map(([k, v, c]) => v.toFixed(2).padStart(8) + (c === undefined ? '' : ' cpu ' + c.toFixed(2).padStart(7)).padEnd(12) + ' ' + k).join('\\n') + '\\n');
  });
}
run(script);
if (tm) tm.push(['bundle top level', performance.now(), cpu()]);
`;

const t0 = Date.now();
const esbuildOptions = (outName, minifyIdentifiers = false) => ({
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: path.join(out, outName),
  minifySyntax: true,
  minifyWhitespace: true,
  // The per-pod scripts (cni, early): short names make a smaller source and code cache; error
  // classes that are matched by name spell their name out (lib/datastore/types.ts).
  minifyIdentifiers,
  keepNames: false,
  legalComments: 'none',
  define: { BRINDLE_VERSION: JSON.stringify(pkg.version) },
  // koffi is only ever loaded through process.dlopen of its .node asset (lib/native/addon.ts).
  external: ['koffi'],
  logLevel: 'warning',
});
await build({
  ...(mode === 'snapshot'
    ? { stdin: { contents: snapshotEntry, resolveDir: root, sourcefile: 'sea-snapshot-entry.js', loader: 'js' } }
    : { entryPoints: [entry] }),
  ...esbuildOptions('brindle.js'),
});
// The CNI-only bundle: a plugin start compiles (and runs the top level of) less than half the code.
if (mode === 'warmcache') await build({ entryPoints: [path.join(root, 'plugins/cni.ts')], ...esbuildOptions('cni.js', true) });
// The early script: starts a delegated IPAM plugin before the CNI bundle is compiled (lib/cni/early.ts).
if (mode === 'warmcache') await build({ entryPoints: [path.join(root, 'plugins/early.ts')], ...esbuildOptions('early.js', true) });

let seaMain = path.join(out, 'brindle.js');
const extraAssets = {};
if (mode === 'warmcache') {
  // The warm cache file's layout (loaderSource) is part of what a cache directory stands for.
  const hash = createHash('sha256').update(process.version).update('warm-v2');
  for (const name of ['brindle', 'cni', 'early']) {
    const bundle = fs.readFileSync(path.join(out, `${name}.js`), 'utf8');
    // The loader reads scripts as latin1 straight from the executable: they must be ASCII (esbuild's default charset).
    if (/[^\x00-\x7f]/.test(bundle)) throw new Error(`${name}.js is not ASCII`);
    // CommonJS wrapper, as Node's loader would add; the loader calls it with the SEA's require.
    const wrapped = `(function (exports, require, module, __filename, __dirname) {${bundle}\n})`;
    const bundleFile = path.join(out, `${name}.wrapped.js`);
    fs.writeFileSync(bundleFile, wrapped);
    hash.update(wrapped);
    // Build-time cache (top-level code only), made by this same node binary, which the
    // executable is a copy of: V8 accepts a cache only from the same version and flags.
    const cacheFile = path.join(out, `${name}.ccache`);
    execFileSync(process.execPath, ['-e', `const fs=require('fs');const s=new (require('vm').Script)(fs.readFileSync(${JSON.stringify(bundleFile)},'utf8'),{filename:${JSON.stringify(`${name}.js`)}});fs.writeFileSync(${JSON.stringify(cacheFile)},s.createCachedData())`], { stdio: 'inherit' });
    extraAssets[`${name}.js`] = bundleFile;
    extraAssets[`${name}.ccache`] = cacheFile;
  }
  // The node binary's version and both bundles: a V8 code cache only fits the V8 and source that made it.
  const bundleHash = hash.digest('hex').slice(0, 16);
  seaMain = path.join(out, 'sea-main.js');
  fs.writeFileSync(seaMain, loaderSource(bundleHash));
}

const addons = {
  koffi: require.resolve('@koromix/koffi-linux-x64/linux_x64/koffi.node'),
  better_sqlite3: require.resolve('better-sqlite3/build/Release/better_sqlite3.node'),
};
const assets = { ...extraAssets };
for (const [name, file] of Object.entries(addons)) {
  const hash = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const hashFile = path.join(out, `${name}.sha256`);
  fs.writeFileSync(hashFile, hash);
  assets[`${name}.node`] = file;
  assets[`${name}.sha256`] = hashFile;
}

/** The SEA blob for `withAssets`, injected into a copy of this node binary at `file`. */
function makeExecutable(file, withAssets) {
  const seaConfig = {
    main: seaMain,
    output: path.join(out, 'sea-prep.blob'),
    disableExperimentalSEAWarning: true,
    ...(mode === 'snapshot' ? { useSnapshot: true } : { useCodeCache: true }),
    assets: withAssets,
  };
  fs.writeFileSync(path.join(out, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
  execFileSync(process.execPath, ['--experimental-sea-config', path.join(out, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  fs.copyFileSync(process.execPath, file);
  fs.chmodSync(file, 0o755);
  execFileSync(process.execPath, [
    require.resolve('postject/dist/cli.js'), file, 'NODE_SEA_BLOB', path.join(out, 'sea-prep.blob'),
    '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' }); // LIEF warns about .note sections; errors still throw
}

/**
 * The trained warm code cache: real plugin ADDs (and DELs) with the executable just built, one
 * per IPAM flavour (Debian's host-local, brindle-ipam on an embedded store in a temporary
 * directory), in two network namespaces made here for it (per-run names, removed after), so
 * that even a node's first ADD finds every function it runs already compiled. Needs root, `ip`
 * and host-local; without them (or with BRINDLE_NO_TRAIN=1) the first ADD on a node trains
 * it instead. Returns the assets (name → file), or null.
 */
function trainWarmCache(file) {
  const hostLocal = ['/usr/lib/cni/host-local', '/opt/cni/bin/host-local'].find((f) => fs.existsSync(f));
  if (process.env.BRINDLE_NO_TRAIN || process.getuid?.() !== 0 || !hostLocal) return null;
  const work = fs.mkdtempSync(path.join(out, 'train-'));
  const tag = `bttrain${process.pid.toString(36)}`;
  const nodeNs = `${tag}n`, podNs = `${tag}p`;
  const ip = (...a) => execFileSync('ip', a, { stdio: 'ignore' });
  const made = [];
  try {
    for (const ns of [nodeNs, podNs]) { ip('netns', 'add', ns); made.push(ns); }
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(file, path.join(bin, 'brindle'));
    fs.symlinkSync(file, path.join(bin, 'brindle-ipam'));
    fs.symlinkSync(hostLocal, path.join(bin, 'host-local'));
    const call = (verb, conf, native, cid) => {
      const r = spawnSync('ip', ['netns', 'exec', nodeNs, path.join(bin, 'brindle')], {
        input: JSON.stringify(conf), encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL',
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: verb, CNI_CONTAINERID: cid, CNI_NETNS: `/var/run/netns/${podNs}`,
          CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: bin, BRINDLE_NATIVE_DIR: native,
          BRINDLE_STATE_DIR: path.join(work, 'state'), BRINDLE_RUN_DIR: path.join(work, 'run') },
      });
      if (r.status !== 0) throw new Error(`training ${verb}: ${r.stdout}${r.stderr}`);
    };
    const base = { cniVersion: '1.0.0', name: 'train', type: 'brindle', mtu: 1500, log_file_path: path.join(work, 'cni.log') };
    const flavours = [
      { ...base, ipam: { type: 'host-local', dataDir: path.join(work, 'ipam'), ranges: [[{ subnet: '10.251.0.0/24' }]] } },
      { ...base, nodename: 'train', embedded_path: path.join(work, 'brindle.db'), ipam: { type: 'brindle-ipam' } },
    ];
    const trained = {};
    for (const conf of flavours) {
      // A native dir per flavour: each cache holds what its own path compiles, no more.
      // Two pods: the first ADD on a node also makes what later ones find (the attachments
      // directory; with brindle-ipam the default pool and the node's block), so its cache is
      // dropped and the second, a steady-state ADD like every later one, makes the cache kept.
      const native = path.join(work, `native-${conf.ipam.type}`);
      call('ADD', conf, native, 'train1');
      call('DEL', conf, native, 'train1');
      for (const d of fs.readdirSync(native)) fs.rmSync(path.join(native, d, 'brindle.ccache'), { force: true });
      call('ADD', conf, native, 'train2');
      call('DEL', conf, native, 'train2');
      const dirs = fs.readdirSync(native).filter((d) => fs.existsSync(path.join(native, d, 'brindle.ccache')));
      if (dirs.length !== 1) throw new Error(`training ${conf.ipam.type} left ${dirs.length} warm caches`);
      const warm = path.join(out, `brindle@${conf.ipam.type}.warm`);
      fs.copyFileSync(path.join(native, dirs[0], 'brindle.ccache'), warm);
      trained[`brindle@${conf.ipam.type}.warm`] = warm;
    }
    return trained;
  } catch (err) {
    console.warn(`build: no trained code cache (${err.message.split('\n')[0]}); the first ADD on a node trains it`);
    return null;
  } finally {
    for (const ns of made) { try { ip('netns', 'del', ns); } catch { /* gone */ } }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const exe = path.join(dist, 'brindle');
const tmp = `${exe}.${process.pid}.tmp`;
makeExecutable(tmp, assets);
if (mode === 'warmcache') {
  const trained = trainWarmCache(tmp);
  // The same scripts and caches, with the trained ones added: V8 takes them as the same source.
  if (trained) makeExecutable(tmp, { ...assets, ...trained });
}
fs.renameSync(tmp, exe);
for (const f of fs.readdirSync(out)) fs.renameSync(path.join(out, f), path.join(finalOut, f));
fs.rmSync(out, { recursive: true, force: true });
for (const link of ['brindle-ipam', 'brindlectl']) {
  const p = path.join(dist, link);
  const t = `${p}.${process.pid}.tmp`;
  fs.rmSync(t, { force: true });
  fs.symlinkSync('brindle', t);
  fs.renameSync(t, p);
}
// The executable must run: a failed injection would leave a plain node binary behind.
if (process.env.BRINDLE_ENTRY) process.exit(0);
const v = execFileSync(exe, ['--version'], { encoding: 'utf8', env: { ...process.env, CNI_COMMAND: '' } }).trim();
if (!v.startsWith('brindle ')) throw new Error(`built executable answered "${v}" to --version`);
if (mode === 'warmcache') {
  // A code cache V8 refuses would silently cost a full compile on every start.
  const r = spawnSync(exe, ['--version'], { encoding: 'utf8', env: { ...process.env, CNI_COMMAND: '', BRINDLE_DEBUG_CCACHE: '1' } });
  if (!/brindle code cache build accepted/.test(r.stderr)) throw new Error(`built executable's code cache: ${r.stderr.trim() || 'no answer'}`);
  // The CNI bundle's, through a VERSION call with no warm cache around (a private native dir).
  const nativeDir = fs.mkdtempSync(path.join(finalOut, '.native-'));
  try {
    const c = spawnSync(exe, [], { input: '{"cniVersion":"1.1.0"}', encoding: 'utf8', env: { ...process.env, CNI_COMMAND: 'VERSION', BRINDLE_NATIVE_DIR: nativeDir, BRINDLE_DEBUG_CCACHE: '1' } });
    if (!/cni code cache (build|embedded \[[^\]]*\]) accepted/.test(c.stderr) || !/supportedVersions/.test(c.stdout)) throw new Error(`built executable's CNI bundle: ${c.stderr.trim() || c.stdout.trim() || 'no answer'}`);
  } finally {
    fs.rmSync(nativeDir, { recursive: true, force: true });
  }
}
console.log(`built ${path.relative(root, exe)} (${v}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
