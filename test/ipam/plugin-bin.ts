// How tests and the benchmark run brindle-ipam as a real process: the built single
// executable (dist/brindle-ipam) when it is a full build, else an esbuild bundle of the
// plugin's sources run by node (fast to start, unlike `npx tsx`).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

export interface PluginCommand { cmd: string; args: string[]; how: string }

let cached: PluginCommand | undefined;

/** The command that runs brindle-ipam (built binary preferred). */
export async function ipamPluginCommand(): Promise<PluginCommand> {
  if (cached) return cached;
  const dist = path.join(ROOT, 'dist', 'brindle-ipam');
  if (fs.existsSync(dist) && !process.env.BRINDLE_IPAM_FROM_SOURCE) {
    // A full build answers a command-less run with the plugin's about text.
    const r = spawnSync(dist, [], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 10000 });
    if (/brindle-ipam/.test(`${r.stdout}${r.stderr}`)) return (cached = { cmd: dist, args: [], how: 'dist/brindle-ipam (single executable)' });
  }
  const out = path.join(ROOT, 'build', 'test-ipam', 'brindle-ipam.js');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require('esbuild') as typeof import('esbuild');
  await esbuild.build({
    stdin: { contents: "require('./plugins/brindle-ipam/main').main();", resolveDir: ROOT, loader: 'ts' },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: out,
    external: ['koffi', 'better-sqlite3'], logLevel: 'error',
    // Backends not written yet stay external (a runtime require error if ever chosen).
    plugins: [{
      name: 'missing-backends',
      setup(b) {
        b.onResolve({ filter: /^\.\/(kubernetes|etcd|embedded)$/ }, (a) => {
          const base = path.join(a.resolveDir, a.path);
          return fs.existsSync(`${base}.ts`) || fs.existsSync(path.join(base, 'index.ts')) ? undefined : { path: a.path, external: true };
        });
      },
    }],
  });
  return (cached = { cmd: process.execPath, args: [out], how: 'esbuild bundle of plugins/brindle-ipam run by node (dist/brindle-ipam is not a full build)' });
}
