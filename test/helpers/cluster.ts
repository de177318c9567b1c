// A virtual cluster in network namespaces for agent tests, the demo and benches: a fabric
// namespace with two bridges (198.18.0.0/24 and 198.18.1.0/24) joined by a router namespace,
// N node namespaces attached by veth, a per-node environment (NODENAME, BRINDLE_RUN_DIR,
// BRINDLE_STATE_DIR under a temp dir; one shared embedded DB or etcd endpoints), agents
// started and stopped by PID, pods made by running the real CNI plugin (+ brindle-ipam) inside
// the node's namespace, and a ping matrix. Nothing touches the root namespace.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Scope, sh, ipJson, nsExec } from './netns';
import { builtAfterSources } from './dist';
import type { Datastore, IPPoolSpec, Resource } from '../../lib/datastore/types';

export const ROOT = path.resolve(__dirname, '../..');


let command: { cmd: string; args: string[] } | undefined;
/**
 * How to run the single executable: the built dist/brindle when present and not older than the
 * sources (BRINDLE_FROM_SOURCE=1 forces the sources), else the sources through tsx.
 */
export function brindleCommand(): { cmd: string; args: string[] } {
  if (command) return command;
  const dist = path.join(ROOT, 'dist/brindle');
  let useDist = !process.env.BRINDLE_FROM_SOURCE && fs.existsSync(dist);
  if (useDist && !process.env.BRINDLE_USE_DIST) useDist = builtAfterSources(ROOT, dist);
  command = useDist ? { cmd: dist, args: [] } : { cmd: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'plugins/main.ts')] };
  return command;
}

export interface ClusterNode {
  name: string;
  ns: string;
  /** Node address "198.18.x.y" and its subnet index (0 or 1). */
  ip: string;
  subnet: 0 | 1;
  /** IPv6 node address (canonical text) when the cluster is dual-stack (`ipv6: true`). */
  ip6?: string;
  env: NodeJS.ProcessEnv;
  runDir: string;
  stateDir: string;
  agent?: ChildProcess;
  agentLog: string;
  pods: Pod[];
}

export interface Pod { name: string; ns: string; ip: string; node: string; containerId: string; /** The pod's IPv6 address when it got one. */ ip6?: string }

export interface ClusterOptions {
  nodes: number;
  /** Subnet of each node (default all 0). */
  subnets?: (0 | 1)[];
  /** Pools to create (default one 10.244.0.0/16, blockSize 26, no encapsulation). */
  pools?: { name: string; spec: Partial<IPPoolSpec> & { cidr: string } }[];
  etcdEndpoints?: string[];
  /** Extra flags for every agent. */
  agentArgs?: string[];
  /**
   * Dual-stack fabric: the router and every node also get an IPv6 address (ipv6For of the
   * IPv4 one, /64, no DAD) with a default route via the router, and agents get --node-ip6.
   */
  ipv6?: boolean;
}

export const SUBNETS = ['198.18.0', '198.18.1'] as const;

/**
 * The IPv6 twin of a fabric address "198.18.s.h": "fd00:198:18::h" (s = 0) or
 * "fd00:198:18:1::h" (s = 1), in canonical text (as the kernel and sockets print it).
 */
export function ipv6For(ip4: string): string {
  const [, , s, h] = ip4.split('.');
  return s === '0' ? `fd00:198:18::${h}` : `fd00:198:18:${s}::${h}`;
}

/** Adds an IPv6 address without duplicate address detection (usable at once). */
export function addAddr6(ns: string, ifname: string, cidr: string): void {
  sh('ip', ['-n', ns, '-6', 'addr', 'add', cidr, 'dev', ifname, 'nodad']);
}

export class Cluster {
  readonly fabric: string;
  readonly router: string;
  readonly nodes: ClusterNode[] = [];
  readonly tmp: string;
  readonly dbPath: string;
  private nextHost = [11, 11];
  private podCount = 0;
  private store?: Datastore;

