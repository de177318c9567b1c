// Throwaway network namespaces for tests: a per-run name prefix, creation through
// `ip netns add`, and removal of every namespace and process a test made, pass or fail.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Per-process run prefix: "bt" + 4 hex chars; every namespace name starts with it. */
export const RUN_PREFIX = process.env.BRINDLE_TEST_PREFIX ?? `bt${randomBytes(2).toString('hex')}`;

let counter = 0;

/** Runs `ip` (or any command) synchronously and returns stdout; throws with stderr on failure. */
export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** `ip -j -n <ns> <args>` parsed as JSON. */
export function ipJson<T = any>(ns: string | undefined, args: string[]): T {
  const out = sh('ip', [...(ns ? ['-n', ns] : []), '-j', ...args]);
  return (out.trim() ? JSON.parse(out) : []) as T;
}

/** Runs a command inside a namespace (`ip netns exec`). */
export function nsExec(ns: string, cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Starts a long-running process inside a namespace; track it with a Scope to stop it. */
export function nsSpawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'ignore', ...opts });
}

/** Owns namespaces and processes for one test; `cleanup()` removes them all. */
export class Scope {
  readonly namespaces: string[] = [];
  readonly processes: ChildProcess[] = [];
  private readonly cleanups: (() => void | Promise<void>)[] = [];

  /** Creates a namespace named `<prefix><tag><n>` with lo up, and returns its name. */
  netns(tag = 'n'): string {
    const name = `${RUN_PREFIX}${tag}${counter++}`.slice(0, 30);
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Tracks a child process so cleanup kills it (by PID) and waits for it. */
  track<T extends ChildProcess>(p: T): T { this.processes.push(p); return p; }

  /** Registers an extra cleanup step (run in reverse order). */
  defer(fn: () => void | Promise<void>): void { this.cleanups.push(fn); }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.reverse()) { try { await fn(); } catch { /* keep going */ } }
    for (const p of this.processes) {
      if (p.exitCode === null && p.signalCode === null) {
        try { p.kill('SIGTERM'); } catch { /* gone */ }
        await waitExit(p, 3000).catch(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } });
      }
    }
    for (const ns of this.namespaces.reverse()) {
      // Processes still inside the namespace (started by something else) go first.
      try {
        const pids = sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean);
        for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      } catch { /* ns gone */ }
      try { sh('ip', ['netns', 'del', ns]); } catch { /* already gone */ }
    }
  }
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

/** Connects two namespaces with a veth pair and addresses (`a`/`b` are "addr/len"). */
export function linkNamespaces(nsA: string, ifA: string, addrA: string | undefined, nsB: string, ifB: string, addrB: string | undefined): void {
  const tmp = `${RUN_PREFIX}v${counter++}`.slice(0, 15);
  sh('ip', ['-n', nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', tmp, 'netns', nsB]);
  sh('ip', ['-n', nsB, 'link', 'set', tmp, 'name', ifB]);
  if (addrA) sh('ip', ['-n', nsA, 'addr', 'add', addrA, 'dev', ifA]);
  if (addrB) sh('ip', ['-n', nsB, 'addr', 'add', addrB, 'dev', ifB]);
  sh('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
  sh('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
}
