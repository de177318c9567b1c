// `brindle agent`: the node daemon's entry. Parses flags, opens the datastore, wires the real
// speaker and the netlink dataplane into lib/agent, and stops gracefully on SIGTERM/SIGINT
// (routes stay in the kernel; peers keep ours through graceful restart).
/* eslint-disable @typescript-eslint/no-var-requires */
import { eachFlag, UsageError } from '../../lib/flags';

export { UsageError };

const USAGE = `usage: brindle agent [--node-name NAME] [--node-ip IP] [--node-ip6 IP]
  [--ip-autodetect first-found|interface=REGEX|can-reach=IP] [--as N] [--listen-port N]
  [--metrics-port N] [--metrics-host IP] [--route-reflector-cluster-id ID] [--log-level LEVEL]
  [--stale-time SECONDS]`;

export interface AgentFlags {
  nodeName?: string; nodeIp?: string; nodeIp6?: string; autodetect?: string; asn?: number;
  listenPort?: number; metricsPort?: number; metricsHost?: string; rrClusterId?: string;
  logLevel: string; staleTime?: number;
}


/** Parses `brindle agent` flags (`--flag value` or `--flag=value`). */
export function parseAgentFlags(argv: string[]): AgentFlags {
  const f: AgentFlags = { logLevel: process.env.BRINDLE_LOG_LEVEL ?? 'info' };
  const num = (k: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`flag --${k}: ${JSON.stringify(v)} is not a number`);
    return n;
  };
  eachFlag(argv, (a, val) => {
    switch (a) {
      case '--node-name': f.nodeName = val(); break;
      case '--node-ip': f.nodeIp = val(); break;
      case '--node-ip6': f.nodeIp6 = val(); break;
      case '--ip-autodetect': f.autodetect = val(); break;
      case '--as': f.asn = num('as', val()); break;
      case '--listen-port': f.listenPort = num('listen-port', val()); break;
      case '--metrics-port': f.metricsPort = num('metrics-port', val()); break;
      case '--metrics-host': f.metricsHost = val(); break;
      case '--route-reflector-cluster-id': f.rrClusterId = val(); break;
      case '--log-level': f.logLevel = val(); break;
      case '--stale-time': f.staleTime = num('stale-time', val()); break;
      case '-h': case '--help': throw new UsageError(USAGE);
      default: throw new UsageError(`unknown flag ${a}\n${USAGE}`);
    }
  });
  return f;
}

export async function main(argv: string[]): Promise<void> {
  const fs = require('node:fs') as typeof import('node:fs');
  let flags: AgentFlags;
  try {
    flags = parseAgentFlags(argv);
  } catch (err) {
    fs.writeSync(2, `${(err as Error).message}\n`);
    process.exit(2);
  }
  const { stderrLog } = require('../../lib/agent/log') as typeof import('../../lib/agent/log');
  const settings = require('../../lib/datastore/settings') as typeof import('../../lib/datastore/settings');
  const { openDatastore } = require('../../lib/datastore/open') as typeof import('../../lib/datastore/open');
  const { Agent } = require('../../lib/agent/agent') as typeof import('../../lib/agent/agent');
  const { netlinkDataplane } = require('../../lib/agent/netlink-dataplane') as typeof import('../../lib/agent/netlink-dataplane');
  const nodeName = flags.nodeName ?? settings.nodeName();
  const log = stderrLog(flags.logLevel, nodeName);
  const ds = openDatastore({ ...settings.datastoreSettings(), timeoutMs: 10000 });
  const agent = new Agent({
    nodeName, ds, log,
    runDir: settings.runDir(),
    dataplane: netlinkDataplane(),
    newSpeaker: (o) => {
      const { Speaker } = require('../../lib/bgp/speaker');
      return new Speaker({ ...o, log: (lv: 'debug' | 'info' | 'warn', msg: string) => log[lv](`bgp: ${msg}`) });
    },
    nodeIp: flags.nodeIp, nodeIp6: flags.nodeIp6, autodetect: flags.autodetect, asn: flags.asn,
    listenPort: flags.listenPort, metricsPort: flags.metricsPort, metricsHost: flags.metricsHost,
    rrClusterId: flags.rrClusterId,
    staleTimeMs: flags.staleTime !== undefined ? flags.staleTime * 1000 : undefined,
  });
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: stopping (routes stay in the kernel)`);
    const hard = setTimeout(() => process.exit(0), 5000);
    agent.stop().finally(() => { clearTimeout(hard); ds.close().catch(() => undefined).finally(() => process.exit(0)); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => { log.error(`uncaught: ${err.stack ?? err.message}`); });
  process.on('unhandledRejection', (err) => { log.error(`unhandled rejection: ${(err as Error)?.stack ?? String(err)}`); });
  try {
    await agent.start();
  } catch (err) {
    log.error(`start: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  }
  await new Promise<never>(() => { /* runs until a signal */ });
}
