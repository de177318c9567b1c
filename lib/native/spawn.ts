// Running another CNI plugin (a delegated IPAM plugin) with stdin from a string and stdout
// captured: posix_spawn (vfork-style clone + exec) through FFI, which spares a plugin process
// loading node:child_process and its stream/net stack (~4 ms of every ADD). Shared by the
// plugin's delegation (lib/cni/delegate.ts) and its early start (lib/cni/early.ts), which
// live in two scripts of the single executable: failures are SpawnError, recognised by name.
import { errno, libcFunc } from './libc';
import { closeFd, isExecutableFile, readAllFd, utf8Text, writeAllFd } from './files';

/** The plugin could not be started, read or reaped. */
export class SpawnError extends Error {
  override name = 'SpawnError';
}

/** Finds a plugin binary in CNI_PATH; undefined when absent. */
export function findInPath(name: string, path: string[]): string | undefined {
  if (!name || name.includes('/')) return undefined;
  for (const dir of path) {
    const file = `${dir}/${name}`;
    // One stat: a regular file with an execute bit (the plugin runs as root, for whom any x bit
    // makes it executable; a file that still cannot run fails at posix_spawn with its errno).
    try {
      if (isExecutableFile(file)) return file;
    } catch { /* next */ }
  }
  return undefined;
}

export interface ExecResult { status: number; stdout: string }

// Above this much stdin, a child that answers before reading all of it could stall a plain
// blocking write; such (unusual) configs go through child_process, which multiplexes.
const SPAWN_STDIN_MAX = 60 * 1024;

/** A started plugin process; finish() reads its stdout to the end and reaps it. */
export interface Running { finish(): ExecResult }

export function startPlugin(file: string, env: NodeJS.ProcessEnv, stdin: string): Running {
  // UTF-16 length bounds the UTF-8 length from below; ×3 from above.
  if (stdin.length * 3 <= SPAWN_STDIN_MAX) return spawnPiped(file, env, stdin);
  const input = Buffer.from(stdin);
  if (input.length <= SPAWN_STDIN_MAX) return spawnPiped(file, env, input);
  return {
    finish: () => {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
      const r = spawnSync(file, [], { input, env, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 16 << 20 });
      if (r.error) throw new SpawnError(`exec ${file}: ${r.error.message}`);
      return { status: r.status ?? 1, stdout: r.stdout ?? '' };
    },
  };
}

type Fn = (...args: any[]) => any;
interface SpawnFns { posixSpawn: Fn; faInit: Fn; faDup2: Fn; faDestroy: Fn; pipe2: Fn; waitpid: Fn }
let spawnFns: SpawnFns | undefined;

function libcSpawn(): SpawnFns {
  if (spawnFns) return spawnFns;
  const f = libcFunc;
  return (spawnFns = {
    posixSpawn: f('int posix_spawn(_Out_ int *pid, const char *path, const void *fa, const void *attr, const char **argv, const char **envp)'),
    faInit: f('int posix_spawn_file_actions_init(void *fa)'),
    faDup2: f('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)'),
    faDestroy: f('int posix_spawn_file_actions_destroy(void *fa)'),
    pipe2: f('int pipe2(_Out_ int *fds, int flags)'),
    waitpid: f('int waitpid(int pid, _Out_ int *status, int options)'),
  });
}

/**
 * The spawn attributes, filled in here rather than through seven more libc functions (each
 * koffi declaration costs ~20–130 µs on a cold start): glibc's posix_spawnattr_t is a public,
 * ABI-stable struct (spawn.h): short __flags; pid_t __pgrp; sigset_t __sd (at 8); sigset_t
 * __ss (at 136); struct sched_param __sp; int __policy; int __pad[16] — 336 bytes, which
 * posix_spawnattr_init zeroes and whose destroy does nothing. Set here: POSIX_SPAWN_SETSIGDEF
 * with signals 1–64 but glibc's two internal ones (sigfillset's set) and POSIX_SPAWN_SETSIGMASK
 * with the empty mask.
 */
