// The node's route programmer: keeps the kernel's routes of route protocol RTPROT_BRINDLE (177)
// equal to a desired set, by diff, in batches. It removes exactly what it installed; on start it
// adopts the protocol-177 routes already in the kernel (left by a previous run) and reconciles
// them instead of flushing, and it never removes anything when the agent stops.
import { tryParseCidr } from '../ip';

export const RTPROT_BRINDLE = 177;

/** A kernel route (structurally lib/netlink/route.ts Route). */
export interface KRoute {
  family: 4 | 6;
  dst: string;
  gateway?: string;
  oif?: number;
  scope?: 'universe' | 'link' | 'host';
  type?: 'unicast' | 'blackhole' | 'unreachable' | 'local';
  protocol?: number;
  table?: number;
  onlink?: boolean;
  priority?: number;
  src?: string;
  multipath?: { gateway?: string; oif: number; onlink?: boolean; weight?: number }[];
}

/** The kernel side of the programmer; `netlinkRouteTable` is the real one, tests use a Map. */
export interface RouteTable {
  /** Routes of `protocol` in the main table, both families. */
  list(protocol: number): KRoute[];
  /** Replaces (creates or overwrites) each route; one entry per route, undefined = done. */
  replace(routes: KRoute[]): (Error | undefined)[];
  /** Deletes each route; a route already gone is success. */
  del(routes: KRoute[]): (Error | undefined)[];
  /**
   * Optional fast path of replace(): `count` routes given by routeAt(i), whose result may be
   * one object reused between calls (no object per route for a 100,000-route table).
   */
  replaceEach?(count: number, routeAt: (i: number) => KRoute): (Error | undefined)[];
  /**
   * Optional asynchronous replaceEach: routeAt is read during the call, the kernel is written
   * later (another thread) and `done` gets one entry per route. Async calls (with delAsync)
   * run in call order. Returns false (and never calls done) when unavailable.
   */
  replaceEachAsync?(count: number, routeAt: (i: number) => KRoute, done: (errs: (Error | undefined)[]) => void): boolean;
  /** Optional asynchronous del(), ordered with replaceEachAsync; false when unavailable. */
  delAsync?(routes: KRoute[], done: (errs: (Error | undefined)[]) => void): boolean;
}

export interface FlushReport {
  replaced: number;
  deleted: number;
  errors: { route: KRoute; op: 'replace' | 'del'; error: Error }[];
  ms: number;
}

/** Map key of a route: one route per destination in the main table. */
export function routeKey(r: { family: number; dst: string }): string {
  return `${r.family}|${r.dst}`;
}

/** Canonical text of what a route does (type, gateway, device, flags, paths). */
export function routeSignature(r: KRoute): string {
  const type = r.type ?? 'unicast';
  if (type !== 'unicast') return type;
  if (r.multipath && r.multipath.length > 1) {
    const hops = r.multipath.map((h) => `${h.gateway ?? ''}@${h.oif}${h.onlink ? '!' : ''}`).sort();
    return `mp:${hops.join(',')}`;
  }
  const h = r.multipath?.[0] ?? r;
  return `${h.gateway ?? ''}@${h.oif ?? ''}${h.onlink ? '!' : ''}`;
}

/**
 * True when the kernel route `have` does what `want` asks; fields `want` leaves open (an oif the
 * kernel resolved, a priority) do not count. Used for routes adopted from a previous run.
 */
export function routeSatisfies(have: KRoute, want: KRoute): boolean {
  const ht = have.type ?? 'unicast', wt = want.type ?? 'unicast';
  if (ht !== wt) return false;
  if (wt !== 'unicast') return true;
  const hops = (r: KRoute) => (r.multipath && r.multipath.length > 0 ? r.multipath : [{ gateway: r.gateway, oif: r.oif, onlink: r.onlink }]);
  const hh = hops(have), wh = hops(want);
  if (hh.length !== wh.length) return false;
  return wh.every((w) => hh.some((h) => (h.gateway ?? '') === (w.gateway ?? '')
    && (w.oif === undefined || h.oif === w.oif) && (!!w.onlink === !!h.onlink || w.onlink === undefined)));
}

