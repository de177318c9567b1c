// Builds the single executable dist/brindle (+ links brindle-ipam, brindlectl):
// esbuild bundles plugins/main.ts into one CommonJS file; Node's SEA (single executable
// application) turns it into a blob with a V8 code cache and the native addons as assets;
// postject injects the blob into a copy of this machine's own node binary. Offline.
//
// Why not `pkg --sea`: it wraps the same Node SEA steps but fetches a Node binary of its own
// and cannot embed assets; Node's own SEA flow with postject builds from the local Node.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'package.json'));
// BRINDLE_BUILD_DIR / BRINDLE_DIST_DIR: build elsewhere (experiments, benchmarks of variants)
// without replacing the dist/brindle that tests are running.
const out = path.resolve(process.env.BRINDLE_BUILD_DIR ?? path.join(root, 'build', 'sea'));
const dist = path.resolve(process.env.BRINDLE_DIST_DIR ?? path.join(root, 'dist'));
fs.mkdirSync(out, { recursive: true });
fs.mkdirSync(dist, { recursive: true });
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

// BRINDLE_SEA_MODE: 'codecache' (V8 code cache of the bundle) or 'snapshot' (a V8 start-up
// snapshot with the CNI plugin's modules already evaluated; the entry's main runs after
// deserialization, so nothing environment-dependent may run at module top level).
const mode = process.env.BRINDLE_SEA_MODE ?? 'codecache';
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

const t0 = Date.now();
await build({
  ...(mode === 'snapshot'
    ? { stdin: { contents: snapshotEntry, resolveDir: root, sourcefile: 'sea-snapshot-entry.js', loader: 'js' } }
    : { entryPoints: [entry] }),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: path.join(out, 'brindle.js'),
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: false,
  legalComments: 'none',
  define: { BRINDLE_VERSION: JSON.stringify(pkg.version) },
  // koffi is only ever loaded through process.dlopen of its .node asset (lib/native/addon.ts).
  external: ['koffi'],
  logLevel: 'warning',
});

const addons = {
  koffi: require.resolve('@koromix/koffi-linux-x64/linux_x64/koffi.node'),
  better_sqlite3: require.resolve('better-sqlite3/build/Release/better_sqlite3.node'),
};
const assets = {};
for (const [name, file] of Object.entries(addons)) {
  const hash = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const hashFile = path.join(out, `${name}.sha256`);
  fs.writeFileSync(hashFile, hash);
  assets[`${name}.node`] = file;
  assets[`${name}.sha256`] = hashFile;
}

const seaConfig = {
  main: path.join(out, 'brindle.js'),
  output: path.join(out, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  ...(mode === 'snapshot' ? { useSnapshot: true } : { useCodeCache: true }),
  assets,
};
fs.writeFileSync(path.join(out, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', path.join(out, 'sea-config.json')], { stdio: 'inherit' });

const exe = path.join(dist, 'brindle');
const tmp = `${exe}.tmp`;
fs.copyFileSync(process.execPath, tmp);
fs.chmodSync(tmp, 0o755);
execFileSync(process.execPath, [
  require.resolve('postject/dist/cli.js'), tmp, 'NODE_SEA_BLOB', path.join(out, 'sea-prep.blob'),
  '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
], { stdio: ['ignore', 'ignore', 'inherit'] });
fs.renameSync(tmp, exe);
for (const link of ['brindle-ipam', 'brindlectl']) {
  const p = path.join(dist, link);
  fs.rmSync(p, { force: true });
  fs.symlinkSync('brindle', p);
}
// The executable must run: a failed injection would leave a plain node binary behind.
if (process.env.BRINDLE_ENTRY) process.exit(0);
const v = execFileSync(exe, ['--version'], { encoding: 'utf8', env: { ...process.env, CNI_COMMAND: '' } }).trim();
if (!v.startsWith('brindle ')) throw new Error(`built executable answered "${v}" to --version`);
console.log(`built ${path.relative(root, exe)} (${v}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
