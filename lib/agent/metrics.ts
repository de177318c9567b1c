// Prometheus metrics of the agent: BGP sessions by state, prefixes received/advertised per
// peer, route programming latency (histogram) and errors. Text exposition format 0.0.4 on
// node:http; the server binds where the agent is told (the node address or 127.0.0.1).
import http = require('node:http');

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface PeerSample { address: string; type: string; state: string; received: number; advertised: number }

export class Metrics {
  private readonly counts = new Array<number>(BUCKETS.length).fill(0);
  private sum = 0;
  private n = 0;
  routeErrors = 0;
  routesInstalled = 0;
  private server?: http.Server;

  constructor(private readonly peers: () => PeerSample[]) {}

  /** Records one route programming batch that took `seconds`. */
  observeProgramming(seconds: number): void {
    this.sum += seconds; this.n++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.counts[i]++;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    const peers = this.peers();
    const states = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];
    lines.push('# HELP brindle_bgp_sessions BGP sessions by state.', '# TYPE brindle_bgp_sessions gauge');
    for (const s of states) lines.push(`brindle_bgp_sessions{state="${s}"} ${peers.filter((p) => p.state === s).length}`);
    lines.push('# HELP brindle_bgp_prefixes_received Prefixes received from a peer.', '# TYPE brindle_bgp_prefixes_received gauge');
    for (const p of peers) lines.push(`brindle_bgp_prefixes_received{peer="${p.address}",type="${p.type}"} ${p.received}`);
    lines.push('# HELP brindle_bgp_prefixes_advertised Prefixes advertised to a peer.', '# TYPE brindle_bgp_prefixes_advertised gauge');
    for (const p of peers) lines.push(`brindle_bgp_prefixes_advertised{peer="${p.address}",type="${p.type}"} ${p.advertised}`);
    lines.push('# HELP brindle_route_programming_seconds Time to apply one batch of kernel route changes.', '# TYPE brindle_route_programming_seconds histogram');
    BUCKETS.forEach((b, i) => lines.push(`brindle_route_programming_seconds_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`brindle_route_programming_seconds_bucket{le="+Inf"} ${this.n}`);
    lines.push(`brindle_route_programming_seconds_sum ${this.sum}`, `brindle_route_programming_seconds_count ${this.n}`);
    lines.push('# HELP brindle_route_programming_errors_total Kernel route changes that failed.', '# TYPE brindle_route_programming_errors_total counter');
    lines.push(`brindle_route_programming_errors_total ${this.routeErrors}`);
    lines.push('# HELP brindle_routes_installed Kernel routes installed by the agent.', '# TYPE brindle_routes_installed gauge');
    lines.push(`brindle_routes_installed ${this.routesInstalled}`);
    return lines.join('\n') + '\n';
  }

  /** Serves /metrics on host:port. */
  listen(port: number, host: string): Promise<void> {
    this.server = http.createServer((req, res) => {
      if (req.url !== '/metrics' && req.url !== '/') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.render());
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => { this.server!.off('error', reject); resolve(); });
    });
  }

  close(): void { this.server?.close(); }
}
