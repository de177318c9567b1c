// The agent's local status socket `${BRINDLE_RUN_DIR}/agent.sock`: newline-delimited JSON.
// {"cmd":"status"} → { node, asn, routerId, peers, problems }. Read by `brindlectl node status`.
import fs = require('node:fs');
import net = require('node:net');
import path = require('node:path');

export interface AgentStatus {
  node: string;
  asn: number;
  routerId: string;
  peers: { address: string; port?: number; asn: number; type: string; state: string; since: number; info: string; received: number; advertised: number }[];
  problems: string[];
  routes?: { installed: number; pending: number };
}

export const SOCKET_NAME = 'agent.sock';

/** Serves status requests on `sockPath` (a stale socket file is replaced). */
export function serveStatus(sockPath: string, status: () => AgentStatus): Promise<net.Server> {
  fs.mkdirSync(path.dirname(sockPath), { recursive: true });
  try { fs.unlinkSync(sockPath); } catch { /* none */ }
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 65536) { conn.destroy(); return; }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let reply: unknown;
        try {
          const req = JSON.parse(line) as { cmd?: string };
          reply = req.cmd === 'status' ? status() : { error: `unknown command ${JSON.stringify(req.cmd)}` };
        } catch {
          reply = { error: 'request is not json' };
        }
        conn.write(JSON.stringify(reply) + '\n');
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(sockPath, () => { server.off('error', reject); resolve(server); });
  });
}

/** A status query that failed: the message says why; `notRunning` when nobody listens on the socket. */
export class StatusQueryError extends Error {
  override name = 'StatusQueryError';
  constructor(readonly socketPath: string, message: string, readonly notRunning?: 'no such socket' | 'connection refused') {
    super(message);
  }
}

/**
 * Asks a running agent for its status (brindlectl node status, tests): sends {"cmd":"status"}
 * and returns the first reply line, checked to be a status. Fails with StatusQueryError.
 */
export function queryStatus(sockPath: string, timeoutMs = 2000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const fail = (message: string, notRunning?: 'no such socket' | 'connection refused') => reject(new StatusQueryError(sockPath, message, notRunning));
    const c = net.createConnection(sockPath);
    let buf = '';
    const timer = setTimeout(() => { c.destroy(); fail(`brindle agent did not answer on ${sockPath} within ${timeoutMs} ms`); }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write('{"cmd":"status"}\n'));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      // Half-close rather than destroy: the agent may still be writing its end.
      c.end();
      setTimeout(() => c.destroy(), 200).unref();
      let v: { error?: unknown; peers?: unknown } | undefined;
      try { v = JSON.parse(buf.slice(0, nl)); } catch { return fail(`brindle agent sent malformed JSON on ${sockPath}`); }
      if (v && typeof v.error === 'string') return fail(`brindle agent: ${v.error}`);
      if (!v || !Array.isArray(v.peers)) return fail(`brindle agent sent an unexpected status reply on ${sockPath}`);
      resolve(v as AgentStatus);
    });
    c.on('end', () => {
      clearTimeout(timer);
      if (!buf.includes('\n')) fail(`brindle agent closed ${sockPath} without answering`);
    });
    c.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code ?? 'error';
      if (code === 'ENOENT' || code === 'ECONNREFUSED') fail(`brindle agent is not running (${sockPath}: ${code})`, code === 'ENOENT' ? 'no such socket' : 'connection refused');
      else fail(`cannot reach brindle agent on ${sockPath}: ${code}`);
    });
  });
}
