// A virtual Brindle cluster on one machine, entirely inside network namespaces: a fabric
// namespace with a bridge, one namespace per node on 198.18.0.0/24 (eth0 on the bridge),
// a `brindle agent` per node, and pods as namespaces wired by the real CNI plugin invoked
// the way a runtime does (CNI_* environment + network config on stdin). Everything made is
// recorded in the state file first (state.ts), so a crash never leaks it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { demoDir, procStart, readState, writeState, type DemoState } from './state';

export const REPO = path.resolve(__dirname, '..', '..');
export const FABRIC_GW = '198.18.0.1';

export interface NodeInfo {
  index: number;
  name: string;
  ns: string;
  ip: string;
  env: Record<string, string>;
  agentPid?: number;
  agentStart?: string;
}

export interface PodInfo { name: string; node: string; ns: string; ip: string; containerId: string; pools?: string[] }

export interface ClusterOptions { nodes: number; datastore: 'embedded' | 'etcd'; log?: (s: string) => void }

/** The built single executable (`npm run build`); the demo runs what users run. */
export function brindleBin(): string {
  const bin = process.env.BRINDLE_BIN ?? path.join(REPO, 'dist', 'brindle');
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run npm run build first`);
  return bin;
}

function ip(args: string[]): string { return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); }

/** Runs a command in a namespace with an environment; resolves with stdout, rejects with a readable error. */
export function nsRun(ns: string, cmd: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('ip', ['netns', 'exec', ns, cmd, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env },
      timeout: opts.timeoutMs ?? 30000, maxBuffer: 8 << 20, encoding: 'utf8',
    }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input); else child.stdin?.end();
  });
}

export class Cluster {
  readonly nodes: NodeInfo[] = [];
  readonly pods: PodInfo[] = [];
  readonly fabric: string;
  readonly dir: string;
  private readonly state: DemoState;
  private readonly log: (s: string) => void;
  etcdEndpoint?: string;

  constructor(readonly opts: ClusterOptions) {
    const prefix = `bd${randomBytes(2).toString('hex')}`;
    this.dir = path.join(demoDir(), prefix);
    this.fabric = `${prefix}-fabric`;
    this.log = opts.log ?? (() => undefined);
    this.state = { prefix, dir: this.dir, createdAt: new Date().toISOString(), datastore: opts.datastore, namespaces: [], processes: [] };
    if (readState()) throw new Error('a previous demo run is still recorded: tear it down first');
    writeState(this.state);
    fs.mkdirSync(this.dir, { recursive: true });
  }

  get prefix(): string { return this.state.prefix; }

  private addNs(name: string): void {
    this.state.namespaces.push(name);
    writeState(this.state);
    ip(['netns', 'add', name]);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private record(pid: number, what: string): string {
    const start = procStart(pid) ?? '';
    this.state.processes.push({ pid, start, what });
    writeState(this.state);
    return start;
  }

  /** Saves how to reach the cluster (for `--keep` and `down`). */
  saveInfo(info: Record<string, unknown>): void { this.state.info = info; writeState(this.state); }

  /** Settings every node shares: the datastore. */
  datastoreEnv(): Record<string, string> {
    return this.opts.datastore === 'etcd'
      ? { DATASTORE_TYPE: 'etcd', ETCD_ENDPOINTS: this.etcdEndpoint! }
      : { DATASTORE_TYPE: 'embedded', BRINDLE_DB: path.join(this.dir, 'brindle.db') };
  }

  /** Fabric namespace + bridge, node namespaces cabled to it, forwarding on. */
  buildNetwork(): void {
    this.addNs(this.fabric);
    ip(['-n', this.fabric, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', this.fabric, 'addr', 'add', `${FABRIC_GW}/24`, 'dev', 'br0']);
    ip(['-n', this.fabric, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= this.opts.nodes; i++) {
      const name = `node-${i}`;
      const ns = `${this.prefix}-n${i}`;
      this.addNs(ns);
      const addr = `198.18.0.${10 + i}`;
      ip(['-n', this.fabric, 'link', 'add', `n${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', this.fabric, 'link', 'set', `n${i}`, 'master', 'br0', 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      // A node has a default route (here to the fabric bridge, which routes nowhere): proxy ARP
      // for the pods' gateway 169.254.1.1 only answers when the node has a route to it.
      ip(['-n', ns, 'route', 'add', 'default', 'via', FABRIC_GW, 'dev', 'eth0']);
      // A node routes for its pods: what a Kubernetes node has (kube-proxy/the CNI set it).
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const nodeDir = path.join(this.dir, name);
      fs.mkdirSync(path.join(nodeDir, 'run'), { recursive: true });
      fs.mkdirSync(path.join(nodeDir, 'state'), { recursive: true });
      this.nodes.push({
        index: i, name, ns, ip: addr,
        env: { NODENAME: name, BRINDLE_RUN_DIR: path.join(nodeDir, 'run'), BRINDLE_STATE_DIR: path.join(nodeDir, 'state') },
      });
    }
  }

  /** etcd inside the fabric namespace on 198.18.0.1:2379 (reachable from every node). */
  async startEtcd(): Promise<void> {
    const data = path.join(this.dir, 'etcd');
    const logFile = path.join(this.dir, 'etcd.log');
    const fd = fs.openSync(logFile, 'a');
    const url = `http://${FABRIC_GW}:2379`;
    const child = spawn('ip', ['netns', 'exec', this.fabric, process.env.BRINDLE_ETCD_BIN ?? '/usr/bin/etcd',
      '--name', 'demo', '--data-dir', data,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', `http://${FABRIC_GW}:2380`, '--initial-advertise-peer-urls', `http://${FABRIC_GW}:2380`,
      '--initial-cluster', `demo=http://${FABRIC_GW}:2380`, '--log-outputs', 'stderr'],
    { detached: true, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    child.unref();
    this.record(child.pid!, 'etcd');
    this.etcdEndpoint = url;
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      // Readiness from etcd's own log (3.4 zap: "serving client traffic"; capnslog: "ready to serve").
      const text = fs.readFileSync(logFile, 'utf8');
      if (/serving client traffic|ready to serve client requests/.test(text)) return;
      if (child.exitCode !== null) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(`etcd did not start (see ${logFile})`);
  }

  /** Starts `brindle agent` in a node's namespace, detached (so --keep can leave it running). */
  startAgent(n: NodeInfo, extraArgs: string[] = []): void {
    const logFile = path.join(this.dir, n.name, 'agent.log');
    const fd = fs.openSync(logFile, 'a');
    const child = spawn('ip', ['netns', 'exec', n.ns, brindleBin(), 'agent', '--node-ip', n.ip, ...extraArgs], {
      detached: true, stdio: ['ignore', fd, fd],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...this.datastoreEnv(), ...n.env },
    });
    fs.closeSync(fd);
    child.unref();
    // `ip netns exec` execs the command: the PID is the agent's.
    n.agentPid = child.pid!;
    n.agentStart = this.record(child.pid!, `agent ${n.name}`);
  }

  /** Runs brindlectl inside a node's namespace with that node's settings. */
  ctl(n: NodeInfo, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const bin = path.join(path.dirname(brindleBin()), 'brindlectl');
    const useLink = fs.existsSync(bin);
    return nsRun(n.ns, useLink ? bin : brindleBin(), useLink ? args : ['ctl', ...args], { env: { ...this.datastoreEnv(), ...n.env }, input });
  }

  /** The per-plugin network config a runtime hands the plugin (from conf/examples/10-brindle-demo.conflist). */
  netConf(n: NodeInfo, pools?: string[]): Record<string, unknown> {
    const list = JSON.parse(fs.readFileSync(path.join(REPO, 'conf', 'examples', '10-brindle-demo.conflist'), 'utf8'));
    const plugin = { ...list.plugins[0] };
    const conf: Record<string, unknown> = {
      cniVersion: list.cniVersion, name: list.name, ...plugin,
      nodename: n.name,
      log_file_path: path.join(this.dir, n.name, 'cni.log'),
      datastore_type: this.opts.datastore,
    };
    if (this.opts.datastore === 'etcd') conf.etcd_endpoints = this.etcdEndpoint;
    else conf.embedded_path = path.join(this.dir, 'brindle.db');
    conf.ipam = { ...(plugin.ipam ?? {}), ...(pools ? { ipv4_pools: pools } : {}) };
    return conf;
  }

  /** Makes a pod: a namespace, then CNI ADD through the real plugin run inside the node's namespace. */
  async addPod(n: NodeInfo, name: string, pools?: string[]): Promise<PodInfo> {
    const ns = `${this.prefix}-${name}`;
    this.addNs(ns);
    const containerId = randomBytes(32).toString('hex');
    const env = {
      ...n.env,
      CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0',
      CNI_PATH: path.dirname(brindleBin()),
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    };
    const r = await nsRun(n.ns, brindleBin(), [], { env, input: JSON.stringify(this.netConf(n, pools)) });
    let result: any;
    try { result = JSON.parse(r.stdout); } catch { /* reported below */ }
    if (r.code !== 0 || !result?.ips?.length) {
      const why = result?.msg ? `${result.msg}${result.details ? ` (${result.details})` : ''} [code ${result.code}]` : (r.stderr || r.stdout).trim();
      throw new Error(`CNI ADD of pod ${name} on ${n.name} failed: ${why}`);
    }
    const pod: PodInfo = { name, node: n.name, ns, ip: String(result.ips[0].address).split('/')[0], containerId, pools };
    this.pods.push(pod);
    return pod;
  }

  /** Routes a node learned over BGP: `ip -n <node> route show proto 177`. */
  learnedRoutes(n: NodeInfo): string {
    return ip(['-n', n.ns, 'route', 'show', 'proto', '177']);
  }
}

