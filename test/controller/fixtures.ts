// Shared fakes for the controller tests: a manual clock (also a RunClock), a Datastore wrapper
// that can be cut off (a partitioned replica) or run an async step before a write commits,
// a quiet logger and a small cluster seed.
import { UnavailableError, type Datastore, type IPPoolSpec, type WriteOp } from '../../lib/datastore/types';
import { Ipam } from '../../lib/ipam/allocator';
import { createPool } from '../../lib/ipam/pools';
import type { AgentLog } from '../../lib/agent/log';
import type { RunClock } from '../../lib/controller/run';
import { MemStore } from '../helpers/memstore';

export class TestClock implements RunClock {
  private waiters: { at: number; r: () => void }[] = [];
  constructor(public t = 1_700_000_000_000) {}
  now(): number { return this.t; }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((r) => {
      if (signal.aborted) return r();
      this.waiters.push({ at: this.t + ms, r });
      signal.addEventListener('abort', () => r(), { once: true });
    });
  }
  /** Moves time and wakes due sleepers; then lets their continuations run. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.waiters.filter((w) => w.at <= this.t);
    this.waiters = this.waiters.filter((w) => w.at > this.t);
    for (const w of due) w.r();
    await settle();
  }
}

/** Lets pending promise chains (memstore calls are microtasks) run to quiescence. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

export interface Wrapped extends Datastore {
  /** Every call fails with UnavailableError while true. */
  cut: boolean;
  /** Awaited before an apply() is forwarded (runs once per call it returns true for). */
  beforeApply?: (ops: WriteOp[]) => Promise<void>;
}

/** A view of `inner` that can be cut off or interposed on, sharing its data. */
export function wrap(inner: Datastore): Wrapped {
  const state = { cut: false, beforeApply: undefined as Wrapped['beforeApply'] };
  return new Proxy(inner as unknown as Wrapped, {
    get(target, prop, recv) {
      if (prop === 'cut' || prop === 'beforeApply') return state[prop];
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        if (state.cut && prop !== 'close') throw new UnavailableError('datastore: cut off');
        if (prop === 'apply' && state.beforeApply) await state.beforeApply(args[0] as WriteOp[]);
        if ((prop === 'create' || prop === 'update' || prop === 'delete') && state.beforeApply) {
          const ops: WriteOp[] = prop === 'delete'
            ? [{ op: 'delete', kind: args[0] as never, name: args[1] as string, revision: args[2] as string }]
            : [{ op: prop, res: args[0] as never }];
          await state.beforeApply(ops);
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
    set(_t, prop, value) {
      if (prop === 'cut' || prop === 'beforeApply') { (state as Record<string, unknown>)[prop] = value; return true; }
      return false;
    },
  });
}

export const quiet: AgentLog = { debug() {}, info() {}, warn() {}, error() {} };

/** A log that keeps lines (to assert warnings were logged). */
export function keepLog(): AgentLog & { lines: string[] } {
  const lines: string[] = [];
  const w = (lv: string) => (m: string) => { lines.push(`${lv} ${m}`); };
  return { lines, debug: w('debug'), info: w('info'), warn: w('warn'), error: w('error') };
}

/** A MemStore with a /24 pool of /28 blocks and the given live nodes. */
export async function cluster(nodes: string[], pool: Partial<IPPoolSpec> = {}): Promise<{ mem: MemStore; ipam: Ipam }> {
  const mem = new MemStore();
  await createPool(mem, { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/24', blockSize: 28, ...pool } as IPPoolSpec });
  for (const n of nodes) await mem.create({ kind: 'Node', metadata: { name: n }, spec: {} });
  return { mem, ipam: new Ipam(mem, { sleep: async () => undefined, blockSearch: 'ordered' }) };
}
