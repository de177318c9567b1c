// Real BGP peers for tests: BIRD 2 and GoBGP started inside a test's namespaces with a
// generated configuration, waited for, queried (birdc, gobgp -j) and stopped by PID; plus a
// small fabric (one bridge namespace, node namespaces on 10.99.0.0/24) to put them on.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Scope, sh, nsExec, nsSpawn, RUN_PREFIX } from './netns';

/** Polls `fn` until it returns a truthy value; rejects after `timeoutMs` naming `what`. */
export async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (err) { if ((err as { fatal?: boolean }).fatal) throw err; last = err; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

let seq = 0;

function fatal(msg: string): Error { return Object.assign(new Error(msg), { fatal: true }); }

export interface Fabric {
  /** The namespace holding the bridge. */
  fabric: string;
  /** Node namespaces; node i has address `addr(i)` on its `eth0`. */
  nodes: string[];
  addr(i: number): string;
  /** /var/run/netns path of node i (for Speaker's `netns` option). */
  path(i: number): string;
}

/** Creates a bridge namespace and `n` node namespaces with eth0 = 10.99.0.(i+1)/24 (or `subnet`). */
export function makeFabric(scope: Scope, n: number, subnet = '10.99.0'): Fabric {
  const fabric = scope.netns('f');
  sh('ip', ['-n', fabric, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', fabric, 'link', 'set', 'br0', 'up']);
  const nodes: string[] = [];
  for (let i = 0; i < n; i++) {
    const ns = scope.netns('b');
    const tmp = `${RUN_PREFIX}p${seq++}`.slice(0, 15);
    sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', tmp, 'netns', fabric]);
    sh('ip', ['-n', fabric, 'link', 'set', tmp, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    nodes.push(ns);
  }
  return { fabric, nodes, addr: (i) => `${subnet}.${i + 1}`, path: (i) => `/var/run/netns/${nodes[i]}` };
}

function tmpDir(scope: Scope, tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${RUN_PREFIX}-${tag}-`));
  scope.defer(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// ---- BIRD ------------------------------------------------------------------------------

export interface BirdNeighbor {
  name?: string;
  address: string;
  asn: number;
  password?: string;
  port?: number;
  /** This neighbor is BIRD's route-reflector client. */
  rrClient?: boolean;
  gracefulRestart?: boolean;
  passive?: boolean;
  /** Export filter (BIRD syntax); default: our static routes only (`where source = RTS_STATIC`). */
  exportFilter?: string;
  holdTime?: number;
}

export interface BirdConfigOptions {
  routerId: string;
  asn: number;
  neighbors: BirdNeighbor[];
  /** Prefixes announced as static blackholes. */
  staticRoutes?: string[];
  /** Program BGP routes into the kernel (default true). */
  kernel?: boolean;
  /** BGP listen port (default 179). */
  listenPort?: number;
}

/** A BIRD 2 configuration for a node: device, direct, kernel, static blackholes, one `bgp` protocol per neighbor. */
export function birdConfig(o: BirdConfigOptions): string {
  const lines = [`log stderr all;`, `router id ${o.routerId};`, `protocol device { scan time 10; }`, `protocol direct { ipv4; interface "eth0"; }`];
  if (o.kernel !== false) lines.push(`protocol kernel { ipv4 { import none; export where source ~ [ RTS_BGP, RTS_STATIC ]; }; merge paths on; }`);
  if (o.staticRoutes?.length) lines.push(`protocol static static_pool { ipv4; ${o.staticRoutes.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  o.neighbors.forEach((n, i) => {
    const ibgp = n.asn === o.asn;
    lines.push(`protocol bgp ${n.name ?? `peer${i}`} {`,
      `  local as ${o.asn};`,
      `  neighbor ${n.address}${n.port ? ` port ${n.port}` : ''} as ${n.asn};`,
      ...(o.listenPort ? [`  local port ${o.listenPort};`] : []),
      ...(n.password ? [`  password "${n.password}";`] : []),
      ...(ibgp ? ['  direct;'] : []),
      ...(n.rrClient ? ['  rr client;'] : []),
      ...(n.gracefulRestart ? ['  graceful restart on;'] : []),
      ...(n.passive ? ['  passive on;'] : []),
      `  hold time ${n.holdTime ?? 90};`,
      '  connect retry time 2;',
      '  error wait time 1, 5;',
      '  ipv4 {',
      '    import all;',
      `    export ${n.exportFilter ?? 'where source = RTS_STATIC'};`,
      ...(ibgp && !n.rrClient ? ['    next hop self;'] : []),
      '  };',
      '}');
  });
  return lines.join('\n') + '\n';
}

export interface BirdProtocol { name: string; proto: string; table: string; state: string; since: string; info: string }

/** A running BIRD inside a namespace. */
export class Bird {
  proc!: ChildProcess;
  readonly ctl: string;
  readonly confFile: string;
  private constructor(readonly scope: Scope, readonly ns: string, readonly dir: string, config: string) {
    this.ctl = path.join(dir, 'bird.ctl');
    this.confFile = path.join(dir, 'bird.conf');
    fs.writeFileSync(this.confFile, config);
  }

  /** Starts BIRD in `ns` with `config` and waits until it answers on its control socket. */
  static async start(scope: Scope, ns: string, config: string): Promise<Bird> {
    const b = new Bird(scope, ns, tmpDir(scope, 'bird'), config);
    await b.launch([]);
    return b;
  }

  get pid(): number | undefined { return this.proc.pid; }

  private async launch(extra: string[]) {
    const log = fs.openSync(path.join(this.dir, 'bird.log'), 'a');
    this.proc = this.scope.track(nsSpawn(this.ns, 'bird', ['-f', '-c', this.confFile, '-s', this.ctl, '-P', path.join(this.dir, 'bird.pid'), ...extra], { stdio: ['ignore', log, log] }));
    fs.closeSync(log);
    await waitFor(() => { if (this.proc.exitCode !== null) throw fatal(`bird exited: ${this.log().slice(-2000)}`); return this.birdc('show', 'status').includes('Daemon is up'); }, 10_000, 'bird to start');
  }

  /** birdc output (the banner line removed). */
  birdc(...args: string[]): string {
    return sh('birdc', ['-s', this.ctl, ...args]).split('\n').filter((l) => !l.startsWith('BIRD ') || !l.includes('ready')).join('\n');
  }

  log(): string { try { return fs.readFileSync(path.join(this.dir, 'bird.log'), 'utf8'); } catch { return ''; } }

  protocols(): BirdProtocol[] {
    const out: BirdProtocol[] = [];
    for (const line of this.birdc('show', 'protocols').split('\n').slice(1)) {
      const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+(?:\s+\d\d:\d\d:\d\d(?:\.\d+)?)?)\s*(.*)$/.exec(line.trim());
      if (m && m[1] !== 'Name') out.push({ name: m[1], proto: m[2], table: m[3], state: m[4], since: m[5], info: m[6].trim() });
    }
    return out;
  }

  protocol(name: string): BirdProtocol | undefined { return this.protocols().find((p) => p.name === name); }

  /** Waits until protocol `name` reports `info` (default Established). */
  async waitProtocol(name: string, info = 'Established', timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.protocol(name)?.info.startsWith(info), timeoutMs, `bird protocol ${name} ${info} (now ${JSON.stringify(this.protocol(name))})`);
  }

  /** Number of routes in master4 (`show route count`). */
  routeCount(table = 'master4'): number {
    const m = /(\d+) of (\d+) routes/.exec(this.birdc('show', 'route', 'count', 'table', table));
    return m ? Number(m[1]) : 0;
  }

  /** `show route all [for prefix]` text. */
  routes(prefix?: string): string { return this.birdc('show', 'route', 'all', ...(prefix ? ['for', prefix] : [])); }

  /** `show route protocol <name>` prefixes. */
  routesFrom(protocolName: string): string[] {
    return [...this.birdc('show', 'route', 'protocol', protocolName).matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+|[0-9a-f:]+\/\d+)\s/gm)].map((m) => m[1]);
  }

  /** Graceful restart (BIRD 2): `birdc graceful restart`, then start again with -R (recovery). */
  async gracefulRestart(): Promise<void> {
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    try { this.birdc('graceful', 'restart'); } catch { /* the daemon exits while answering */ }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.proc.exitCode === null) { this.proc.kill('SIGKILL'); await exited; }
    await this.launch(['-R']);
  }

  /**
   * Kills BIRD by PID with `signal` (default SIGKILL: no NOTIFICATION, the kernel closes its
   * sockets) and starts it again on the same configuration file (which the caller may have
   * rewritten), with `-R` (graceful-restart recovery) unless `recovery` is false.
   */
  async restart(opts: { signal?: NodeJS.Signals; recovery?: boolean; downMs?: number } = {}): Promise<void> {
    await this.stop(opts.signal ?? 'SIGKILL');
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    await this.launch(opts.recovery === false ? [] : ['-R']);
  }

  /** Stops BIRD (SIGTERM by PID) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill(signal);
    await exited;
  }
}

// ---- GoBGP -------------------------------------------------------------------------------

export interface GobgpNeighbor {
  address: string; asn: number; password?: string; rrClient?: boolean; clusterId?: string; port?: number; passive?: boolean; gracefulRestart?: boolean;
  /** Graceful restart time GoBGP advertises (seconds, default 120; with gracefulRestart). */
  restartTime?: number;
}

export interface GobgpConfigOptions { routerId: string; asn: number; neighbors: GobgpNeighbor[]; port?: number; localAddress?: string }

/** A gobgpd TOML configuration. */
export function gobgpConfig(o: GobgpConfigOptions): string {
  const lines = ['[global.config]', `  as = ${o.asn}`, `  router-id = "${o.routerId}"`, `  port = ${o.port ?? 179}`];
  if (o.localAddress) lines.push(`  local-address-list = ["${o.localAddress}"]`);
  for (const n of o.neighbors) {
    lines.push('', '[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${n.address}"`, `    peer-as = ${n.asn}`);
    if (n.password) lines.push(`    auth-password = "${n.password}"`);
    lines.push('  [neighbors.timers.config]', '    connect-retry = 2', '    hold-time = 90', '    keepalive-interval = 30');
    if (n.port) lines.push('  [neighbors.transport.config]', `    remote-port = ${n.port}`);
    if (n.passive) { if (!n.port) lines.push('  [neighbors.transport.config]'); lines.push('    passive-mode = true'); }
    if (n.rrClient) lines.push('  [neighbors.route-reflector.config]', '    route-reflector-client = true', `    route-reflector-cluster-id = "${n.clusterId ?? o.routerId}"`);
    if (n.gracefulRestart) lines.push('  [neighbors.graceful-restart.config]', '    enabled = true', `    restart-time = ${n.restartTime ?? 120}`);
    lines.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', '      afi-safi-name = "ipv4-unicast"');
    if (n.gracefulRestart) lines.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    lines.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', '      afi-safi-name = "ipv6-unicast"');
  }
  return lines.join('\n') + '\n';
}

/** A running gobgpd inside a namespace; its API listens on 127.0.0.1:50051 of that namespace. */
export class Gobgp {
  proc!: ChildProcess;
  private constructor(readonly scope: Scope, readonly ns: string, readonly dir: string) {}

  /** The configuration file (rewrite it before restart() to come back with another one). */
  get confFile(): string { return path.join(this.dir, 'gobgpd.toml'); }

  static async start(scope: Scope, ns: string, config: string): Promise<Gobgp> {
    const g = new Gobgp(scope, ns, tmpDir(scope, 'gobgp'));
    fs.writeFileSync(g.confFile, config);
    await g.launch([]);
    return g;
  }

  private async launch(extra: string[]): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'gobgpd.log'), 'a');
    this.proc = this.scope.track(nsSpawn(this.ns, 'gobgpd', ['-f', this.confFile, '--api-hosts', '127.0.0.1:50051', '--pprof-disable', '-l', 'info', ...extra], { stdio: ['ignore', log, log] }));
    fs.closeSync(log);
    const p = this.proc;
    await waitFor(() => { if (p.exitCode !== null) throw fatal(`gobgpd exited: ${this.log().slice(-2000)}`); this.gobgp('global'); return true; }, 10_000, 'gobgpd to start', 200);
  }

  /**
   * Kills gobgpd by PID with `signal` (default SIGKILL: no NOTIFICATION, so GR-capable peers
   * start their helper procedure; SIGTERM makes gobgpd send a Cease first) and starts it again
   * on its configuration file, with `-r` (restart state in the GR capability) unless
   * `recovery` is false; resolves once the new gobgpd answers its API.
   */
  async restart(opts: { signal?: NodeJS.Signals; recovery?: boolean; downMs?: number } = {}): Promise<void> {
    await this.kill(opts.signal ?? 'SIGKILL');
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    await this.launch(opts.recovery === false ? [] : ['-r']);
  }

  /** Sends `signal` to gobgpd by PID and waits for it to exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill(signal);
    await exited;
  }

  get pid(): number | undefined { return this.proc.pid; }
  log(): string { try { return fs.readFileSync(path.join(this.dir, 'gobgpd.log'), 'utf8'); } catch { return ''; } }

  gobgp(...args: string[]): string { return nsExec(this.ns, 'gobgp', ['-u', '127.0.0.1', ...args]); }
  gobgpJson<T = any>(...args: string[]): T { const out = this.gobgp(...args, '-j').trim(); return (out ? JSON.parse(out) : null) as T; }

  /** `gobgp neighbor -j`. */
  neighbors(): any[] { return this.gobgpJson<any[]>('neighbor') ?? []; }

  /** Session state of one neighbor ('established', 'active', …). */
  neighborState(address: string): string | undefined {
    const n = this.neighbors().find((x) => x.conf?.neighbor_address === address || x.state?.neighbor_address === address);
    const st = n?.state?.session_state;
    return typeof st === 'number' ? ['unknown', 'idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'][st] : st;
  }

  async waitEstablished(address: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.neighborState(address) === 'established', timeoutMs, `gobgp neighbor ${address} established (now ${this.neighborState(address)})`);
  }

  /** `gobgp global rib -j [-a ipv6]`: prefix → paths. */
  rib(family: 4 | 6 = 4): Record<string, any[]> { return this.gobgpJson('global', 'rib', '-a', family === 6 ? 'ipv6' : 'ipv4') ?? {}; }

  /** Adj-RIB-In from one neighbor. */
  adjIn(address: string, family: 4 | 6 = 4): Record<string, any[]> { return this.gobgpJson('neighbor', address, 'adj-in', '-a', family === 6 ? 'ipv6' : 'ipv4') ?? {}; }

  addRoute(prefix: string, opts: { nextHop?: string; communities?: string[] } = {}): void {
    const fam = prefix.includes(':') ? 'ipv6' : 'ipv4';
    this.gobgp('global', 'rib', 'add', prefix, ...(opts.nextHop ? ['nexthop', opts.nextHop] : []), ...(opts.communities?.length ? ['community', opts.communities.join(',')] : []), '-a', fam);
  }

  delRoute(prefix: string): void { this.gobgp('global', 'rib', 'del', prefix, '-a', prefix.includes(':') ? 'ipv6' : 'ipv4'); }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    await exited;
  }
}

/** TcpExt counters of a namespace's kernel (/proc/net/netstat read from inside it): TCPMD5Failure… */
export function tcpExtCounters(ns: string): Record<string, number> {
  const lines = nsExec(ns, 'cat', ['/proc/net/netstat']).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const keys = lines[0].split(/\s+/).slice(1), vals = lines[1].split(/\s+/).slice(1);
  return Object.fromEntries(keys.map((k, i) => [k, Number(vals[i])]));
}

/** Attribute of a gobgp -j path by type code (1 ORIGIN, 3 NEXT_HOP, 9 ORIGINATOR_ID, 10 CLUSTER_LIST…). */
export function gobgpAttr(p: any, type: number): any { return (p.attrs ?? []).find((a: any) => a.type === type); }