export interface PingResult { from: string; to: string; ok: boolean; rttMs?: number }

/** Every pod pings every other pod once (1 s timeout), a few at a time. */
export async function pingMatrix(pods: PodInfo[], parallel = 8): Promise<PingResult[]> {
  const jobs: { a: PodInfo; b: PodInfo }[] = [];
  for (const a of pods) for (const b of pods) if (a !== b) jobs.push({ a, b });
  const results: PingResult[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const k = next++;
      const { a, b } = jobs[k];
      const r = await nsRun(a.ns, 'ping', ['-n', '-c', '1', '-W', '1', b.ip], { timeoutMs: 5000 });
      const m = /time[=<]([0-9.]+) ?ms/.exec(r.stdout);
      results[k] = { from: a.name, to: b.name, ok: r.code === 0, rttMs: r.code === 0 && m ? Number(m[1]) : undefined };
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, worker));
  return results;
}

/** The matrix as a table: rows ping from, columns ping to; ✓ with the RTT or ✗. */
export function renderMatrix(pods: PodInfo[], results: PingResult[]): string {
  const cell = (a: PodInfo, b: PodInfo): string => {
    if (a === b) return '·';
    const r = results.find((x) => x.from === a.name && x.to === b.name);
    return r?.ok ? `✓ ${r.rttMs !== undefined ? r.rttMs.toFixed(2) : '?'}ms` : '✗';
  };
  const head = ['from \\ to', ...pods.map((p) => p.name)];
  const rows = pods.map((a) => [`${a.name} ${a.ip}`, ...pods.map((b) => cell(a, b))]);
  const w = head.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...r[i]].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c + ' '.repeat(w[i] - [...c].length)).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
