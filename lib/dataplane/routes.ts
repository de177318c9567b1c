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

interface Installed { route: KRoute; adopted: boolean }

/** Keeps the kernel's protocol-177 routes equal to the desired set. */
export class RouteProgrammer {
  private readonly desired = new Map<string, KRoute>();
  private readonly installed = new Map<string, Installed>();
  private readonly dirty = new Set<string>();
  private holding = false;
  readonly protocol: number;

  constructor(private readonly table: RouteTable, opts: { protocol?: number } = {}) {
    this.protocol = opts.protocol ?? RTPROT_BRINDLE;
  }

  /**
   * Adopts the routes a previous run left in the kernel. With `hold`, adopted routes that are
   * not desired stay until releaseStale() (graceful restart: peers re-announce first).
   */
  adopt(opts: { hold?: boolean } = {}): number {
    const found = this.table.list(this.protocol);
    for (const r of found) {
      const k = routeKey(r);
      this.installed.set(k, { route: r, adopted: true });
      this.dirty.add(k);
    }
    this.holding = !!opts.hold;
    return found.length;
  }

  /** Ends the hold: adopted routes nobody wants are removed at the next flush. */
  releaseStale(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const [k, v] of this.installed) if (v.adopted && !this.desired.has(k)) this.dirty.add(k);
  }

  get holdingStale(): boolean { return this.holding; }

  /** Sets (or, with undefined, clears) the desired route for one destination. */
  set(family: 4 | 6, dst: string, route: KRoute | undefined): void {
    const k = family === 4 ? `4|${dst}` : `6|${dst}`;
    if (route) {
      const cur = this.desired.get(k);
      if (cur && routeSignature(cur) === routeSignature(route)) return;
      route.protocol = this.protocol;
      this.desired.set(k, route);
    } else if (!this.desired.delete(k)) {
      return;
    }
    this.dirty.add(k);
  }

  /** Replaces the whole desired set (full recompute); only differences become dirty. */
  setAll(routes: KRoute[]): void {
    const next = new Map<string, KRoute>();
    for (const r of routes) next.set(routeKey(r), r);
    for (const k of this.desired.keys()) if (!next.has(k)) { this.desired.delete(k); this.dirty.add(k); }
    for (const [k, r] of next) {
      const cur = this.desired.get(k);
      if (cur && routeSignature(cur) === routeSignature(r)) continue;
      this.desired.set(k, { ...r, protocol: this.protocol });
      this.dirty.add(k);
    }
  }

  /** The desired routes (for status and tests). */
  desiredRoutes(): KRoute[] { return [...this.desired.values()]; }

  get pending(): number { return this.dirty.size; }

  /** Applies every pending difference to the kernel in batches; failed routes stay pending. */
  flush(): FlushReport {
    const t0 = performance.now();
    const toReplace: KRoute[] = [];
    const replaceKeys: string[] = [];
    const toDelete: KRoute[] = [];
    const deleteKeys: string[] = [];
    for (const k of this.dirty) {
      const want = this.desired.get(k);
      const have = this.installed.get(k);
      if (want) {
        if (have && (have.adopted ? routeSatisfies(have.route, want) : routeSignature(have.route) === routeSignature(want))) {
          this.dirty.delete(k);
          if (have.adopted) this.installed.set(k, { route: want, adopted: false });
          continue;
        }
        toReplace.push(want);
        replaceKeys.push(k);
      } else if (have) {
        if (have.adopted && this.holding) { this.dirty.delete(k); continue; }
        toDelete.push(have.route);
        deleteKeys.push(k);
      } else {
        this.dirty.delete(k);
      }
    }
    const report: FlushReport = { replaced: 0, deleted: 0, errors: [], ms: 0 };
    if (toReplace.length) {
      const errs = this.table.replace(toReplace);
      for (let i = 0; i < toReplace.length; i++) {
        const e = errs[i];
        if (e) { report.errors.push({ route: toReplace[i], op: 'replace', error: e }); continue; }
        const k = replaceKeys[i];
        this.installed.set(k, { route: toReplace[i], adopted: false });
        this.dirty.delete(k);
        report.replaced++;
      }
    }
    if (toDelete.length) {
      const errs = this.table.del(toDelete);
      for (let i = 0; i < toDelete.length; i++) {
        const e = errs[i];
        if (e) { report.errors.push({ route: toDelete[i], op: 'del', error: e }); continue; }
        const k = deleteKeys[i];
        this.installed.delete(k);
        this.dirty.delete(k);
        report.deleted++;
      }
    }
    report.ms = performance.now() - t0;
    return report;
  }

  /** Routes currently believed installed (for tests and status). */
  installedRoutes(): KRoute[] { return [...this.installed.values()].map((v) => v.route); }
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
    del(routes) {
      const errs = norm(rt.delRoutes(sock, routes as never), routes.length);
      return errs.map((e) => (e && (e as { notFound?: boolean }).notFound ? undefined : e));
    },
  };
}
