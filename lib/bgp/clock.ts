// Time for the session and RIB timers: the real clock, and a manual clock for tests that
// advance time explicitly instead of sleeping.

export interface TimerHandle { readonly id: number }

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle | undefined): void;
}

let nextId = 1;

/** Wall-clock time with Node timers (unref'd: timers alone keep no process alive). */
export class RealClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  now(): number { return Date.now(); }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextId++;
    const t = setTimeout(() => { this.timers.delete(id); fn(); }, ms);
    t.unref?.();
    this.timers.set(id, t);
    return { id };
  }
  clearTimeout(h: TimerHandle | undefined): void {
    if (!h) return;
    const t = this.timers.get(h.id);
    if (t) { clearTimeout(t); this.timers.delete(h.id); }
  }
}

/** A clock that moves only when told: `advance(ms)` fires due timers in order. */
export class ManualClock implements Clock {
  private t: number;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 1_700_000_000_000) { this.t = start; }
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(h: TimerHandle | undefined): void { if (h) this.timers.delete(h.id); }
  /** Moves time forward, running each timer due on the way (in due order). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.timers.delete(best[0]);
      this.t = Math.max(this.t, best[1].at);
      best[1].fn();
    }
    this.t = end;
  }
  /** Number of pending timers. */
  get pending(): number { return this.timers.size; }
}

export const realClock: Clock = new RealClock();