export function spawnAttr(): Uint8Array {
  const attr = new Uint8Array(ATTR_SIZE);
  new DataView(attr.buffer).setInt16(0, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK, true);
  attr.fill(0xff, ATTR_SIGDEFAULT, ATTR_SIGDEFAULT + SIGNAL_BYTES);
  for (const sig of [SIGCANCEL, SIGSETXID]) attr[ATTR_SIGDEFAULT + ((sig - 1) >> 3)] &= ~(1 << ((sig - 1) & 7));
  return attr;
}

const O_CLOEXEC = 0x80000;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
// sigfillset sets the bits of signals 1..64 (the kernel's sigset), the rest of the 128-byte sigset_t stays 0.
const ATTR_SIZE = 336, ATTR_SIGDEFAULT = 8, SIGNAL_BYTES = 8;
// glibc's internal signals (nptl cancellation, setxid), which sigfillset leaves out.
const SIGCANCEL = 32, SIGSETXID = 33;
const EINTR = 4;

/**
 * Runs `file` with stdin from `input` and stdout captured, stderr inherited, and waits for it:
 * posix_spawn (vfork-style clone + exec) through FFI, which spares the plugin loading
 * node:child_process and its stream/net stack (~4 ms of every ADD). The child gets default
 * signal dispositions and an empty signal mask (Node ignores SIGPIPE; a child must not inherit that).
 */
function spawnPiped(file: string, env: NodeJS.ProcessEnv, input: string | Uint8Array): Running {
  const c = libcSpawn();
  const inP = new Int32Array(2), outP = new Int32Array(2);
  if (c.pipe2(inP, O_CLOEXEC) < 0) throw new SpawnError(`exec ${file}: pipe failed (errno ${errno()})`);
  if (c.pipe2(outP, O_CLOEXEC) < 0) {
    closeFd(inP[0]); closeFd(inP[1]);
    throw new SpawnError(`exec ${file}: pipe failed (errno ${errno()})`);
  }
  const open = new Set<number>([inP[0], inP[1], outP[0], outP[1]]);
  const close = (fd: number) => { if (open.delete(fd)) closeFd(fd); };
  const closeAll = () => { for (const fd of [...open]) close(fd); };
  // glibc: posix_spawn_file_actions_t is 80 bytes (a generous size is harmless).
  const fa = new Uint8Array(128), attr = spawnAttr();
  let pid = -1;
  try {
    c.faInit(fa);
    try {
      // dup2 onto 0/1 clears close-on-exec there; every other pipe end is O_CLOEXEC.
      c.faDup2(fa, inP[0], 0);
      c.faDup2(fa, outP[1], 1);
      const envp: (string | null)[] = [];
      for (const [k, v] of Object.entries(env)) if (v !== undefined) envp.push(`${k}=${v}`);
      envp.push(null);
      const pidOut = [0];
      const placed = startOnOwnCpu();
      try {
        const rc = c.posixSpawn(pidOut, file, fa, attr, [file, null], envp);
        if (rc !== 0) throw new SpawnError(`exec ${file}: ${errnoText(rc)}`);
        pid = pidOut[0];
      } finally {
        placed?.(pid);
      }
    } finally {
      c.faDestroy(fa);
    }
    close(inP[0]);
    close(outP[1]);
    // Fits the pipe buffer (SPAWN_STDIN_MAX), so this never waits for the child.
    writeAll(inP[1], input);
    close(inP[1]);
  } catch (err) {
    closeAll();
    if (pid > 0) waitExit(c, errno, pid);
    throw err;
  }
  let done: ExecResult | undefined;
  return {
    finish: () => {
      if (done) return done;
      try {
        const stdout = readAll(outP[0]);
        close(outP[0]);
        done = { status: waitExit(c, errno, pid), stdout };
        return done;
      } finally {
        closeAll();
      }
    },
  };
}

