// The controller's loop: every renew period one election step; the leader runs a pass every
// interval. `once` runs one pass (taking the lease when it is free) and returns its summary.
// Datastore errors are logged and retried on the next tick; nothing here throws past the loop.
import type { Datastore } from '../datastore/types';
import type { AgentLog } from '../agent/log';
import { Controller, type ControllerOptions, type PassSummary } from './controller';
import { LeaderElector } from './lease';
import type { PodInventory } from './kube';

export interface RunClock {
  now(): number;
  /** Resolves after ms, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realRunClock: RunClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  }),
};

export interface RunOptions extends Omit<ControllerOptions, 'clock'> {
  ds: Datastore;
  log: AgentLog;
  identity: string;
  clock?: RunClock;
  pods?: PodInventory;
  /** Seconds between passes of the leader (default 60). */
  intervalMs?: number;
  leaseDurationMs?: number;
  leaseRenewMs?: number;
  /** Called after each pass (tests, metrics). */
  onPass?: (s: PassSummary) => void;
}

export interface OnceResult { leader: boolean; holder?: string; summary?: PassSummary }

/** One pass now, if this replica holds or can take the lease (another live leader wins). */
export async function runOnce(o: RunOptions): Promise<OnceResult> {
  const clock = o.clock ?? realRunClock;
  const elector = new LeaderElector({ ds: o.ds, identity: o.identity, clock, durationMs: o.leaseDurationMs, renewMs: o.leaseRenewMs });
  const leader = await elector.tick();
  if (!leader) return { leader, holder: elector.state().holder };
  try {
    const summary = await new Controller({ ...o, clock }).pass();
    return { leader, holder: o.identity, summary };
  } finally {
    await elector.release().catch((err) => o.log.warn(`release lease: ${(err as Error).message}`));
  }
}

/** Runs until `signal` aborts; gives the lease up on the way out. */
export async function runController(o: RunOptions, signal: AbortSignal): Promise<void> {
  const clock = o.clock ?? realRunClock;
  const elector = new LeaderElector({ ds: o.ds, identity: o.identity, clock, durationMs: o.leaseDurationMs, renewMs: o.leaseRenewMs });
  let ctl = new Controller({ ...o, clock });
  const interval = o.intervalMs ?? 60_000;
  let nextPass = 0;
  let wasLeader = false;
  while (!signal.aborted) {
    let leader = false;
    try { leader = await elector.tick(); } catch (err) { o.log.warn(`lease ${elector.state().holder ?? ''}: ${(err as Error).message}`); }
    leader = leader && elector.isLeader();
    if (leader !== wasLeader) {
      o.log.info(leader ? `${o.identity}: became the leader` : `${o.identity}: not the leader (holder ${elector.state().holder ?? 'none'})`);
      // A new leader starts afresh: a pass now, grace periods counted from its own sightings.
      if (leader) { nextPass = 0; ctl = new Controller({ ...o, clock }); }
      wasLeader = leader;
    }
    if (leader && clock.now() >= nextPass) {
      const s = await ctl.pass();
      nextPass = clock.now() + interval;
      o.onPass?.(s);
      o.log.debug(`pass: ${JSON.stringify({ gone: s.nodes.gone.length, blocks: s.blocks.released.length, leaks: s.leaks.released.length, errors: s.errors.length })}`);
    }
    await clock.sleep(Math.min(elector.renewMs, leader ? Math.max(0, nextPass - clock.now()) || elector.renewMs : elector.renewMs), signal);
  }
  await elector.release().catch((err) => o.log.warn(`release lease: ${(err as Error).message}`));
}
