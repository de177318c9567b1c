import t from 'tap';
import { Metrics } from '../../lib/agent/metrics';
import { parseAgentFlags, UsageError } from '../../plugins/agent/main';

t.test('prometheus text', async (t) => {
  const m = new Metrics(() => [
    { address: '198.18.0.12', type: 'nodeMesh', state: 'Established', received: 3, advertised: 1 },
    { address: '198.18.0.2', type: 'global', state: 'Active', received: 0, advertised: 0 },
  ]);
  m.observeProgramming(0.003); m.observeProgramming(0.7); m.routeErrors = 2; m.routesInstalled = 4;
  const text = m.render();
  for (const line of [
    'brindle_bgp_sessions{state="Established"} 1', 'brindle_bgp_sessions{state="Active"} 1', 'brindle_bgp_sessions{state="Idle"} 0',
    'brindle_bgp_prefixes_received{peer="198.18.0.12",type="nodeMesh"} 3', 'brindle_bgp_prefixes_advertised{peer="198.18.0.12",type="nodeMesh"} 1',
    'brindle_route_programming_seconds_bucket{le="0.005"} 1', 'brindle_route_programming_seconds_bucket{le="1"} 2',
    'brindle_route_programming_seconds_bucket{le="+Inf"} 2', 'brindle_route_programming_seconds_count 2',
    'brindle_route_programming_errors_total 2', 'brindle_routes_installed 4',
  ]) t.ok(text.split('\n').includes(line), line);
});

t.test('agent flags', async (t) => {
  t.match(parseAgentFlags(['--node-name', 'n1', '--node-ip=198.18.0.11', '--as', '65001', '--listen-port', '1179', '--metrics-port', '9091', '--route-reflector-cluster-id', '1.0.0.1', '--ip-autodetect', 'can-reach=198.18.0.1']),
    { nodeName: 'n1', nodeIp: '198.18.0.11', asn: 65001, listenPort: 1179, metricsPort: 9091, rrClusterId: '1.0.0.1', autodetect: 'can-reach=198.18.0.1' });
  t.throws(() => parseAgentFlags(['--as', 'x']), UsageError);
  t.throws(() => parseAgentFlags(['--bogus']), UsageError);
  t.throws(() => parseAgentFlags(['--node-ip']), UsageError);
});
