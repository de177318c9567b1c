// `npm run demo [-- --nodes N --datastore etcd --keep --json]` / `npm run demo -- down`:
// brings up a virtual Brindle cluster inside network namespaces and walks through the story:
// BGP sessions, per-node blocks, learned routes, a pod-to-pod ping matrix, then live changes
// (mesh off + a route reflector, a new AS number, a new pool) with the matrix after each,
// and no agent restarted. Everything it makes is recorded in /var/run/brindle-demo/state.json.
import * as path from 'node:path';
import { Cluster, brindleBin, pingMatrix, renderMatrix, type NodeInfo, type PingResult } from './cluster/cluster';
import { alive, demoDir, teardown } from './cluster/state';
import { queryAgent } from '../lib/ctl/node-status';
import type { AgentStatus } from '../lib/agent/status';

interface Opts { nodes: number; datastore: 'embedded' | 'etcd'; keep: boolean; json: boolean; down: boolean }

const HELP = `Usage: npm run demo [-- OPTIONS]      bring up the virtual cluster and run the story
       npm run demo -- down              remove everything a demo run left behind

Options:
  --nodes N               number of nodes (default 3, at most 200)
  --datastore TYPE        embedded (default) or etcd (started inside the fabric namespace)
  --keep                  leave the cluster up and print how to poke at it
  --json                  machine-readable progress on stdout (one JSON object per line)
`;

function parse(argv: string[]): Opts {
  const o: Opts = { nodes: 3, datastore: 'embedded', keep: false, json: false, down: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => { const v = argv[++i]; if (v === undefined) fail(`${a} needs a value`); return v; };
    if (a === 'down') o.down = true;
    else if (a === 'up') { /* default */ } else if (a === '--nodes' || a.startsWith('--nodes=')) {
      const v = a.includes('=') ? a.split('=')[1] : val();
      o.nodes = Number(v);
      if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 200) fail(`--nodes must be between 2 and 200, got "${v}"`);
    } else if (a === '--datastore' || a.startsWith('--datastore=')) {
      const v = a.includes('=') ? a.split('=')[1] : val();
      if (v !== 'embedded' && v !== 'etcd') fail(`--datastore must be embedded or etcd, got "${v}"`);
      o.datastore = v;
    } else if (a === '--keep') o.keep = true;
    else if (a === '--json') o.json = true;
    else if (a === '-h' || a === '--help') { process.stdout.write(HELP); process.exit(0); } else fail(`unknown argument "${a}" (see --help)`);
  }
  return o;
}

function fail(msg: string): never {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(2);
}

let jsonMode = false;
const t0 = Date.now();
/** Human progress: stdout normally, stderr in --json mode (stdout is then JSON only). */
function say(s = ''): void { (jsonMode ? process.stderr : process.stdout).write(s + '\n'); }
function emit(ev: Record<string, unknown>): void { if (jsonMode) process.stdout.write(JSON.stringify({ t: Date.now() - t0, ...ev }) + '\n'); }
function step(id: string, title: string): void {
  say(`\n\x1b[1m== ${title}\x1b[0m`);
  emit({ event: 'step', id, title });
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until every node's agent reports the expected number of Established sessions. */
async function waitSessions(c: Cluster, expect: (n: NodeInfo) => number, opts: { asn?: number; timeoutMs?: number } = {}): Promise<Map<string, AgentStatus>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 90000);
  let last = new Map<string, AgentStatus>();
  let why = '';
  for (;;) {
    last = new Map();
    why = '';
    for (const n of c.nodes) {
      try {
        const s = await queryAgent(path.join(n.env.BRINDLE_RUN_DIR, 'agent.sock'), 2000);
        last.set(n.name, s);
        const est = s.peers.filter((p) => p.state === 'Established').length;
        if (est !== expect(n) || s.peers.length !== expect(n)) why ||= `${n.name}: ${est}/${expect(n)} sessions Established (${s.peers.length} peers)`;
        if (opts.asn !== undefined && s.asn !== opts.asn) why ||= `${n.name}: AS ${s.asn}, want ${opts.asn}`;
      } catch (err) {
        why ||= `${n.name}: ${(err as Error).message}`;
      }
    }
    if (!why) return last;
    if (Date.now() > deadline) throw new Error(`BGP sessions did not settle: ${why}`);
    await sleep(300);
  }
}

