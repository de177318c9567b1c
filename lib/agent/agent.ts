// The node agent: registers the node, watches the datastore (pools, blocks, affinities, nodes,
// BGP peers, BGP configuration), keeps the BGP speaker's peers/AS/originations equal to what
// they say, programs learned routes (plain, VXLAN, IPIP; ECMP) and blackholes into the kernel
// under protocol 177, keeps natOutgoing rules, and serves status and metrics. Every change is
// applied live; stopping keeps routes in the kernel (graceful restart both ways).
import { EventEmitter } from 'node:events';
import path = require('node:path');
import type { Datastore, Kind, Resource, Watch } from '../datastore/types';
import { ConflictError, NotFoundError } from '../datastore/types';
import { formatIp, parseCidr, tryParseCidr, tryParseIp, networkOf, type Cidr } from '../ip';
import { computePeers, nodeAddress, nodeAsn, type PeerConfig } from './peers';
import { computeOriginations } from './originations';
import { blackholeRoute, Forwarder, type ForwardingContext, type PoolInfo, type RemoteNode } from './forwarding';
import { RouteProgrammer, type RouteShape, type RouteTable } from '../dataplane/routes';
import { Metrics } from './metrics';
import { serveStatus, SOCKET_NAME, type AgentStatus } from './status';
import type { AgentLog } from './log';

export interface RouteChange { prefix: string; family: 4 | 6; nextHops: string[] }
export interface PeerStatus { address: string; port?: number; asn: number; type: string; state: string; since: number; info: string; received: number; advertised: number }

/** What the agent needs of lib/bgp/speaker.ts Speaker. */
export interface SpeakerLike extends EventEmitter {
  start(): Promise<void>;
  stop(opts?: { graceful?: boolean }): Promise<void>;
  setPeers(peers: PeerConfig[]): void;
  setAsn(asn: number): void;
  /** Route reflector cluster ID of this node, or undefined when it is not a reflector. */
  setClusterId(clusterId: string | undefined): void;
  setOriginated(routes: { prefix: string; nextHop?: string; communities?: number[] }[]): void;
  status(): PeerStatus[];
  /**
   * The learned routes now in the Loc-RIB (prefix, best next hops). When the speaker has this,
   * the agent keeps no copy of its own; without it the agent remembers what 'routes' told it.
   */
  routes?(): Iterable<[string, string[]]>;
}

export interface SpeakerOptions { routerId: string; asn: number; listenAddress?: string; listenPort?: number; clusterId?: string; gracefulRestartTime?: number; restarting?: boolean }

/** The kernel side of the agent (netlink in its namespace); a fake in unit tests. */
export interface Dataplane {
  routeTable: RouteTable;
  detect(family: 4 | 6, rule: string): { cidr: string; index: number } | undefined;
  linkOfAddress(address: string): number | undefined;
  /** The address as configured on an interface ("a/len"), if it is. */
  addressOf(address: string): { cidr: string; index: number } | undefined;
  resolve(nh: string): { gateway?: string; oif?: number } | undefined;
  linkMtu(index: number): number | undefined;
  ensureVxlan(opts: { localIp: string; mac: string; tunnelAddress: string; mtu?: number }): number;
  removeVxlan(): void;
  syncVteps(index: number, peers: { nodeIp: string; tunnelAddress: string; mac: string }[]): Error[];
  tunlIndex(): number | undefined;
  applyNat(pools: { cidr: string; natOutgoing: boolean; disabled?: boolean }[]): Promise<void>;
  enableForwarding(): void;
}

export interface AgentOptions {
  nodeName: string;
  ds: Datastore;
  runDir: string;
  log: AgentLog;
  dataplane: Dataplane;
  newSpeaker: (opts: SpeakerOptions) => SpeakerLike;
  nodeIp?: string;
  nodeIp6?: string;
  autodetect?: string;
  asn?: number;
  listenPort?: number;
  metricsPort?: number;
  metricsHost?: string;
  rrClusterId?: string;
  /** Adopted routes not re-announced are removed after this long at most (default 120 s). */
  staleTimeMs?: number;
  /** Allocates the VXLAN tunnel address (default: lib/ipam Ipam.autoAssign). */
  allocTunnelAddress?: (node: string, pools: string[]) => Promise<string | undefined>;
}