// glibc's cpu_set_t: 1024 CPUs.
const CPUSET_BYTES = 128;
interface AffinityFns { get: Fn; set: Fn; cpu: Fn }
let affinityFns: AffinityFns | undefined;

/**
 * Where the child starts: posix_spawn's parent sleeps until the child has exec'd (vfork), and the
 * scheduler puts a new process on an idle CPU, so on a VM that start waits for an idle vCPU to
 * wake, then for this one to wake again: 2–4 ms per spawn measured on the 2-vCPU CI VM, where the
 * same spawn pinned to one CPU takes 0.1 ms. So the child starts on this thread's own CPU (free
 * while it sleeps), and once it has exec'd it moves to the other CPUs this thread may use, to run
 * alongside it. Returns what to call with the child's pid (or -1) after posix_spawn, which puts
 * this thread's affinity back as it was; undefined when there is no second CPU or any step fails
 * (the spawn then goes as the scheduler places it).
 */
export function startOnOwnCpu(): ((pid: number) => void) | undefined {
  try {
    const f = (affinityFns ??= {
      get: libcFunc('int sched_getaffinity(int pid, size_t size, void *mask)'),
      set: libcFunc('int sched_setaffinity(int pid, size_t size, const void *mask)'),
      cpu: libcFunc('int sched_getcpu()'),
    });
    const mine = new Uint8Array(CPUSET_BYTES);
    if (f.get(0, CPUSET_BYTES, mine) !== 0) return undefined;
    const cpu: number = f.cpu();
    if (cpu < 0 || cpu >= CPUSET_BYTES * 8) return undefined;
    const bit = 1 << (cpu & 7), at = cpu >> 3;
    if (!(mine[at] & bit)) return undefined;
    const others = mine.slice();
    others[at] &= ~bit;
    if (others.every((b) => b === 0)) return undefined;
    const own = new Uint8Array(CPUSET_BYTES);
    own[at] = bit;
    if (f.set(0, CPUSET_BYTES, own) !== 0) return undefined;
    return (pid: number) => {
      if (pid > 0) f.set(pid, CPUSET_BYTES, others);
      // A cpuset that shrank meanwhile refuses the old mask: then every CPU it allows.
      if (f.set(0, CPUSET_BYTES, mine) !== 0) f.set(0, CPUSET_BYTES, new Uint8Array(CPUSET_BYTES).fill(0xff));
    };
  } catch {
    return undefined;
  }
}

function writeAll(fd: number, data: string | Uint8Array): void {
  try {
    writeAllFd(fd, data, 'plugin stdin');
  } catch (err) {
    // The child stopped reading (it exited): its status says why.
    if ((err as { code?: string }).code !== 'EPIPE') throw err;
  }
}

function readAll(fd: number): string {
  // A plugin's answer is a few hundred bytes: one read into one buffer.
  try {
    return utf8Text(readAllFd(fd));
  } catch (err) {
    if ((err as { errno?: number }).errno === 27) throw new SpawnError('plugin output exceeds 16 MiB');
    throw err;
  }
}

/** waitpid until the child ends: its exit status, or 128+signal when killed. */
function waitExit(c: SpawnFns, errno: () => number, pid: number): number {
  const st = [0];
  for (;;) {
    if (c.waitpid(pid, st, 0) >= 0) break;
    if (errno() !== EINTR) throw new SpawnError(`wait for plugin: errno ${errno()}`);
  }
  const s = st[0];
  if ((s & 0x7f) === 0) return (s >> 8) & 0xff;
  return 128 + (s & 0x7f);
}

export function errnoText(e: number): string {
  const names: Record<number, string> = { 2: 'no such file or directory', 8: 'exec format error', 13: 'permission denied', 12: 'out of memory', 11: 'resource temporarily unavailable' };
  return names[e] ?? `errno ${e}`;
}

