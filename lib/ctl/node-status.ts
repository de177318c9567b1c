// `brindlectl node status`: asks the local agent over its status socket
// (`<run dir>/agent.sock`, newline-delimited JSON) and prints the BGP sessions as a table.
import { queryStatus, StatusQueryError, type AgentStatus } from '../agent/status';
import { CtlError } from './errors';
import { boxTable } from './output';

export type PeerRow = AgentStatus['peers'][number];

/** The agent is not running (no socket, or nobody listening). Exit code 1. */
export class AgentNotRunningError extends CtlError {
  constructor(readonly socketPath: string, reason: string) {
    super(`brindle agent is not running on this node (${socketPath}: ${reason})`);
    this.name = 'AgentNotRunningError';
  }
}

/** The agent's status over its socket (lib/agent/status.ts), its failures as CLI errors. */
export async function queryAgent(socketPath: string, timeoutMs = 3000): Promise<AgentStatus> {
  try {
    return await queryStatus(socketPath, timeoutMs);
  } catch (err) {
    if (!(err instanceof StatusQueryError)) throw err;
    if (err.notRunning) throw new AgentNotRunningError(socketPath, err.notRunning);
    throw new CtlError(err.message);
  }
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
