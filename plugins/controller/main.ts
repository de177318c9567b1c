// `brindle controller`: cluster housekeeping (Deployment, one active replica by lease).
// Parses flags, opens the datastore from the environment like every other program, and runs
// lib/controller until SIGTERM/SIGINT (the lease is given up on the way out).
/* eslint-disable @typescript-eslint/no-var-requires */
import { eachFlag, UsageError } from '../../lib/flags';

export { UsageError };

const USAGE = `usage: brindle controller [--interval SECONDS] [--node-grace SECONDS] [--block-grace SECONDS]
  [--leak-grace SECONDS] [--once] [-o json|text] [--log-level LEVEL] [--identity NAME]`;

export interface ControllerFlags {
  interval: number; nodeGrace: number; blockGrace: number; leakGrace: number;
  once: boolean; output: 'text' | 'json'; logLevel: string; identity?: string;
}


/** Parses `brindle controller` flags (`--flag value` or `--flag=value`); durations in seconds. */
export function parseControllerFlags(argv: string[], env: Record<string, string | undefined> = process.env): ControllerFlags {
  const f: ControllerFlags = { interval: 60, nodeGrace: 60, blockGrace: 300, leakGrace: 900, once: false, output: 'text', logLevel: env.BRINDLE_LOG_LEVEL ?? 'info' };
  const secs = (k: string, v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`flag --${k}: ${JSON.stringify(v)} is not a number of seconds`);
    return n;
  };
  eachFlag(argv, (a, val) => {
    switch (a) {
      case '--interval': f.interval = secs('interval', val()); break;
      case '--node-grace': f.nodeGrace = secs('node-grace', val()); break;
      case '--block-grace': f.blockGrace = secs('block-grace', val()); break;
      case '--leak-grace': f.leakGrace = secs('leak-grace', val()); break;
      case '--once': f.once = true; break;
      case '-o': case '--output': {
        const o = val();
        if (o !== 'json' && o !== 'text') throw new UsageError(`flag ${a}: ${JSON.stringify(o)} is not json or text`);
        f.output = o; break;
      }
      case '--log-level': f.logLevel = val(); break;
      case '--identity': f.identity = val(); break;
      case '-h': case '--help': throw new UsageError(USAGE);
      default: throw new UsageError(`unknown flag ${a}\n${USAGE}`);
    }
  });
  if (f.interval <= 0) throw new UsageError('flag --interval: must be more than 0 seconds');
  return f;
}

/** A pass summary as a few lines for people. */
export function formatSummary(r: import('../../lib/controller/run').OnceResult): string {
  if (!r.summary) return `not the leader: the lease is held by ${r.holder ?? 'another replica'}\n`;
  const s = r.summary;
  const lines = [
    `nodes: ${s.nodes.live} live, ${s.nodes.gone.length} gone${s.nodes.gone.length ? ` (${s.nodes.gone.map((g) => `${g.node}${g.eligible ? '' : ' pending'}`).join(', ')})` : ''}`,
    ...s.nodes.cleaned.map((c) => `  cleaned node ${c.node}: ${c.released.length} addresses released, blocks deleted [${c.blocksDeleted.join(', ')}], unaffined [${c.blocksUnaffined.join(', ')}]`),
    `blocks: ${s.blocks.empty} empty, ${s.blocks.released.length} released${s.blocks.released.length ? ` (${s.blocks.released.join(', ')})` : ''}, ${s.blocks.pending} waiting`,
    `leaks: ${s.leaks.candidates} candidates, ${s.leaks.released.length} released, ${s.leaks.pending} waiting, ${s.leaks.handlesRepaired.length} handles corrected`,
    ...s.leaks.released.map((l) => `  released ${l.ip} (handle ${l.handle}, seq ${l.seq}): ${l.reason}`),
    `problems: ${s.problems.length}`,
    ...s.problems.map((p) => `  ${p.kind}: ${p.message}`),
    ...s.errors.map((e) => `error: ${e}`),
  ];
  return lines.join('\n') + '\n';
}

/** Builds the run options shared by `--once` and the daemon. */
function options(flags: ControllerFlags, log: import('../../lib/agent/log').AgentLog) {
  const settings = require('../../lib/datastore/settings') as typeof import('../../lib/datastore/settings');
  const { openDatastore } = require('../../lib/datastore/open') as typeof import('../../lib/datastore/open');
  const os = require('node:os') as typeof import('node:os');
  const ds = openDatastore({ ...settings.datastoreSettings(), timeoutMs: 10000 });
  let pods: import('../../lib/controller/kube').PodInventory | undefined;
  if (ds.type === 'kubernetes') {
    const { kubeTarget } = require('../../lib/datastore/kubeconfig') as typeof import('../../lib/datastore/kubeconfig');
    const { KubePodInventory } = require('../../lib/controller/kube') as typeof import('../../lib/controller/kube');
    pods = new KubePodInventory(kubeTarget(settings.datastoreSettings().kubeconfig), 10000);
  }
  const identity = flags.identity ?? process.env.POD_NAME ?? `${os.hostname()}-${process.pid}`;
  return {
    ds, log, identity, pods,
    intervalMs: flags.interval * 1000,
    nodeGraceMs: flags.nodeGrace * 1000,
    blockGraceMs: flags.blockGrace * 1000,
    leakGraceMs: flags.leakGrace * 1000,
  };
}

/**
 * Runs `brindle controller` and returns the exit code (0; 1 = errors in the `--once` pass;
 * 2 = usage). `out` receives the `--once` summary.
 */
export async function run(argv: string[], out: (text: string) => void = (t) => { require('node:fs').writeSync(1, t); }): Promise<number> {
  const fs = require('node:fs') as typeof import('node:fs');
  let flags: ControllerFlags;
  try { flags = parseControllerFlags(argv); } catch (err) {
    fs.writeSync(2, `${(err as Error).message}\n`);
    return 2;
  }
  const { stderrLog } = require('../../lib/agent/log') as typeof import('../../lib/agent/log');
  const ctl = require('../../lib/controller/run') as typeof import('../../lib/controller/run');
  const log = stderrLog(flags.logLevel, 'controller');
  let o: ReturnType<typeof options>;
  try { o = options(flags, log); } catch (err) {
    log.error(`start: ${(err as Error).message}`);
    return 1;
  }
  try {
    if (flags.once) {
      let r: import('../../lib/controller/run').OnceResult;
      try { r = await ctl.runOnce(o); } catch (err) {
        log.error(`pass: ${(err as Error).message}`);
        return 1;
      }
      out(flags.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : formatSummary(r));
      return r.summary && r.summary.errors.length ? 1 : 0;
    }
    const ac = new AbortController();
    const stop = (sig: string) => { if (!ac.signal.aborted) { log.info(`${sig}: stopping`); ac.abort(); } };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    log.info(`${o.identity}: starting (${o.ds.type} datastore, interval ${flags.interval} s, node grace ${flags.nodeGrace} s, block grace ${flags.blockGrace} s, leak grace ${flags.leakGrace} s)`);
    await ctl.runController(o, ac.signal);
    return 0;
  } finally {
    (o.pods as { close?: () => void } | undefined)?.close?.();
    await o.ds.close().catch(() => undefined);
  }
}

export async function main(argv: string[]): Promise<void> {
  process.on('uncaughtException', (err) => { require('node:fs').writeSync(2, `controller: uncaught: ${err.stack ?? err.message}\n`); });
  process.on('unhandledRejection', (err) => { require('node:fs').writeSync(2, `controller: unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`); });
  process.exit(await run(argv));
}