/**
 * What a route does, without its destination: one object shared by every destination routed
 * the same way (100,000 routes via one peer share one), made by RouteProgrammer.shape().
 */
export interface RouteShape {
  /** The route with dst '' and no undefined fields. */
  readonly route: KRoute;
  readonly sig: string;
  /** Found in the kernel at start (then `route` is exactly what the kernel reported). */
  readonly adopted: boolean;
}

/**
 * Keeps the kernel's protocol-177 routes equal to the desired set. Desired and installed sets
 * are maps from the destination text (IPv4 and IPv6 texts never collide) to shared shapes.
 */
export class RouteProgrammer {
  private readonly desired = new Map<string, RouteShape>();
  private readonly installed = new Map<string, RouteShape>();
  /** Destinations to look at in the next flush → their desired shape (undefined: none). */
  private dirty = new Map<string, RouteShape | undefined>();
  private readonly shapes = new Map<string, RouteShape>();
  private holding = false;
  readonly protocol: number;

  constructor(private readonly table: RouteTable, opts: { protocol?: number } = {}) {
    this.protocol = opts.protocol ?? RTPROT_BRINDLE;
  }

  /** The shared shape of a route (its dst is ignored); the protocol becomes ours. */
  shape(r: KRoute): RouteShape {
    // Consecutive routes mostly share their shape: compare with the last one before building a key.
    const l = this.lastIn;
    if (l && l.gateway === r.gateway && l.oif === r.oif && l.family === r.family && l.type === r.type && !l.onlink === !r.onlink
      && l.multipath === r.multipath && l.scope === r.scope && l.table === r.table && l.priority === r.priority && l.src === r.src) return this.lastShape!;
    const s = this.shapeSlow(r);
    this.lastIn = { ...r };
    this.lastShape = s;
    return s;
  }

  private lastIn?: KRoute;
  private lastShape?: RouteShape;

  private shapeSlow(r: KRoute): RouteShape {
    const key = `${r.family}|${r.type ?? ''}|${r.gateway ?? ''}|${r.oif ?? ''}|${r.onlink ? 1 : ''}|${r.scope ?? ''}|${r.table ?? ''}|${r.priority ?? ''}|${r.src ?? ''}|${r.multipath ? JSON.stringify(r.multipath) : ''}`;
    let s = this.shapes.get(key);
    if (s) return s;
    const route: KRoute = { family: r.family, dst: '' };
    for (const k of Object.keys(r) as (keyof KRoute)[]) {
      if (k === 'family' || k === 'dst' || r[k] === undefined) continue;
      (route as unknown as Record<string, unknown>)[k] = r[k];
    }
    route.protocol = this.protocol;
    if (this.shapes.size >= 10_000) this.shapes.clear();
    s = { route, sig: `${r.family}|${routeSignature(route)}`, adopted: false };
    this.shapes.set(key, s);
    return s;
  }

  /**
   * Adopts the routes a previous run left in the kernel. With `hold`, adopted routes that are
   * not desired stay until releaseStale() (graceful restart: peers re-announce first).
   */
  adopt(opts: { hold?: boolean } = {}): number {
    const found = this.table.list(this.protocol);
    for (const r of found) {
      this.installed.set(r.dst, { route: r, sig: `${r.family}|${routeSignature(r)}`, adopted: true });
      this.dirty.set(r.dst, this.desired.get(r.dst));
    }
    this.holding = !!opts.hold;
    return found.length;
  }

