// CNI test harness: builds the libcni driver (test/cnitool, Go in GOPATH mode against Debian's
// golang-github-appc-cni-dev) once per source version, lays out a CNI_PATH holding the plugin
// under test as `brindle` beside Debian's reference plugins, and runs ADD/CHECK/DEL through
// the driver (as a runtime would) or the plugin directly (env + stdin) for bad-input cases.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Scope } from './netns';
import { ipJson, sh } from './netns';
import { builtAfterSources } from './dist';

export const REPO = path.resolve(__dirname, '..', '..');
const TOOL_DIR = path.join(REPO, 'test', 'cnitool');
const DEBIAN_PLUGINS = '/usr/lib/cni';

/** Path of the built driver, (re)built when main.go changed. */
export function cnitoolPath(): string {
  const src = fs.readFileSync(path.join(TOOL_DIR, 'main.go'));
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  const bin = path.join(TOOL_DIR, 'bin', `cnitool-${hash}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  execFileSync('go', ['build', '-o', tmp, '.'], {
    cwd: TOOL_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '',
      GOCACHE: process.env.GOCACHE ?? path.join(os.tmpdir(), 'brindle-gocache'), CGO_ENABLED: '0',
    },
  });
  fs.renameSync(tmp, bin);
  return bin;
}


/**
 * The plugin under test: `dist/brindle` (or $BRINDLE_BIN) when built and not older than the
 * sources in lib/ and plugins/, else a wrapper running the sources with tsx.
 * BRINDLE_TEST_SOURCES=1 forces the sources.
 */
export function pluginBinary(): { path: string; built: boolean } {
  const dist = process.env.BRINDLE_BIN ?? path.join(REPO, 'dist', 'brindle');
  if (process.env.BRINDLE_TEST_SOURCES !== '1' && fs.existsSync(dist)) {
    const fresh = process.env.BRINDLE_BIN !== undefined || builtAfterSources(REPO, dist);
    if (fresh) return { path: dist, built: true };
  }
  const wrapper = path.join(os.tmpdir(), `brindle-src-wrapper-${process.getuid?.() ?? 0}.sh`);
  const body = `#!/bin/sh\nexec ${path.join(REPO, 'node_modules', '.bin', 'tsx')} ${path.join(REPO, 'plugins', 'main.ts')} "$@"\n`;
  if (!fs.existsSync(wrapper) || fs.readFileSync(wrapper, 'utf8') !== body) {
    const tmp = `${wrapper}.${process.pid}`;
    fs.writeFileSync(tmp, body, { mode: 0o755 });
    fs.renameSync(tmp, wrapper);
  }
  return { path: wrapper, built: false };
}

/** Directories one test's CNI runs use; removed by the scope. */
export interface CniWorld {
  root: string;
  cniPath: string;
  confDir: string;
  cacheDir: string;
  stateDir: string;
  ipamDir: string;
  logFile: string;
  plugin: string;
}

/** Makes a world: CNI_PATH with `brindle` (and `brindle-ipam`) links + Debian plugins, conf/cache/state dirs. */
export function cniWorld(scope: Scope): CniWorld {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-cni-'));
  scope.defer(() => fs.rmSync(root, { recursive: true, force: true }));
  const w: CniWorld = {
    root,
    cniPath: path.join(root, 'bin'),
    confDir: path.join(root, 'net.d'),
    cacheDir: path.join(root, 'cache'),
    stateDir: path.join(root, 'state'),
    ipamDir: path.join(root, 'ipam'),
    logFile: path.join(root, 'cni.log'),
    plugin: pluginBinary().path,
  };
  for (const d of [w.cniPath, w.confDir, w.cacheDir, w.stateDir, w.ipamDir]) fs.mkdirSync(d, { recursive: true });
  for (const f of fs.readdirSync(DEBIAN_PLUGINS)) fs.symlinkSync(path.join(DEBIAN_PLUGINS, f), path.join(w.cniPath, f));
  fs.symlinkSync(w.plugin, path.join(w.cniPath, 'brindle'));
  if (pluginBinary().built) fs.symlinkSync(w.plugin, path.join(w.cniPath, 'brindle-ipam'));
  return w;
}

/** A host-local IPAM section keeping its state inside the world. */
export function hostLocal(w: CniWorld, ranges: string[][], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'host-local', dataDir: w.ipamDir, ranges: ranges.map((set) => set.map((subnet) => ({ subnet }))), ...extra };
}

/** The brindle plugin's own config (one plugin of a list), logging into the world. */
export function brindleConf(w: CniWorld, ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'brindle', log_file_path: w.logFile, log_level: 'debug', ipam, ...extra };
}

/** Writes `<name>.conflist` into the world's config dir. */
export function writeConflist(w: CniWorld, name: string, cniVersion: string, plugins: Record<string, unknown>[], extra: Record<string, unknown> = {}): void {
  fs.writeFileSync(path.join(w.confDir, `${name}.conflist`), JSON.stringify({ cniVersion, name, plugins, ...extra }, null, 2));
}