/**
 * Pending kernel changes written at once, at the latest (see onRoutes); otherwise they are
 * written when the input read so far is handled (setImmediate). Larger batches (16,384 was
 * tried) lengthen the tail after the last UPDATE: the kernel writes the last batch alone.
 */
const FLUSH_BATCH = 4096;

const WATCHED: Kind[] = ['IPPool', 'IPAMBlock', 'BlockAffinity', 'Node', 'BGPPeer', 'BGPConfiguration'];

export class Agent {
  private readonly cache = new Map<Kind, Map<string, Resource>>();
  private readonly watches = new Map<Kind, Watch>();
  /** Learned routes, kept only when the speaker cannot list its own (routes()). */
  private learned?: Map<string, string[]>;
  private speaker?: SpeakerLike;
  private programmer: RouteProgrammer;
  readonly metrics: Metrics;
  private ctx?: ForwardingContext;
  private fwd?: Forwarder;
  private asn = 0;
  private routerId = '';
  private myCidr4?: string;
  private myCidr6?: string;
  private problems = new Map<string, string>();
  private recomputeQueued = false;
  private recomputing?: Promise<void>;
  private flushQueued = false;
  private retryTimer?: NodeJS.Timeout;
  private staleTimer?: NodeJS.Timeout;
  private staleCheck?: NodeJS.Timeout;
  private stopped = false;
  private statusServer?: import('node:net').Server;
  private natKey?: string;
  private vxlan?: { index: number; tunnelAddress: string; mac: string };
  private tunnelAlloc?: Promise<void>;
  private readonly events = new EventEmitter();
  private readonly eor = new Set<string>();

  constructor(private readonly o: AgentOptions) {
    this.programmer = new RouteProgrammer(o.dataplane.routeTable);
    this.metrics = new Metrics(() => this.peerStatus());
  }

  /** Resolves when the next recompute (config applied to speaker and kernel) has finished. */
  onceApplied(): Promise<void> { return new Promise((r) => this.events.once('applied', r)); }

  async start(): Promise<void> {
    const { o } = this;
    try { o.dataplane.enableForwarding(); } catch (err) { this.problem('forwarding', `enable ip forwarding: ${(err as Error).message}`); }
    await this.register();
    for (const k of WATCHED) await this.listAndWatch(k);
    const adopted = this.programmer.adopt({ hold: true });
    o.log.info(`adopted ${adopted} routes of protocol ${this.programmer.protocol} from the kernel`);
    const me = this.me()!;
    const cfg = this.bgpConfig();
    this.asn = nodeAsn(me.spec, cfg);
    this.routerId = nodeAddress(me.spec, 4) ?? routerIdFromName(o.nodeName);
    this.speaker = o.newSpeaker({
      routerId: this.routerId, asn: this.asn,
      listenPort: o.listenPort ?? cfg?.listenPort ?? 179,
      clusterId: me.spec.bgp?.routeReflectorClusterID,
      gracefulRestartTime: 120,
      restarting: adopted > 0,
    });
    if (typeof this.speaker.routes !== 'function') this.learned = new Map();
    this.speaker.on('routes', (changes: RouteChange[]) => this.onRoutes(changes));
    // Each session carries the family of its peer's address (IPv4 peers IPv4 routes, IPv6 peers
    // IPv6, as Calico peers): a peer's End-of-RIB is the one for that family.
    this.speaker.on('endOfRib', (address: string, family: number) => { if (family === (address.includes(':') ? 6 : 4)) this.eor.add(address); });
    await this.speaker.start();
    await this.recompute();
    this.armStale();
    this.statusServer = await serveStatus(path.join(o.runDir, SOCKET_NAME), () => this.status());
    if (o.metricsPort) await this.metrics.listen(o.metricsPort, o.metricsHost ?? '127.0.0.1');
    o.log.info(`agent ${o.nodeName} started`, { asn: this.asn, routerId: this.routerId });
  }