  private constructor(readonly scope: Scope, readonly opts: ClusterOptions) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-cluster-'));
    this.dbPath = path.join(this.tmp, 'brindle.db');
    scope.defer(() => fs.rmSync(this.tmp, { recursive: true, force: true }));
    this.fabric = scope.netns('fab');
    this.router = scope.netns('rtr');
    sh('ip', ['-n', this.fabric, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.fabric, 'link', 'add', 'br1', 'type', 'bridge']);
    sh('ip', ['-n', this.fabric, 'link', 'set', 'br0', 'up']);
    sh('ip', ['-n', this.fabric, 'link', 'set', 'br1', 'up']);
    for (const s of [0, 1] as const) this.attach(this.router, `eth${s}`, `${SUBNETS[s]}.1/24`, s);
    nsExec(this.router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    if (opts.ipv6) {
      for (const s of [0, 1] as const) addAddr6(this.router, `eth${s}`, `${ipv6For(`${SUBNETS[s]}.1`)}/64`);
      nsExec(this.router, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    }
  }

  /** Builds the fabric, router and node namespaces, and seeds pools. */
  static async create(scope: Scope, opts: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(scope, opts);
    for (let i = 0; i < opts.nodes; i++) c.addNode(`node${i + 1}`, opts.subnets?.[i] ?? 0);
    const ds = await c.ds();
    for (const p of opts.pools ?? [{ name: 'default-ipv4-ippool', spec: { cidr: '10.244.0.0/16' } }]) {
      await ds.create({ kind: 'IPPool', metadata: { name: p.name }, spec: {
        blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()', disabled: false, ...p.spec,
      } });
    }
    return c;
  }

  /** Attaches a namespace to subnet `s` with interface `ifname` and address `cidr`. */
  attach(ns: string, ifname: string, cidr: string | undefined, s: 0 | 1): void {
    const tmp = `v${Math.random().toString(16).slice(2, 10)}`;
    sh('ip', ['-n', this.fabric, 'link', 'add', tmp, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    sh('ip', ['-n', this.fabric, 'link', 'set', tmp, 'master', `br${s}`]);
    sh('ip', ['-n', this.fabric, 'link', 'set', tmp, 'up']);
    if (cidr) sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', ifname]);
    sh('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  }

  /** Allocates the next free host address on subnet `s`. */
  nextIp(s: 0 | 1): string { return `${SUBNETS[s]}.${this.nextHost[s]++}`; }

  private addNode(name: string, subnet: 0 | 1): ClusterNode {
    const ns = this.scope.netns('nd');
    const ip = this.nextIp(subnet);
    this.attach(ns, 'eth0', `${ip}/24`, subnet);
    sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${SUBNETS[subnet]}.1`]);
    nsExec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    let ip6: string | undefined;
    if (this.opts.ipv6) {
      ip6 = ipv6For(ip);
      addAddr6(ns, 'eth0', `${ip6}/64`);
      sh('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', ipv6For(`${SUBNETS[subnet]}.1`)]);
    }
    const runDir = path.join(this.tmp, name, 'run');
    const stateDir = path.join(this.tmp, name, 'state');
    fs.mkdirSync(runDir, { recursive: true });
    fs.mkdirSync(stateDir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODENAME: name,
      BRINDLE_RUN_DIR: runDir,
      BRINDLE_STATE_DIR: stateDir,
      ...(this.opts.etcdEndpoints
        ? { DATASTORE_TYPE: 'etcd', ETCD_ENDPOINTS: this.opts.etcdEndpoints.join(',') }
        : { DATASTORE_TYPE: 'embedded', BRINDLE_DB: this.dbPath }),
    };
    const node: ClusterNode = { name, ns, ip, ...(ip6 ? { ip6 } : {}), subnet, env, runDir, stateDir, agentLog: path.join(this.tmp, name, 'agent.log'), pods: [] };
    this.nodes.push(node);
    return node;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`node ${name}: not in the cluster`);
    return n;
  }

  /** The cluster's datastore, opened in this process (for seeding and checks). */
  async ds(): Promise<Datastore> {
    if (this.store) return this.store;
    const { openDatastore } = require('../../lib/datastore/open') as typeof import('../../lib/datastore/open');
    this.store = openDatastore(this.opts.etcdEndpoints
      ? { type: 'etcd', etcdEndpoints: this.opts.etcdEndpoints, timeoutMs: 5000 }
      : { type: 'embedded', embeddedPath: this.dbPath, timeoutMs: 5000 });
    const s = this.store;
    this.scope.defer(() => s.close());
    return s;
  }

  /** Starts `brindle agent` inside the node's namespace; stdout/stderr go to node.agentLog. */
  startAgent(n: ClusterNode, extra: string[] = []): ChildProcess {
    const { cmd, args } = brindleCommand();
    const out = fs.openSync(n.agentLog, 'a');
    const p = spawn('ip', ['netns', 'exec', n.ns, cmd, ...args, 'agent', '--node-name', n.name, '--node-ip', n.ip,
      ...(n.ip6 ? ['--node-ip6', n.ip6] : []), ...(this.opts.agentArgs ?? []), ...extra], { env: { ...n.env, BRINDLE_LOG_LEVEL: process.env.BRINDLE_LOG_LEVEL ?? 'info' }, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.scope.track(p);
    n.agent = p;
    return p;
  }

  /** Stops a node's agent by PID with `signal` and waits for it to exit. */
  async stopAgent(n: ClusterNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = n.agent;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, 8000);
      p.once('exit', () => { clearTimeout(t); resolve(); });
      p.kill(signal);
    });
    n.agent = undefined;
  }

  /** PID of the agent process itself (the child of `ip netns exec`, which execs it). */
  agentPid(n: ClusterNode): number | undefined { return n.agent?.pid; }

  /** The network config the runtime would hand the plugin on this node. */
  netconf(n: ClusterNode, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'brindle', nodename: n.name,
      ...(this.opts.etcdEndpoints ? { datastore_type: 'etcd', etcd_endpoints: this.opts.etcdEndpoints.join(',') } : { datastore_type: 'embedded', embedded_path: this.dbPath }),
      log_file_path: path.join(this.tmp, n.name, 'cni.log'), log_level: 'info',
      ipam: { type: 'brindle-ipam' },
      ...extra,
    };
  }

  /** Runs the CNI plugin (ADD) for a new pod namespace inside node `n`; returns the pod. */
  async addPod(n: ClusterNode, extraConf: Record<string, unknown> = {}): Promise<Pod> {
    const name = `pod${this.podCount++}`;
    const ns = this.scope.netns('pd');
    const containerId = `${name}-${Math.random().toString(16).slice(2, 14)}`;
    const out = await this.runPlugin(n, 'ADD', ns, containerId, name, this.netconf(n, extraConf));
    const res = JSON.parse(out);
    const addrs: string[] = (res.ips ?? []).map((x: any) => String(x?.address ?? '').split('/')[0]).filter(Boolean);
    const ip = addrs.find((a) => !a.includes(':')) ?? addrs[0];
    if (!ip) throw new Error(`pod ${name} on ${n.name}: no address in result ${out}`);
    const ip6 = addrs.find((a) => a.includes(':'));
    const pod: Pod = { name, ns, ip, node: n.name, containerId, ...(ip6 ? { ip6 } : {}) };
    n.pods.push(pod);
    return pod;
  }

  /** Runs the CNI plugin DEL for a pod. */
  async delPod(p: Pod): Promise<void> {
    const n = this.node(p.node);
    await this.runPlugin(n, 'DEL', p.ns, p.containerId, p.name, this.netconf(n));
    n.pods = n.pods.filter((x) => x !== p);
  }

  private runPlugin(n: ClusterNode, verb: string, podNs: string, containerId: string, podName: string, conf: Record<string, unknown>): Promise<string> {
    const { cmd, args } = brindleCommand();
    const env = {
      ...n.env,
      CNI_COMMAND: verb, CNI_CONTAINERID: containerId, CNI_NETNS: `/var/run/netns/${podNs}`, CNI_IFNAME: 'eth0',
      CNI_PATH: path.dirname(cmd), CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName}`,
    };
    return new Promise((resolve, reject) => {
      const child = execFile('ip', ['netns', 'exec', n.ns, cmd, ...args], { env, timeout: 30000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`cni ${verb} ${podName} on ${n.name}: ${err.message} ${stdout} ${stderr}`));
        else resolve(stdout);
      });
      child.stdin?.end(JSON.stringify(conf));
    });
  }

  /** True when `from` (a pod or node namespace) can ping `ip` (one packet, 1 s). */
  ping(fromNs: string, ip: string, timeoutS = 1): Promise<boolean> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', fromNs, 'ping', '-c', '1', '-W', String(timeoutS), '-q', ip], (err) => resolve(!err));
    });
  }

  /** Every pod pings every other pod (family 6: their IPv6 addresses); returns the pairs that failed ("a->b"). */
  async pingMatrix(family: 4 | 6 = 4): Promise<string[]> {
    const pods = this.nodes.flatMap((n) => n.pods);
    const failed: string[] = [];
    const dst = (p: Pod) => (family === 6 ? p.ip6 : p.ip);
    await Promise.all(pods.flatMap((a) => pods.filter((b) => b !== a).map(async (b) => {
      const ip = dst(b);
      if (!ip || !(await this.ping(a.ns, ip))) failed.push(`${a.name}@${a.node}->${b.name}@${b.node}(${ip ?? 'no address'})`);
    })));
    return failed.sort();
  }

  /** Kernel routes of protocol 177 in a namespace (family 6: the IPv6 table). */
  brindleRoutes(ns: string, family: 4 | 6 = 4): any[] { return ipJson(ns, [...(family === 6 ? ['-6'] : []), 'route', 'show', 'proto', '177']); }

  /** Waits until `fn` is truthy (polling every `everyMs`), or throws after `ms` with `what`. */
  async waitFor<T>(what: string, fn: () => T | Promise<T>, ms = 30000, everyMs = 200): Promise<T> {
    const end = Date.now() + ms;
    let last: unknown;
    for (;;) {
      try { const v = await fn(); if (v) return v; } catch (err) { last = err; }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** The last lines of a node's agent log (for failure messages). */
  agentLogTail(n: ClusterNode, lines = 30): string {
    try { return fs.readFileSync(n.agentLog, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }

  /** Applies a change to a resource with retries on conflict (get → edit → update). */
  async edit<K extends 'BGPConfiguration' | 'Node' | 'IPPool' | 'BGPPeer'>(kind: K, name: string, fn: (r: Resource<K> | undefined) => Resource<K>): Promise<void> {
    const ds = await this.ds();
    for (let i = 0; i < 20; i++) {
      let cur: Resource<K> | undefined;
      try { cur = await ds.get(kind, name); } catch { cur = undefined; }
      const next = fn(cur ? structuredClone(cur) : undefined);
      try {
        if (cur) await ds.update(next); else await ds.create(next);
        return;
      } catch (err) {
        if (i === 19) throw err;
      }
    }
  }
}