/** Pings until every pair answers (routes converge within seconds) or the deadline passes. */
async function converge(c: Cluster, phase: string, timeoutMs = 45000): Promise<boolean> {
  const start = Date.now();
  let results: PingResult[] = [];
  for (;;) {
    results = await pingMatrix(c.pods);
    if (results.every((r) => r.ok) || Date.now() - start > timeoutMs) break;
    await sleep(500);
  }
  const ok = results.every((r) => r.ok);
  const ms = Date.now() - start;
  say(renderMatrix(c.pods, results));
  say(ok ? `all ${results.length} pod pairs reachable (converged in ${(ms / 1000).toFixed(1)} s)` : `${results.filter((r) => !r.ok).length} of ${results.length} pod pairs unreachable after ${(ms / 1000).toFixed(1)} s`);
  emit({ event: 'matrix', phase, allOk: ok, convergedMs: ms, pods: c.pods.map((p) => ({ name: p.name, node: p.node, ip: p.ip })), results });
  return ok;
}

async function showNodeStatus(c: Cluster, phase: string): Promise<void> {
  for (const n of c.nodes) {
    const r = await c.ctl(n, ['node', 'status']);
    say(`-- brindlectl node status  (on ${n.name}, ${n.ip})`);
    say((r.stdout + r.stderr).trimEnd());
    const j = await c.ctl(n, ['node', 'status', '-o', 'json']);
    let status: unknown;
    try { status = JSON.parse(j.stdout); } catch { status = { error: j.stderr.trim() }; }
    emit({ event: 'nodeStatus', phase, node: n.name, ip: n.ip, exitCode: r.code, status });
  }
}