  /** Stops without touching the kernel's routes; peers keep ours through graceful restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.watches.values()) { try { w.close(); } catch { /* closed */ } }
    for (const t of [this.retryTimer, this.staleTimer, this.staleCheck]) if (t) clearTimeout(t);
    this.metrics.close();
    this.statusServer?.close();
    await this.speaker?.stop({ graceful: true }).catch(() => undefined);
  }

  // ---- registration ----

  private async register(): Promise<void> {
    const { o } = this;
    const addr4 = o.nodeIp ? this.withLength(o.nodeIp) : undefined;
    const addr6 = o.nodeIp6 ? this.withLength(o.nodeIp6) : undefined;
    let detected4 = addr4, detected6 = addr6;
    if (!detected4 && !detected6) {
      detected4 = o.dataplane.detect(4, o.autodetect ?? 'first-found')?.cidr;
      detected6 = o.dataplane.detect(6, o.autodetect ?? 'first-found')?.cidr;
      if (!detected4 && !detected6) throw new Error(`node ${o.nodeName}: no address found to autodetect (rule ${o.autodetect ?? 'first-found'})`);
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      let cur: Resource<'Node'> | undefined;
      try { cur = await o.ds.get('Node', o.nodeName); } catch (err) { if (!(err instanceof NotFoundError)) throw err; }
      const spec = structuredClone(cur?.spec ?? {});
      const bgp = { ...(spec.bgp ?? {}) };
      if (detected4) bgp.ipv4Address = detected4;
      if (detected6) bgp.ipv6Address = detected6;
      if (o.asn !== undefined) bgp.asNumber = o.asn;
      if (o.rrClusterId !== undefined) { if (o.rrClusterId) bgp.routeReflectorClusterID = o.rrClusterId; else delete bgp.routeReflectorClusterID; }
      spec.bgp = bgp;
      if (cur && JSON.stringify(cur.spec) === JSON.stringify(spec)) break;
      try {
        if (cur) await o.ds.update({ ...cur, spec });
        else await o.ds.create({ kind: 'Node', metadata: { name: o.nodeName, labels: {} }, spec });
        break;
      } catch (err) {
        if (!(err instanceof ConflictError) && !(err as Error).name?.includes('AlreadyExists')) throw err;
      }
    }
    this.myCidr4 = detected4; this.myCidr6 = detected6;
  }

  /** "a" → "a/len" using the prefix of the interface holding it (else /32, /128). */
  private withLength(text: string): string {
    if (text.includes('/')) return text;
    const ip = tryParseIp(text);
    if (!ip) throw new Error(`node address ${text}: not an address`);
    // Canonical text (RFC 5952), as the kernel reports interface addresses and peers see us.
    const canonical = formatIp(ip);
    const found = this.o.dataplane.addressOf(canonical);
    if (found) return found.cidr;
    return `${canonical}/${ip.family === 4 ? 32 : 128}`;
  }

  // ---- datastore watches ----

  private async listAndWatch(kind: Kind): Promise<void> {
    const res = await this.o.ds.list(kind);
    const m = new Map<string, Resource>();
    for (const r of res.items) m.set(r.metadata.name, r);
    this.cache.set(kind, m);
    this.watches.get(kind)?.close();
    const w = this.o.ds.watch(kind, res.revision, {
      onEvent: (ev) => {
        const map = this.cache.get(kind)!;
        if (ev.type === 'DELETED') map.delete(ev.object.metadata.name);
        else map.set(ev.object.metadata.name, ev.object as Resource);
        this.scheduleRecompute();
      },
      onError: (err) => {
        if (this.stopped) return;
        this.o.log.warn(`watch ${kind}: ${err.message}; relisting`);
        setTimeout(() => { if (!this.stopped) this.listAndWatch(kind).then(() => this.scheduleRecompute(), (e) => this.watchFailed(kind, e)); }, 1000);
      },
    });
    this.watches.set(kind, w);
  }

  private watchFailed(kind: Kind, err: Error): void {
    this.problem(`watch:${kind}`, `watch ${kind}: ${err.message}`);
    setTimeout(() => { if (!this.stopped) this.listAndWatch(kind).then(() => { this.problems.delete(`watch:${kind}`); this.scheduleRecompute(); }, (e) => this.watchFailed(kind, e)); }, 2000);
  }

  private list<K extends Kind>(kind: K): Resource<K>[] {
    return [...(this.cache.get(kind)?.values() ?? [])] as Resource<K>[];
  }
  private me(): Resource<'Node'> | undefined { return this.cache.get('Node')?.get(this.o.nodeName) as Resource<'Node'> | undefined; }
  private bgpConfig() { return (this.cache.get('BGPConfiguration')?.get('default') as Resource<'BGPConfiguration'> | undefined)?.spec; }

  private scheduleRecompute(): void {
    if (this.recomputeQueued || this.stopped) return;
    this.recomputeQueued = true;
    setTimeout(() => {
      this.recomputeQueued = false;
      const prev = this.recomputing ?? Promise.resolve();
      this.recomputing = prev.then(() => {
        const t0 = performance.now();
        return this.recompute().then(() => this.o.log.debug(`recompute: done in ${(performance.now() - t0).toFixed(1)} ms`));
      }).catch((err) => this.o.log.error(`recompute: ${(err as Error).message}`));
    }, 20);
  }

  // ---- desired state ----

  private async recompute(): Promise<void> {
    if (this.stopped || !this.speaker) return;
    const { o } = this;
    let me = this.me();
    if (!me) {
      // Someone deleted our node record: register again.
      await this.register();
      me = await o.ds.get('Node', o.nodeName);
      this.cache.get('Node')!.set(o.nodeName, me);
    }
    const cfg = this.bgpConfig();
    const nodes = this.list('Node');
    const asn = nodeAsn(me.spec, cfg);
    if (asn !== this.asn) {
      o.log.info(`as number ${this.asn} → ${asn}: re-establishing sessions`);
      this.asn = asn;
      this.speaker.setAsn(asn);
    }
    this.speaker.setClusterId(me.spec.bgp?.routeReflectorClusterID || undefined);
    this.speaker.setPeers(computePeers({ thisNode: me, nodes, bgpPeers: this.list('BGPPeer'), bgpConfig: cfg }));
    const orig = computeOriginations({ node: o.nodeName, blocks: this.list('IPAMBlock'), affinities: this.list('BlockAffinity') });
    this.speaker.setOriginated([...orig.blocks, ...orig.borrowed].map((prefix) => ({ prefix })));

    const pools = this.list('IPPool').filter((p) => tryParseCidr(p.spec.cidr));
    await this.syncVxlan(me, nodes, pools);
    await this.syncNat(pools);

    const my4 = nodeAddress(me.spec, 4), my6 = nodeAddress(me.spec, 6);
    const uplinkSubnets: Cidr[] = [];
    for (const c of [me.spec.bgp?.ipv4Address, me.spec.bgp?.ipv6Address]) {
      const p = c ? tryParseCidr(c, { loose: true }) : undefined;
      if (p) uplinkSubnets.push(networkOf(p));
    }
    const nodesByIp = new Map<string, RemoteNode>();
    for (const n of nodes) {
      for (const f of [4, 6] as const) {
        const a = nodeAddress(n.spec, f);
        if (a) nodesByIp.set(a, { name: n.metadata.name, vxlanTunnelAddress: n.spec.vxlanTunnelAddress, vxlanTunnelMACAddr: n.spec.vxlanTunnelMACAddr });
      }
    }
    let tunl: number | undefined;
    const needIpip = pools.some((p) => !p.spec.disabled && p.spec.ipipMode && p.spec.ipipMode !== 'Never');
    if (needIpip) {
      try { tunl = o.dataplane.tunlIndex(); } catch { tunl = undefined; }
      if (tunl === undefined) this.problem('ipip', 'ipip device tunl0 missing (no ipip module): ipip pools are routed without encapsulation');
      else this.problems.delete('ipip');
    } else this.problems.delete('ipip');
    this.ctx = {
      myAddrs: new Set([my4, my6].filter((x): x is string => !!x)),
      uplinkSubnets,
      uplinkIndex: my4 ? o.dataplane.linkOfAddress(my4) : my6 ? o.dataplane.linkOfAddress(my6) : undefined,
      pools: pools.map((p): PoolInfo => ({ cidr: parseCidr(p.spec.cidr, { loose: true }), vxlanMode: p.spec.vxlanMode ?? 'Never', ipipMode: p.spec.ipipMode ?? 'Never', disabled: p.spec.disabled })),
      nodesByIp,
      ownPrefixes: new Set([...orig.blocks, ...orig.borrowed]),
      vxlanIndex: this.vxlan?.index,
      tunlIndex: tunl,
      resolve: (nh) => { try { return o.dataplane.resolve(nh); } catch { return undefined; } },
    };
    this.fwd = new Forwarder(this.ctx);
    const desired = new Map<string, RouteShape>();
    for (const b of orig.blocks) desired.set(b, this.programmer.shape(blackholeRoute(b)));
    const routeProblems: string[] = [];
    for (const [prefix, nhs] of this.learnedSource()) {
      const s = this.forward(prefix, nhs, routeProblems);
      if (s) desired.set(prefix, s);
    }
    this.setRouteProblems(routeProblems);
    this.programmer.setAllShapes(desired);
    this.flushNow();
    this.events.emit('applied');
  }

  private learnedSource(): Iterable<[string, string[]]> {
    return this.learned ?? this.speaker?.routes?.() ?? [];
  }

  /** The shape of the kernel route for a learned prefix (undefined: none), problems appended. */
  private forward(prefix: string, nhs: string[], problems: string[]): RouteShape | undefined {
    const d = this.fwd!.decide(prefix, nhs);
    if (!d) return undefined;
    const rep = d.route?.dst;
    if (d.problems.length) for (const p of d.problems) problems.push(rep && rep !== prefix ? p.replace(rep, prefix) : p);
    if (!d.route) return undefined;
    return (d.shape ??= this.programmer.shape(d.route)) as RouteShape;
  }

  private setRouteProblems(list: string[]): void {
    for (const k of [...this.problems.keys()]) if (k.startsWith('route:')) this.problems.delete(k);
    for (const p of list.slice(0, 20)) this.problems.set(`route:${p}`, p);
  }

  // Without speaker.routes(): 100,000 routes from one peer share a few next-hop lists, one array each.
  private readonly hopLists = new Map<string, string[]>();
  private intern(nhs: string[]): string[] {
    const k = nhs.length === 1 ? nhs[0] : nhs.join(',');
    let v = this.hopLists.get(k);
    if (!v) { if (this.hopLists.size > 10000) this.hopLists.clear(); v = nhs.slice(); this.hopLists.set(k, v); }
    return v;
  }

  private onRoutes(changes: RouteChange[]): void {
    if (this.stopped) return;
    const problems: string[] = [];
    const learned = this.learned;
    const ctx = this.ctx;
    for (const ch of changes) {
      if (learned) {
        if (ch.nextHops.length === 0) learned.delete(ch.prefix);
        else learned.set(ch.prefix, this.intern(ch.nextHops));
      }
      if (!ctx || ctx.ownPrefixes.has(ch.prefix)) continue;
      this.programmer.setShape(ch.prefix, ch.nextHops.length ? this.forward(ch.prefix, ch.nextHops, problems) : undefined);
    }
    if (problems.length) this.o.log.warn(`routes: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (+${problems.length - 3})` : ''}`);
    // While a table streams in, program the kernel as it comes (pipelined), not at the end: what
    // one read burst brought is written when the burst is handled, a long burst every FLUSH_BATCH.
    if (this.programmer.pending >= FLUSH_BATCH) this.flushNow();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => { this.flushQueued = false; this.flushNow(); });
  }

  private flushNow(): void {
    if (this.programmer.pending === 0) return;
    let r: ReturnType<RouteProgrammer['flush']>;
    try {
      // Kernel writes on another thread when the table can (they overlap BGP decoding).
      this.o.log.debug(`routes: writing ${this.programmer.pending} changes`);
      if (this.programmer.flushAsync((rep) => { if (!this.stopped) this.flushed(rep); })) return;
      r = this.programmer.flush();
    } catch (err) {
      // The netlink socket itself failed (not one route): keep everything pending and retry.
      this.problem('programming', `route programming: ${(err as Error).message}`);
      if (!this.retryTimer) this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.flushNow(); }, 2000);
      return;
    }
    this.flushed(r);
  }

  private flushed(r: ReturnType<RouteProgrammer['flush']>): void {
    this.metrics.observeProgramming(r.ms / 1000);
    this.metrics.routeErrors += r.errors.length;
    this.metrics.routesInstalled = this.programmer.installedCount;
    if (r.errors.length) {
      const first = r.errors[0];
      this.problem('programming', `${first.op} route ${first.route.dst}: ${first.error.message}${r.errors.length > 1 ? ` (+${r.errors.length - 1} more)` : ''}`);
      this.o.log.warn(`route programming: ${r.errors.length} errors, first: ${first.error.message}`);
      if (!this.retryTimer) this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.flushNow(); }, 2000);
    } else {
      this.problems.delete('programming');
    }
    if (r.replaced + r.deleted > 0) this.o.log.debug(`routes: ${r.replaced} replaced, ${r.deleted} deleted in ${r.ms.toFixed(1)} ms`);
  }

  /**
   * Ends the graceful-restart hold on adopted routes (RFC 4724 §4.2: stale until End-of-RIB)
   * once every peer sent End-of-RIB, or every peer is Established for 10 s, or at the deadline.
   */
  private armStale(): void {
    const deadline = this.o.staleTimeMs ?? 120_000;
    this.staleTimer = setTimeout(() => this.releaseStale('stale timer'), deadline);
    let since = 0;
    const check = () => {
      const st = this.speaker?.status() ?? [];
      if (st.length > 0 && st.every((p) => this.eor.has(p.address))) { this.releaseStale('end-of-rib from every peer'); return; }
      const up = st.length > 0 && st.every((p) => p.state === 'Established');
      since = up ? (since || Date.now()) : 0;
      if (since && Date.now() - since >= 10_000) { this.releaseStale('all peers established'); return; }
      this.staleCheck = setTimeout(check, 1000);
    };
    this.staleCheck = setTimeout(check, 1000);
  }

  private releaseStale(why: string): void {
    if (!this.programmer.holdingStale) return;
    if (this.staleTimer) clearTimeout(this.staleTimer);
    if (this.staleCheck) clearTimeout(this.staleCheck);
    this.o.log.info(`releasing stale routes (${why})`);
    this.programmer.releaseStale();
    this.flushNow();
  }

  // ---- VXLAN ----

  private async syncVxlan(me: Resource<'Node'>, nodes: Resource<'Node'>[], pools: Resource<'IPPool'>[]): Promise<void> {
    const { o } = this;
    const vxPools = pools.filter((p) => !p.spec.disabled && p.spec.vxlanMode && p.spec.vxlanMode !== 'Never' && tryParseCidr(p.spec.cidr)?.family === 4);
    const my4 = nodeAddress(me.spec, 4);
    if (vxPools.length === 0 || !my4) {
      if (this.vxlan) { try { o.dataplane.removeVxlan(); } catch { /* gone */ } this.vxlan = undefined; }
      return;
    }
    const { vtepMac } = require('../dataplane/vxlan') as typeof import('../dataplane/vxlan');
    const mac = vtepMac(o.nodeName);
    let tunnelAddress = me.spec.vxlanTunnelAddress;
    if (!tunnelAddress || !vxPools.some((p) => { const c = tryParseCidr(p.spec.cidr); const ip = tryParseIp(tunnelAddress!); return c && ip && require('../ip').cidrContains(c, ip); })) {
      if (!this.tunnelAlloc) {
        this.tunnelAlloc = (async () => {
          const alloc = o.allocTunnelAddress ?? defaultTunnelAlloc(o.ds);
          const ip = await alloc(o.nodeName, vxPools.map((p) => p.metadata.name));
          if (!ip) throw new Error(`node ${o.nodeName}: no vxlan tunnel address available`);
          await this.publishNode((spec) => { spec.vxlanTunnelAddress = ip; spec.vxlanTunnelMACAddr = mac; });
        })().catch((err) => this.problem('vxlan', `vxlan tunnel address: ${(err as Error).message}`)).finally(() => { this.tunnelAlloc = undefined; });
      }
      return; // the node update comes back through the watch
    }
    if (me.spec.vxlanTunnelMACAddr !== mac) { await this.publishNode((spec) => { spec.vxlanTunnelMACAddr = mac; }); return; }
    try {
      const uplink = o.dataplane.linkOfAddress(my4);
      const mtu = uplink !== undefined ? o.dataplane.linkMtu(uplink) : undefined;
      const index = o.dataplane.ensureVxlan({ localIp: my4, mac, tunnelAddress, mtu: mtu ? mtu - 50 : undefined });
      this.vxlan = { index, tunnelAddress, mac };
      const peers = nodes.filter((n) => n.metadata.name !== o.nodeName && n.spec.vxlanTunnelAddress && n.spec.vxlanTunnelMACAddr && nodeAddress(n.spec, 4))
        .map((n) => ({ nodeIp: nodeAddress(n.spec, 4)!, tunnelAddress: n.spec.vxlanTunnelAddress!, mac: n.spec.vxlanTunnelMACAddr! }));
      const errs = o.dataplane.syncVteps(index, peers);
      if (errs.length) this.problem('vxlan', `vxlan peers: ${errs[0].message}`); else this.problems.delete('vxlan');
    } catch (err) {
      this.problem('vxlan', `vxlan device: ${(err as Error).message}`);
    }
  }

  private async publishNode(edit: (spec: Resource<'Node'>['spec']) => void): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const cur = await this.o.ds.get('Node', this.o.nodeName);
      const spec = structuredClone(cur.spec);
      edit(spec);
      if (JSON.stringify(spec) === JSON.stringify(cur.spec)) return;
      try { await this.o.ds.update({ ...cur, spec }); return; } catch (err) { if (!(err instanceof ConflictError)) throw err; }
    }
  }

  // ---- NAT ----

  private async syncNat(pools: Resource<'IPPool'>[]): Promise<void> {
    const list = pools.map((p) => ({ cidr: p.spec.cidr, natOutgoing: !!p.spec.natOutgoing, disabled: p.spec.disabled }));
    const key = JSON.stringify(list.filter((p) => p.natOutgoing).length ? list : []);
    if (key === this.natKey) return;
    try {
      await this.o.dataplane.applyNat(list);
      this.natKey = key;
      this.problems.delete('nat');
    } catch (err) {
      this.problem('nat', (err as Error).message);
    }
  }

  // ---- status ----

  private problem(key: string, text: string): void {
    if (this.problems.get(key) !== text) this.o.log.warn(text);
    this.problems.set(key, text);
  }

  private peerStatus(): PeerStatus[] {
    try { return this.speaker?.status() ?? []; } catch { return []; }
  }

  status(): AgentStatus {
    return {
      node: this.o.nodeName,
      asn: this.asn,
      routerId: this.routerId,
      peers: this.peerStatus(),
      problems: [...this.problems.values()],
      routes: { installed: this.programmer.installedCount, pending: this.programmer.pending },
    };
  }

  /** Learned routes (prefix → next hops), for tests. */
  learnedRoutes(): Map<string, string[]> { return new Map(this.learnedSource()); }
}

/** A router ID for a node with no IPv4 address: 4 bytes of a hash of its name. */
export function routerIdFromName(name: string): string {
  const h = require('node:crypto').createHash('sha256').update(name).digest();
  return `${h[0] | 1}.${h[1]}.${h[2]}.${h[3]}`;
}

function defaultTunnelAlloc(ds: Datastore): (node: string, pools: string[]) => Promise<string | undefined> {
  return async (node, pools) => {
    const { Ipam } = require('../ipam/allocator') as typeof import('../ipam/allocator');
    const ipam = new Ipam(ds);
    const r = await ipam.autoAssign({ handle: `vxlan-tunnel-addr-${node}`, node, num4: 1, num6: 0, attrs: { node, type: 'vxlanTunnelAddress' }, pools4: pools });
    return r.ips4[0]?.split('/')[0];
  };
}
