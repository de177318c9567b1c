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

/** Asks a running agent for its status (used by brindlectl and tests). */
export function queryStatus(sockPath: string, timeoutMs = 2000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sockPath);
    let buf = '';
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`agent status ${sockPath}: timed out`)); }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write('{"cmd":"status"}\n'));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.end();
      try { resolve(JSON.parse(buf.slice(0, nl))); } catch (e) { reject(e); }
    });
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