async function ctlOrThrow(c: Cluster, n: NodeInfo, args: string[], input?: string, show = true): Promise<string> {
  const r = await c.ctl(n, args, input);
  if (show) say(`$ brindlectl ${args.join(' ')}${input ? ' <<EOF\n' + input.trimEnd() + '\nEOF' : ''}\n${(r.stdout + r.stderr).trimEnd()}`);
  emit({ event: 'ctl', args, exitCode: r.code, stdout: r.stdout, stderr: r.stderr });
  if (r.code !== 0) throw new Error(`brindlectl ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

function showRoutes(c: Cluster): void {
  for (const n of c.nodes) {
    const routes = c.learnedRoutes(n).trimEnd();
    say(`-- ip -n ${n.ns} route show proto 177   (${n.name})`);
    say(routes || '(none)');
    emit({ event: 'routes', node: n.name, routes: routes.split('\n').filter(Boolean) });
  }
}

const POOL = `apiVersion: brindle.dev/v1
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 10.244.0.0/16
  blockSize: 26
  natOutgoing: false
  nodeSelector: all()
`;

const RR = `apiVersion: brindle.dev/v1
kind: Node
metadata:
  name: node-1
  labels:
    route-reflector: "true"
spec:
  bgp:
    routeReflectorClusterID: 224.0.0.1
---
apiVersion: brindle.dev/v1
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
`;

const POOL2 = `apiVersion: brindle.dev/v1
kind: IPPool
metadata:
  name: extra-pool
spec:
  cidr: 10.245.0.0/16
  blockSize: 26
`;

async function run(o: Opts): Promise<number> {
  step('cleanup', 'Cleaning up any previous run');
  const prev = await teardown(say);
  if (!prev) say('nothing left from a previous run');

  const c = new Cluster({ nodes: o.nodes, datastore: o.datastore, log: say });
  const cleanupOnSignal = (): void => { say('\ninterrupted: tearing down'); void teardown(say).finally(() => process.exit(130)); };
  process.once('SIGINT', cleanupOnSignal);
  process.once('SIGTERM', cleanupOnSignal);
  let ok = true;
  try {
    step('network', `Building ${o.nodes} nodes in network namespaces (run ${c.prefix})`);
    brindleBin();
    c.buildNetwork();
    say(`fabric ${c.fabric}: bridge br0 ${'198.18.0.1/24'}`);
    for (const n of c.nodes) say(`node ${n.name}: namespace ${n.ns}, eth0 ${n.ip}/24`);
    emit({ event: 'network', prefix: c.prefix, fabric: c.fabric, nodes: c.nodes.map((n) => ({ name: n.name, ns: n.ns, ip: n.ip })) });

    if (o.datastore === 'etcd') {
      step('etcd', 'Starting etcd inside the fabric namespace');
      await c.startEtcd();
      say(`etcd at ${c.etcdEndpoint}`);
    } else say(`datastore: embedded (${c.datastoreEnv().BRINDLE_DB})`);

    step('pool', 'Creating the default IP pool');
    await ctlOrThrow(c, c.nodes[0], ['apply', '-f', '-'], POOL);

    step('agents', 'Starting a brindle agent on every node');
    for (const n of c.nodes) { c.startAgent(n); say(`${n.name}: brindle agent pid ${n.agentPid}`); }
    emit({ event: 'agents', pids: Object.fromEntries(c.nodes.map((n) => [n.name, n.agentPid])) });
    say('waiting for the node-to-node mesh to come up ...');
    await waitSessions(c, () => o.nodes - 1);
    say('all sessions Established');

    step('pods', 'Creating two pods per node through the CNI plugin');
    await Promise.all(c.nodes.map(async (n) => {
      for (let j = 1; j <= 2; j++) {
        const p = await c.addPod(n, `pod-${n.index}-${j}`);
        say(`${p.name} on ${n.name}: ${p.ip}`);
      }
    }));
    c.pods.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    emit({ event: 'pods', pods: c.pods.map((p) => ({ name: p.name, node: p.node, ip: p.ip, ns: p.ns })) });

    step('status-mesh', 'BGP sessions (full mesh)');
    await showNodeStatus(c, 'mesh');
    step('blocks', 'Blocks each node owns');
    await ctlOrThrow(c, c.nodes[0], ['ipam', 'show', '--show-blocks']);
    step('matrix-mesh', 'Pod-to-pod reachability (full mesh)');
    ok = (await converge(c, 'mesh')) && ok;
    step('routes', 'Routes each node learned over BGP');
    showRoutes(c);

    step('rr', 'Live: node-1 becomes a route reflector, the node-to-node mesh goes off');
    await ctlOrThrow(c, c.nodes[0], ['apply', '-f', '-'], RR);
    await ctlOrThrow(c, c.nodes[0], ['config', 'set', 'node-to-node-mesh', 'off']);
    await waitSessions(c, (n) => (n.index === 1 ? o.nodes - 1 : 1));
    await showNodeStatus(c, 'rr');
    step('matrix-rr', 'Pod-to-pod reachability (route reflector)');
    ok = (await converge(c, 'rr')) && ok;
    showRoutes(c);

    step('as', 'Live: the cluster moves to AS 64513');
    await ctlOrThrow(c, c.nodes[0], ['config', 'set', 'as', '64513']);
    await waitSessions(c, (n) => (n.index === 1 ? o.nodes - 1 : 1), { asn: 64513 });
    await showNodeStatus(c, 'as');
    step('matrix-as', 'Pod-to-pod reachability (AS 64513)');
    ok = (await converge(c, 'as')) && ok;

    step('pool2', 'Live: a second pool, and a pod from it');
    await ctlOrThrow(c, c.nodes[0], ['apply', '-f', '-'], POOL2);
    const target = c.nodes[1 % c.nodes.length];
    const p = await c.addPod(target, `pod-${target.index}-x`, ['10.245.0.0/16']);
    say(`${p.name} on ${target.name}: ${p.ip} (from extra-pool)`);
    emit({ event: 'pods', pods: c.pods.map((x) => ({ name: x.name, node: x.node, ip: x.ip, ns: x.ns })) });
    await ctlOrThrow(c, c.nodes[0], ['ipam', 'show', '--show-blocks']);
    step('matrix-pool2', 'Pod-to-pod reachability (two pools)');
    ok = (await converge(c, 'pool2')) && ok;
    showRoutes(c);

    step('agents-check', 'No agent was restarted');
    const restarted = c.nodes.filter((n) => !alive({ pid: n.agentPid!, start: n.agentStart!, what: '' }));
    say(restarted.length ? `restarted or gone: ${restarted.map((n) => n.name).join(', ')}` : `all ${c.nodes.length} agents kept their PIDs: ${c.nodes.map((n) => n.agentPid).join(', ')}`);
    emit({ event: 'agentsCheck', restarted: restarted.map((n) => n.name), pids: Object.fromEntries(c.nodes.map((n) => [n.name, n.agentPid])) });
    if (restarted.length) ok = false;

    await ctlOrThrow(c, c.nodes[0], ['ipam', 'check']);
  } catch (err) {
    ok = false;
    say(`\ndemo failed: ${(err as Error).message}`);
    emit({ event: 'error', message: (err as Error).message });
    say(`logs: ${o.keep ? c.dir : path.join(demoDir(), 'last-run-logs')}/<node>/{agent,cni}.log`);
  }

  if (o.keep) {
    const n = c.nodes[0];
    const env = { ...c.datastoreEnv(), ...n.env };
    const envText = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
    const info = { prefix: c.prefix, fabric: c.fabric, nodes: c.nodes.map((x) => ({ name: x.name, ns: x.ns, ip: x.ip, env: { ...c.datastoreEnv(), ...x.env } })), pods: c.pods };
    c.saveInfo(info);
    step('keep', 'The cluster stays up');
    say(`Poke at it:
  ip netns list | grep ${c.prefix}
  ip netns exec ${n.ns} ip route show proto 177
  ip netns exec ${c.pods[0]?.ns ?? `${c.prefix}-pod-1-1`} ping -c1 ${c.pods[c.pods.length - 1]?.ip ?? '10.244.0.1'}
  ip netns exec ${n.ns} env ${envText} ${path.join(path.dirname(brindleBin()), 'brindlectl')} node status
  env ${Object.entries(c.datastoreEnv()).map(([k, v]) => `${k}=${v}`).join(' ')} ${o.datastore === 'etcd' ? `ip netns exec ${n.ns} ` : ''}${path.join(path.dirname(brindleBin()), 'brindlectl')} ipam show --show-blocks
  logs: ${c.dir}/<node>/agent.log, cni.log
Remove it all with: npm run demo -- down`);
    emit({ event: 'kept', ...info });
  } else {
    step('down', 'Tearing down');
    await teardown(say);
  }
  say(ok ? '\ndemo: all checks passed' : '\ndemo: some checks failed');
  emit({ event: 'summary', ok });
  return ok ? 0 : 1;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  jsonMode = o.json;
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root to create network namespaces: run it as root (sudo npm run demo)\n');
    process.exit(1);
  }
  if (o.down) {
    const r = await teardown(say);
    if (!r) say(`nothing to remove (no ${path.join(demoDir(), 'state.json')})`);
    emit({ event: 'down', removed: r ?? null });
    process.exit(0);
  }
  try { brindleBin(); } catch (err) { process.stderr.write(`demo: ${(err as Error).message}\n`); process.exit(1); }
  process.exit(await run(o));
}

void main().catch((err) => {
  process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