export interface RunResult { status: number; stdout: string; stderr: string; json?: any }

function parse(status: number | null, stdout: string, stderr: string): RunResult {
  let json: any;
  try { json = stdout.trim() ? JSON.parse(stdout) : undefined; } catch { /* not JSON */ }
  return { status: status ?? -1, stdout, stderr, json };
}

export interface ToolOpts {
  ifname?: string;
  containerId?: string;
  args?: string;
  capArgs?: Record<string, unknown>;
  valid?: { containerID: string; ifname: string }[];
  env?: NodeJS.ProcessEnv;
}

function toolEnv(w: CniWorld, o: ToolOpts): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, NETCONFPATH: w.confDir, CNI_PATH: w.cniPath, CNI_CACHE_DIR: w.cacheDir,
    BRINDLE_STATE_DIR: w.stateDir, ...o.env,
  };
  if (o.ifname) env.CNI_IFNAME = o.ifname;
  if (o.containerId) env.CNI_CONTAINERID = o.containerId;
  if (o.args) env.CNI_ARGS = o.args;
  if (o.capArgs) env.CAP_ARGS = JSON.stringify(o.capArgs);
  if (o.valid) env.CNI_VALID_ATTACHMENTS = JSON.stringify(o.valid);
  return env;
}

/** Runs the libcni driver inside the node namespace: `cnitool <verb> <net> <podNs>`. */
export function cnitool(w: CniWorld, nodeNs: string, verb: string, net: string, podNs: string, o: ToolOpts = {}): RunResult {
  const args = ['netns', 'exec', nodeNs, cnitoolPath(), verb, net, podNs ? `/var/run/netns/${podNs}` : ''];
  try {
    const out = execFileSync('ip', args, { env: toolEnv(w, o), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return parse(0, out, '');
  } catch (err: any) {
    return parse(err.status ?? -1, String(err.stdout ?? ''), String(err.stderr ?? ''));
  }
}

/** Like cnitool, without blocking the event loop (for concurrent runs). */
export function cnitoolAsync(w: CniWorld, nodeNs: string, verb: string, net: string, podNs: string, o: ToolOpts = {}): Promise<RunResult> {
  const args = ['netns', 'exec', nodeNs, cnitoolPath(), verb, net, podNs ? `/var/run/netns/${podNs}` : ''];
  return new Promise((resolve) => {
    const p = spawn('ip', args, { env: toolEnv(w, o), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve(parse(code, out, err)));
  });
}

/** The environment libcni sends: every CNI_* present (empty when not applicable). */
export function cniEnv(w: CniWorld, verb: string, o: { containerId?: string; netns?: string; ifname?: string; args?: string } = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    BRINDLE_STATE_DIR: w.stateDir,
    CNI_COMMAND: verb,
    CNI_CONTAINERID: o.containerId ?? '',
    CNI_NETNS: o.netns ?? '',
    CNI_IFNAME: o.ifname ?? '',
    CNI_ARGS: o.args ?? '',
    CNI_PATH: w.cniPath,
  };
}

/** Runs the plugin directly inside the node namespace with this env and stdin. */
export function runDirect(nodeNs: string, plugin: string, env: NodeJS.ProcessEnv, stdin: string): RunResult {
  try {
    const out = execFileSync('ip', ['netns', 'exec', nodeNs, plugin], { env, input: stdin, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    return parse(0, out, '');
  } catch (err: any) {
    return parse(err.status ?? -1, String(err.stdout ?? ''), String(err.stderr ?? ''));
  }
}

/** A node namespace: uplink `eth0` with 198.18.0.<n>/24 (+ fd00:198:18::<n>/64) and a default route, forwarding on. */
export function nodeNamespace(scope: Scope, n = 1, mtu = 1500): string {
  const ns = scope.netns('node');
  // No dummy driver here: the uplink is one end of a veth pair kept inside the node namespace.
  sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'uplink0', 'mtu', String(mtu)]);
  sh('ip', ['-n', ns, 'link', 'set', 'uplink0', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', `198.18.0.${n}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'addr', 'add', `fd00:198:18::${n}/64`, 'dev', 'eth0', 'nodad']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', '198.18.0.254', 'dev', 'eth0']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.ip_forward=1']);
  return ns;
}

/** Links in a namespace (names only). */
export function linkNames(ns: string): string[] {
  return ipJson<{ ifname: string }[]>(ns, ['link', 'show']).map((l) => l.ifname);
}

/** Global addresses in a namespace, as "a/len". */
export function globalAddrs(ns: string): string[] {
  const links = ipJson<{ addr_info?: { local: string; prefixlen: number; scope: string }[] }[]>(ns, ['addr', 'show']);
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`));
}
