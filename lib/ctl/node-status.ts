// `brindlectl node status`: asks the local agent over its status socket
// (`<run dir>/agent.sock`, newline-delimited JSON) and prints the BGP sessions as a table.
import net = require('node:net');
import { CtlError } from './errors';
import { boxTable } from './output';

export interface PeerRow {
  address: string; port?: number; asn?: number; type: string; state: string;
  since?: number; info?: string; received?: number; advertised?: number;
}
export interface AgentStatus { node: string; asn: number; routerId: string; peers: PeerRow[]; problems?: string[] }

/** The agent is not running (no socket, or nobody listening). Exit code 1. */
export class AgentNotRunningError extends CtlError {
  constructor(readonly socketPath: string, reason: string) {
    super(`brindle agent is not running on this node (${socketPath}: ${reason})`);
    this.name = 'AgentNotRunningError';
  }
}

/** Sends {"cmd":"status"} and returns the first reply line, parsed. */
export function queryAgent(socketPath: string, timeoutMs = 3000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new CtlError(`brindle agent did not answer on ${socketPath} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('{"cmd":"status"}\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      // Half-close rather than destroy: the agent may still be writing its end.
      sock.end();
      setTimeout(() => sock.destroy(), 200).unref();
      try {
        const v = JSON.parse(buf.slice(0, nl));
        if (v && typeof v.error === 'string') return reject(new CtlError(`brindle agent: ${v.error}`));
        if (!v || !Array.isArray(v.peers)) return reject(new CtlError(`brindle agent sent an unexpected status reply on ${socketPath}`));
        resolve(v as AgentStatus);
      } catch {
        reject(new CtlError(`brindle agent sent malformed JSON on ${socketPath}`));
      }
    });
    sock.on('end', () => {
      clearTimeout(timer);
      if (!buf.includes('\n')) reject(new CtlError(`brindle agent closed ${socketPath} without answering`));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code ?? 'error';
      if (code === 'ENOENT' || code === 'ECONNREFUSED') reject(new AgentNotRunningError(socketPath, code === 'ENOENT' ? 'no such socket' : 'connection refused'));
      else reject(new CtlError(`cannot reach brindle agent on ${socketPath}: ${code}`));
    });
  });
}

const TYPE_TEXT: Record<string, string> = {
  nodeMesh: 'node-to-node mesh',
  global: 'global',
  nodeSpecific: 'node specific',
  rrClient: 'route reflector client',
  routeReflector: 'route reflector',
};

/** Human text of a peer type ("node-to-node mesh", "route reflector" ...). */
export function peerTypeText(t: string): string { return TYPE_TEXT[t] ?? t; }

/** SINCE column: time of day within the last day, else the date. */
export function sinceText(since: number | undefined, now = Date.now()): string {
  if (!since) return '';
  const d = new Date(since);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (now - since < 86_400_000) return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

/** The text `node status` prints. */
export function renderStatus(s: AgentStatus, now = Date.now()): string {
  const parts: string[] = [`brindle agent is running on node ${s.node} (AS ${s.asn}, router ID ${s.routerId}).\n`];
  const v4 = s.peers.filter((p) => !p.address.includes(':'));
  const v6 = s.peers.filter((p) => p.address.includes(':'));
  const table = (peers: PeerRow[]): string => peers.length
    ? boxTable(['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
      peers.map((p) => [p.address, peerTypeText(p.type), p.state, sinceText(p.since, now), p.info ?? '']))
    : 'No IPv4 peers found.\n';
  parts.push('\nIPv4 BGP status\n', table(v4));
  if (v6.length) parts.push('\nIPv6 BGP status\n', table(v6));
  if (s.problems?.length) parts.push('\nProblems\n', ...s.problems.map((p) => `  - ${p}\n`));
  return parts.join('');
}
