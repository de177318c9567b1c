// Starts a real etcd (Debian etcd-server, /usr/bin/etcd) for tests and benchmarks: free
// ports on 127.0.0.1 (or a given address inside a network namespace), a temporary data dir,
// readiness from etcd's own log, and stop() by PID that also removes the data dir.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ETCD_BIN = process.env.BRINDLE_ETCD_BIN ?? '/usr/bin/etcd';

export interface EtcdOptions {
  /**
   * Trade durability for speed (tests only; benchmarks must say so): `--unsafe-no-fsync` when
   * this etcd has it (3.5+), else the data dir goes on tmpfs (/dev/shm) where fsync is free.
   */
  unsafeNoFsync?: boolean;
  /** Run inside this network namespace (`ip netns exec`). */
  ns?: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Ports; default: free ports on 127.0.0.1, or 2379/2380 inside a namespace. */
  clientPort?: number;
  peerPort?: number;
  /** Serve clients over TLS with these files, requiring client certificates signed by caFile. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** More etcd flags (e.g. --enable-pprof for a benchmark's profile). */
  extraArgs?: string[];
  /** Readiness deadline (default 20 s). */
  timeoutMs?: number;
}

export interface EtcdServer {
  /** "http://host:port" */
  endpoint: string;
  pid: number;
  dataDir: string;
  proc: ChildProcess;
  /** Stops etcd (SIGTERM, then SIGKILL after 5 s) by PID and removes its data dir. */
  stop(): Promise<void>;
}

// etcd 3.4 (zap) logs "serving client traffic ..."; capnslog says "ready to serve client requests".
const READY = /serving client traffic|ready to serve client requests/;

let noFsyncFlag: boolean | undefined;

function hasNoFsyncFlag(): boolean {
  if (noFsyncFlag === undefined) {
    let help = '';
    try { help = execFileSync(ETCD_BIN, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch (err) {
      help = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
    }
    noFsyncFlag = help.includes('--unsafe-no-fsync');
  }
  return noFsyncFlag;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts etcd and resolves once it serves clients. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const host = opts.host ?? '127.0.0.1';
  const inNs = opts.ns !== undefined;
  const clientPort = opts.clientPort ?? (inNs ? 2379 : await freePort(host));
  const peerPort = opts.peerPort ?? (inNs ? 2380 : await freePort(host));
  const useFlag = opts.unsafeNoFsync === true && hasNoFsyncFlag();
  const base = opts.unsafeNoFsync && !useFlag && fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dataDir = fs.mkdtempSync(path.join(base, 'brindle-etcd-'));
  const endpoint = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${clientPort}`;
  const peer = `http://${host.includes(':') ? `[${host}]` : host}:${peerPort}`;
  const args = [
    '--name', 'brindle-test',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `brindle-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    ...(useFlag ? ['--unsafe-no-fsync'] : []),
    ...(opts.extraArgs ?? []),
    ...(opts.tls ? ['--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile, '--trusted-ca-file', opts.tls.caFile, '--client-cert-auth'] : []),
  ];
  const proc = inNs
    ? spawn('ip', ['netns', 'exec', opts.ns!, ETCD_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  let ready = false;
  let onReady: (() => void) | undefined;
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-8192);
    if (!ready && READY.test(tail)) { ready = true; onReady?.(); }
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => { try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      if (ready) return resolve();
      const timer = setTimeout(() => reject(new Error(`etcd ${endpoint}: not ready after ${opts.timeoutMs ?? 20000} ms\n${tail}`)),
        opts.timeoutMs ?? 20000);
      onReady = () => { clearTimeout(timer); resolve(); };
      proc.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`etcd ${endpoint}: exited (${code ?? sig})\n${tail}`)); });
      proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, pid: proc.pid!, dataDir, proc, stop };
}