  /** Ends the hold: adopted routes nobody wants are removed at the next flush. */
  releaseStale(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const [k, v] of this.installed) if (v.adopted && !this.desired.has(k)) this.dirty.set(k, undefined);
  }

  get holdingStale(): boolean { return this.holding; }

  /** Sets (or, with undefined, clears) the desired route for one destination. */
  set(family: 4 | 6, dst: string, route: KRoute | undefined): void {
    void family;
    this.setShape(dst, route ? this.shape(route) : undefined);
  }

  /** Sets (or clears) the desired route for one destination by its shape (the hot path). */
  setShape(dst: string, shape: RouteShape | undefined): void {
    if (shape) {
      const cur = this.desired.get(dst);
      if (cur === shape) return;
      this.desired.set(dst, shape);
      if (cur && cur.sig === shape.sig) { if (this.dirty.has(dst)) this.dirty.set(dst, shape); return; }
    } else if (!this.desired.delete(dst)) {
      return;
    }
    this.dirty.set(dst, shape);
  }

  /** Replaces the whole desired set (full recompute); only differences become dirty. */
  setAll(routes: KRoute[]): void {
    const next = new Map<string, RouteShape>();
    for (const r of routes) next.set(r.dst, this.shape(r));
    this.setAllShapes(next);
  }

  /** setAll by shapes: destination → shape. */
  setAllShapes(next: Map<string, RouteShape>): void {
    for (const k of this.desired.keys()) if (!next.has(k)) { this.desired.delete(k); this.dirty.set(k, undefined); }
    for (const [k, s] of next) this.setShape(k, s);
  }

  /** The desired routes (for status and tests). */
  desiredRoutes(): KRoute[] { return [...this.desired].map(([dst, s]) => ({ ...s.route, dst })); }

  get pending(): number { return this.dirty.size; }

  /** Applies every pending difference to the kernel in batches; failed routes stay pending. */
  flush(): FlushReport {
    const t0 = performance.now();
    const replaceDsts: string[] = [];
    const replaceShapes: RouteShape[] = [];
    const toDelete: KRoute[] = [];
    const dirty = this.dirty;
    this.dirty = new Map();
    for (const [k, want] of dirty) {
      const have = this.installed.get(k);
      if (want) {
        if (have && (have === want || (have.adopted ? routeSatisfies(have.route, want.route) : have.sig === want.sig))) {
          if (have !== want) this.installed.set(k, want);
          continue;
        }
        replaceDsts.push(k);
        replaceShapes.push(want);
      } else if (have) {
        if (have.adopted && this.holding) continue;
        toDelete.push(have.adopted ? have.route : { ...have.route, dst: k });
      }
    }
    const report: FlushReport = { replaced: 0, deleted: 0, errors: [], ms: 0 };
    try {
      this.apply(replaceDsts, replaceShapes, toDelete, report);
    } catch (err) {
      // The table failed as a whole (socket error): everything of this flush stays pending.
      for (const [k, v] of dirty) if (!this.dirty.has(k)) this.dirty.set(k, v);
      throw err;
    }
    report.ms = performance.now() - t0;
    return report;
  }

  /**
   * flush() through the table's asynchronous writes: the installed set is updated at once
   * (so later flushes diff against what is on its way to the kernel) and put back for routes
   * that failed, which become pending again. Returns false, doing nothing, when the table has
   * no asynchronous writes; then use flush().
   */
  flushAsync(done: (report: FlushReport) => void): boolean {
    const table = this.table;
    if (!table.replaceEachAsync || !table.delAsync) return false;
    const t0 = performance.now();
    const dsts: string[] = [];
    const shapes: RouteShape[] = [];
    const prevs: (RouteShape | undefined)[] = [];
    const toDelete: KRoute[] = [];
    const delPrev: RouteShape[] = [];
    for (const [k, want] of this.dirty) {
      const have = this.installed.get(k);
      if (want) {
        if (have && (have === want || (have.adopted ? routeSatisfies(have.route, want.route) : have.sig === want.sig))) {
          if (have !== want) this.installed.set(k, want);
          continue;
        }
        dsts.push(k); shapes.push(want); prevs.push(have);
      } else if (have) {
        if (have.adopted && this.holding) continue;
        toDelete.push(have.adopted ? have.route : { ...have.route, dst: k });
        delPrev.push(have);
      }
    }
    const report: FlushReport = { replaced: 0, deleted: 0, errors: [], ms: 0 };
    let waiting = (dsts.length ? 1 : 0) + (toDelete.length ? 1 : 0);
    const finish = () => { if (--waiting === 0) { report.ms = performance.now() - t0; done(report); } };
    const onReplaced = (errs: (Error | undefined)[]) => {
      for (let i = 0; i < dsts.length; i++) {
        const e = errs[i];
        if (!e) { report.replaced++; continue; }
        const k = dsts[i];
        report.errors.push({ route: { ...shapes[i].route, dst: k }, op: 'replace', error: e });
        if (this.installed.get(k) === shapes[i]) { const p = prevs[i]; if (p) this.installed.set(k, p); else this.installed.delete(k); }
        if (!this.dirty.has(k)) this.dirty.set(k, this.desired.get(k));
      }
      finish();
    };
    const onDeleted = (errs: (Error | undefined)[]) => {
      for (let i = 0; i < toDelete.length; i++) {
        const e = errs[i];
        if (!e) { report.deleted++; continue; }
        const k = toDelete[i].dst;
        report.errors.push({ route: toDelete[i], op: 'del', error: e });
        if (!this.installed.has(k)) this.installed.set(k, delPrev[i]);
        if (!this.dirty.has(k)) this.dirty.set(k, this.desired.get(k));
      }
      finish();
    };
    if (dsts.length) {
      const scratch = new Map<RouteShape, KRoute>();
      const started = table.replaceEachAsync(dsts.length, (i) => {
        const sh = shapes[i];
        let r = scratch.get(sh);
        if (!r) { r = { ...sh.route }; scratch.set(sh, r); }
        r.dst = dsts[i];
        return r;
      }, onReplaced);
      if (!started) return false;
    }
    this.dirty = new Map();
    for (let i = 0; i < dsts.length; i++) this.installed.set(dsts[i], shapes[i]);
    for (const r of toDelete) this.installed.delete(r.dst);
    if (toDelete.length && !table.delAsync(toDelete, onDeleted)) {
      // The writer failed since the replaces went out (it fails them all): delete here.
      onDeleted(table.del(toDelete));
    }
    if (waiting === 0) { report.ms = performance.now() - t0; done(report); }
    return true;
  }

  private apply(dsts: string[], replaceShapes: RouteShape[], toDelete: KRoute[], report: FlushReport): void {
    if (dsts.length) {
      let errs: (Error | undefined)[];
      if (this.table.replaceEach) {
        // One scratch route per shape, its dst set per call: nothing allocated per route.
        const scratch = new Map<RouteShape, KRoute>();
        errs = this.table.replaceEach(dsts.length, (i) => {
          const sh = replaceShapes[i];
          let r = scratch.get(sh);
          if (!r) { r = { ...sh.route }; scratch.set(sh, r); }
          r.dst = dsts[i];
          return r;
        });
      } else {
        errs = this.table.replace(dsts.map((dst, i) => ({ ...replaceShapes[i].route, dst })));
      }
      for (let i = 0; i < dsts.length; i++) {
        const e = errs[i];
        const k = dsts[i];
        if (e) { report.errors.push({ route: { ...replaceShapes[i].route, dst: k }, op: 'replace', error: e }); if (!this.dirty.has(k)) this.dirty.set(k, replaceShapes[i]); continue; }
        this.installed.set(k, replaceShapes[i]);
        report.replaced++;
      }
    }
    if (toDelete.length) {
      const errs = this.table.del(toDelete);
      for (let i = 0; i < toDelete.length; i++) {
        const e = errs[i];
        const k = toDelete[i].dst;
        if (e) { report.errors.push({ route: toDelete[i], op: 'del', error: e }); if (!this.dirty.has(k)) this.dirty.set(k, undefined); continue; }
        this.installed.delete(k);
        report.deleted++;
      }
    }
  }

  /** Routes currently believed installed (for tests and status). */
  installedRoutes(): KRoute[] { return [...this.installed].map(([dst, s]) => (s.adopted ? s.route : { ...s.route, dst })); }

  /** Number of routes believed installed. */
  get installedCount(): number { return this.installed.size; }
}

