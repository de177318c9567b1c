// The demo cluster's state file (<demo dir>/state.json): every namespace and process the demo
// makes is written here *before* it is made, so `down` — or the next run after a crash —
// removes exactly what an earlier run left, and nothing else.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where demo state lives; tests point it elsewhere so they never touch a user's demo. */
export function demoDir(): string { return process.env.BRINDLE_DEMO_DIR ?? '/var/run/brindle-demo'; }

export interface ProcRecord { pid: number; start: string; what: string }

export interface DemoState {
  prefix: string;
  /** Per-run directory: database, etcd data, per-node run/state dirs, logs. */
  dir: string;
  createdAt: string;
  datastore: 'embedded' | 'etcd';
  namespaces: string[];
  processes: ProcRecord[];
  /** Settings for poking at the cluster afterwards (written once the cluster is up). */
  info?: Record<string, unknown>;
}

function stateFile(): string { return path.join(demoDir(), 'state.json'); }

export function readState(): DemoState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as DemoState;
  } catch {
    return undefined;
  }
}

export function writeState(s: DemoState): void {
  fs.mkdirSync(demoDir(), { recursive: true });
  const tmp = `${stateFile()}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2));
  fs.renameSync(tmp, stateFile());
}

/** Start time of a process (field 22 of /proc/PID/stat), to tell it from a recycled PID. */
export function procStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True when the recorded process is still the same process. */
export function alive(p: ProcRecord): boolean { return procStart(p.pid) === p.start; }

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

function netnsExists(name: string): boolean { return fs.existsSync(`/var/run/netns/${name}`); }

/**
 * Removes everything the state file names: processes (SIGTERM, then SIGKILL), any process
 * still inside its namespaces, the namespaces, the run directory, the state file. Returns
 * what it removed.
 */
export async function teardown(log: (s: string) => void = () => undefined): Promise<{ processes: number; namespaces: number } | undefined> {
  const s = readState();
  if (!s) return undefined;
  let procs = 0;
  const live = s.processes.filter(alive);
  for (const p of live) { try { process.kill(p.pid, 'SIGTERM'); procs++; } catch { /* gone */ } }
  for (let i = 0; i < 50 && live.some(alive); i++) await sleep(100);
  for (const p of live.filter(alive)) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
  let nss = 0;
  // Pods first, then nodes, then the fabric: the reverse of creation.
  for (const ns of [...s.namespaces].reverse()) {
    if (!netnsExists(ns)) continue;
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); procs++; } catch { /* gone */ } }
    } catch { /* namespace going away */ }
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); nss++; } catch { /* already gone */ }
  }
  if (s.dir && s.dir.startsWith(demoDir() + '/')) {
    // The logs of the last run stay readable after teardown (replaced by the next run's).
    const keep = path.join(demoDir(), 'last-run-logs');
    fs.rmSync(keep, { recursive: true, force: true });
    try {
      for (const node of fs.readdirSync(s.dir)) {
        for (const f of ['agent.log', 'cni.log']) {
          const src = path.join(s.dir, node, f);
          if (!fs.existsSync(src)) continue;
          fs.mkdirSync(path.join(keep, node), { recursive: true });
          fs.copyFileSync(src, path.join(keep, node, f));
        }
      }
      if (fs.existsSync(path.join(s.dir, 'etcd.log'))) { fs.mkdirSync(keep, { recursive: true }); fs.copyFileSync(path.join(s.dir, 'etcd.log'), path.join(keep, 'etcd.log')); }
    } catch { /* best effort */ }
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
  fs.rmSync(stateFile(), { force: true });
  log(`removed ${nss} namespace${nss === 1 ? '' : 's'} and stopped ${procs} process${procs === 1 ? '' : 'es'} of run ${s.prefix}`);
  return { processes: procs, namespaces: nss };
}