/** A RouteTable over lib/netlink in the calling thread's namespace. */
export function netlinkRouteTable(nl: unknown): RouteTable {
  // Lazily required: the plugin's ADD path never loads the agent's route code.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const rt = require('../netlink/route') as typeof import('../netlink/route');
  const sock = nl as Parameters<typeof rt.listRoutes>[0];
  const norm = (res: unknown, n: number): (Error | undefined)[] => {
    const arr = Array.isArray(res) ? res : [];
    const out: (Error | undefined)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const e = arr[i] as unknown;
      out[i] = e instanceof Error ? e : (e && typeof e === 'object' && (e as { error?: unknown }).error instanceof Error)
        ? (e as { error: Error }).error : undefined;
    }
    return out;
  };
  // The worker thread that writes batches (lib/netlink/batch-worker.ts), started on first use.
  let worker: import('../netlink/batch-worker').BatchWorker | undefined;
  let writer: import('../netlink/codec').NlWriter | undefined;
  return {
    list(protocol) {
      const out: KRoute[] = [];
      for (const family of [4, 6] as const) {
        for (const r of rt.listRoutes(sock, { family, protocol, table: 254 }) as KRoute[]) {
          if (r.protocol !== undefined && r.protocol !== protocol) continue;
          if (!tryParseCidr(r.dst)) continue;
          out.push(r);
        }
      }
      return out;
    },
    replace(routes) { return norm(rt.replaceRoutes(sock, routes as never), routes.length); },
    replaceEach(count, routeAt) {
      const mw = replaceWriter();
      const errs = sock.batch((i) => `replace route ${routeAt(i).dst}`, count, (w, i, seq) => mw.write(w, routeAt(i) as never, seq));
      return norm(errs, count);
    },
    del(routes) {
      const errs = norm(rt.delRoutes(sock, routes as never), routes.length);
      return errs.map((e) => (e && (e as { notFound?: boolean }).notFound ? undefined : e));
    },
    replaceEachAsync(count, routeAt, done) {
      const mw = replaceWriter();
      return sendAsync(count, (i) => `replace route ${routeAt(i).dst}`, (w, i, seq) => mw.write(w, routeAt(i) as never, seq),
        (errs) => done(norm(errs, count)));
    },
    delAsync(routes, done) {
      const c = require('../netlink/constants') as typeof import('../netlink/constants');
      const mw = new rt.RouteMessageWriter(c.RTM_DELROUTE, 0, true);
      return sendAsync(routes.length, (i) => `delete route ${routes[i].dst}`, (w, i, seq) => mw.write(w, routes[i] as never, seq),
        (errs) => done(norm(errs, routes.length).map((e) => (e && (e as { notFound?: boolean }).notFound ? undefined : e))));
    },
  };

  function replaceWriter(): import('../netlink/route').RouteMessageWriter {
    const c = require('../netlink/constants') as typeof import('../netlink/constants');
    return new rt.RouteMessageWriter(c.RTM_NEWROUTE, c.NLM_F_CREATE | c.NLM_F_REPLACE);
  }

  /**
   * The writer thread, started on the first write: its start-up (a V8 isolate, koffi, a socket)
   * then overlaps decoding of the rest of the first table. Undefined when unavailable.
   */
  function getWorker(): import('../netlink/batch-worker').BatchWorker | undefined {
    if (process.env.BRINDLE_ROUTE_WORKER === '0') return undefined;
    if (!worker) {
      if (typeof (sock as unknown as { fd?: unknown }).fd !== 'number') return undefined;
      try {
        const { BatchWorker } = require('../netlink/batch-worker') as typeof import('../netlink/batch-worker');
        const { nativeAddonPath } = require('../native/addon') as typeof import('../native/addon');
        worker = new BatchWorker(nativeAddonPath('koffi'), (sock as unknown as { fd: number }).fd);
      } catch {
        return undefined;
      }
    }
    return worker.failed ? undefined : worker;
  }

  function sendAsync(count: number, op: (i: number) => string,
    write: (w: import('../netlink/codec').NlWriter, i: number, seq: number) => void,
    done: (errs: (Error | undefined)[]) => void): boolean {
    const worker = getWorker();
    if (!worker) return false;
    const { NlWriter } = require('../netlink/codec') as typeof import('../netlink/codec');
    const w = (writer ??= new NlWriter(1 << 16));
    w.reset();
    const base = worker.reserve(count);
    for (let i = 0; i < count; i++) write(w, i, (base + i) >>> 0);
    const buf = (w.buf.buffer as ArrayBuffer).slice(w.buf.byteOffset, w.buf.byteOffset + w.off);
    worker.submit(buf, w.off, count, base, op, (errs) => {
      if (Array.isArray(errs)) { done(errs); return; }
      done(new Array(count).fill(errs));
    });
    return true;
  }
}

