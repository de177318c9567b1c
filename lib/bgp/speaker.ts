// The BGP speaker the agent uses: peers (sessions, MD5, listener), the RIB, originations,
// export to each peer (packed UPDATEs, End-of-RIB), graceful restart as helper and as
// restarting speaker, and the batched 'routes' event with the best next hops per prefix.
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { Session, type SessionDown } from './session';
import { Rib, exportable, type Path, type PeerInfo } from './rib';
import { connectTcp, listenTcp, setMd5Key, type Listener } from './md5';
import { packAnnouncements, packWithdrawals, encodeEndOfRib, endOfRib, type DecodedUpdate } from './codec/update';
import { encodeRouteRefresh } from './codec/message';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST } from './codec/prefix';
import { AS_SEQUENCE, ORIGIN_IGP, type PathAttributes } from './codec/types';
import { CEASE, CEASE_ADMINISTRATIVE_SHUTDOWN, CEASE_PEER_DECONFIGURED, CEASE_OTHER_CONFIGURATION_CHANGE } from './errors';
import { realClock, type Clock, type TimerHandle } from './clock';
import type { State } from './fsm';
import { formatIp, tryParseIp } from '../ip';

export type PeerType = 'nodeMesh' | 'global' | 'nodeSpecific' | 'rrClient' | 'routeReflector';

export interface PeerConfig {
  address: string;
  port?: number;
  asn: number;
  password?: string;
  passive?: boolean;
  type: PeerType;
  /** This peer is our route-reflector client (we must have a clusterId). */
  rrClient?: boolean;
  localAddress?: string;
  holdTime?: number;
  /** Act as graceful-restart helper for this peer (default true). */
  gracefulRestart?: boolean;
}

export interface RouteChange { prefix: string; family: 4 | 6; nextHops: string[] }

export interface PeerStatus {
  address: string; port: number; asn: number; type: PeerType; state: State;
  since: number; info: string; received: number; advertised: number;
}

export interface OriginatedRoute { prefix: string; nextHop?: string; communities?: number[] }

export type Logger = (level: 'debug' | 'info' | 'warn', msg: string) => void;

export interface SpeakerOptions {
  routerId: string;
  asn: number;
  listenAddress?: string;
  /** 179 by default; 0 = no listener (only outbound sessions). */
  listenPort?: number;
  /** Route reflector cluster ID: when set, this speaker reflects routes (RFC 4456). */
  clusterId?: string;
  /** Graceful restart time advertised (seconds, default 120; 0 = no GR capability). */
  gracefulRestartTime?: number;
  clock?: Clock;
  log?: Logger;
  // Extensions beyond the contract (all optional):
  /** Set the R bit in the first OPEN to each peer: we restarted and kept forwarding state (RFC 4724). */
  restarting?: boolean;
  /** Network namespace path in which to make every socket (tests; an agent inside a node namespace). */
  netns?: string;
  /** Hold time proposed to peers without their own (default 90 s). */
  holdTime?: number;
  /** ConnectRetry time (default 5 s). */
  connectRetryTime?: number;
}

interface Peer {
  config: PeerConfig;
  info: PeerInfo;
  session: Session;
  adjOut: Map<string, Path>;
  staleTimer?: TimerHandle;
}

const DEFAULT_PORT = 179;
/** Loc-RIB changes handed on ('routes', Adj-RIB-Out) at least every this many prefixes. */
const FLUSH_BATCH = 4096;

/** A BGP-4 speaker. Events: 'routes' (RouteChange[]), 'endOfRib' (address, family), 'peerState' (address, state). */
export class Speaker extends EventEmitter {
  private readonly clock: Clock;
  private readonly log: Logger;
  private asn: number;
  private readonly rib: Rib;
  private readonly peers = new Map<string, Peer>();
  private tcpListeners: Listener[] = [];
  private originated = new Map<string, Path>();
  private readonly localPaths = new Map<string, Path>();
  private readonly local: PeerInfo;
  private flushScheduled = false;
  private started = false;

  constructor(private readonly o: SpeakerOptions) {
    super();
    this.clock = o.clock ?? realClock;
    this.log = o.log ?? (() => {});
    this.asn = o.asn;
    this.local = { address: '', routerId: o.routerId, asn: o.asn, ebgp: false, rrClient: false, local: true, received: 0 };
    this.rib = new Rib({ routerId: o.routerId, asn: o.asn, clusterId: o.clusterId });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const port = this.o.listenPort ?? DEFAULT_PORT;
    if (port !== 0) {
      const addrs = this.o.listenAddress ? [this.o.listenAddress] : ['0.0.0.0', '::'];
      for (const address of addrs) {
        try {
          this.tcpListeners.push(await listenTcp({ address, port, netns: this.o.netns }, (s) => this.onInbound(s)));
        } catch (err) {
          if (this.o.listenAddress || address === '0.0.0.0') throw err;
          this.log('info', `listen [${address}]:${port}: ${(err as Error).message}`); // no IPv6 here
        }
      }
      for (const p of this.peers.values()) this.applyMd5(p.config.address, p.config.password);
    }
    for (const p of this.peers.values()) p.session.start();
  }

  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.started = false;
    for (const p of this.peers.values()) {
      this.clock.clearTimeout(p.staleTimer);
      p.session.removeAllListeners();
      p.session.stop(opts.graceful ? { silent: true } : { notification: { code: CEASE, subcode: CEASE_ADMINISTRATIVE_SHUTDOWN } });
    }
    await Promise.all(this.tcpListeners.map((l) => l.close()));
    this.tcpListeners = [];
  }

  /** Replaces the peer set: unchanged peers keep their sessions; changed ones are reset. */
  setPeers(peers: PeerConfig[]): void {
    const want = new Map(peers.map((p) => [normalize(p.address), p]));
    for (const [addr, p] of this.peers) {
      const next = want.get(addr);
      if (next && JSON.stringify(next) === JSON.stringify(p.config)) continue;
      this.removePeer(p, next ? CEASE_OTHER_CONFIGURATION_CHANGE : CEASE_PEER_DECONFIGURED);
    }
    for (const [addr, cfg] of want) if (!this.peers.has(addr)) this.addPeer(addr, cfg);
    this.scheduleFlush();
  }

  /** Changes our AS number; every session is reset. */
  setAsn(asn: number): void {
    if (asn === this.asn) return;
    this.asn = asn;
    this.local.asn = asn;
    this.rib.opts.asn = asn;
    const configs = [...this.peers.values()].map((p) => p.config);
    for (const p of [...this.peers.values()]) this.removePeer(p, CEASE_OTHER_CONFIGURATION_CHANGE);
    for (const c of configs) this.addPeer(normalize(c.address), c);
    this.scheduleFlush();
  }

  /**
   * Makes this speaker a route reflector for `clusterId` (RFC 4456), or stops it being one
   * (undefined). Sessions are reset so peers re-learn what is now reflected.
   */
  setClusterId(clusterId: string | undefined): void {
    if ((clusterId || undefined) === this.o.clusterId) return;
    this.o.clusterId = clusterId || undefined;
    this.rib.opts.clusterId = clusterId || undefined;
    const configs = [...this.peers.values()].map((p) => p.config);
    for (const p of [...this.peers.values()]) this.removePeer(p, CEASE_OTHER_CONFIGURATION_CHANGE);
    for (const c of configs) this.addPeer(normalize(c.address), c);
    this.scheduleFlush();
  }

  /** Sets the routes this node originates; only the difference is announced or withdrawn. */
  setOriginated(routes: OriginatedRoute[]): void {
    const next = new Map<string, Path>();
    for (const r of routes) {
      const key = `${r.nextHop ?? ''}|${(r.communities ?? []).join(',')}`;
      let path = this.localPaths.get(key);
      if (!path) {
        path = { source: this.local, attrs: { origin: ORIGIN_IGP, communities: r.communities?.length ? r.communities.slice() : undefined }, nextHop: r.nextHop, stale: false, one: undefined, hops: undefined };
        this.localPaths.set(key, path);
      }
      next.set(r.prefix, path);
    }
    for (const [prefix, path] of next) if (this.originated.get(prefix) !== path) this.rib.announce(prefix, path);
    for (const prefix of this.originated.keys()) if (!next.has(prefix)) this.rib.withdraw(prefix, this.local);
    this.originated = next;
    this.scheduleFlush();
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => ({
      address: p.config.address, port: p.config.port ?? DEFAULT_PORT, asn: p.config.asn, type: p.config.type,
      state: p.session.state, since: p.session.since, info: p.session.info,
      received: this.rib.receivedFrom(p.info), advertised: p.adjOut.size,
    }));
  }

  /** Asks a peer to resend its routes (RFC 2918), when it supports route refresh. */
  requestRefresh(address: string): boolean {
    const p = this.peers.get(normalize(address));
    if (!p || p.session.state !== 'Established' || !p.session.peerRouteRefresh) return false;
    const msgs = [...p.session.families].map((afi) => encodeRouteRefresh({ afi, safi: SAFI_UNICAST }));
    return p.session.send(msgs);
  }

  /** The Loc-RIB's best next hops for a prefix (tests, status). */
  lookup(prefix: string): string[] | undefined {
    const b = this.rib.best(prefix);
    return b ? this.nextHopsOf(b).slice() : undefined;
  }

  /** Number of prefixes in the Loc-RIB. */
  get routeCount(): number { return this.rib.size; }

  /** Every learned route of the Loc-RIB with its best next hops (our own originations left out). */
  *routes(): IterableIterator<[string, string[]]> {
    for (const [prefix, best] of this.rib.entries()) {
      const hops = this.nextHopsOf(best);
      if (hops.length) yield [prefix, hops];
    }
  }

  // ---- peers ---------------------------------------------------------------------------

  private addPeer(addr: string, config: PeerConfig) {
    const ebgp = config.asn !== this.asn;
    const info: PeerInfo = { address: addr, routerId: '0.0.0.0', asn: config.asn, ebgp, rrClient: !!config.rrClient || config.type === 'rrClient', received: 0 };
    const session = new Session({
      asn: this.asn, routerId: this.o.routerId, peerAsn: config.asn, peerAddress: addr,
      holdTime: config.holdTime ?? this.o.holdTime ?? 90, connectRetryTime: this.o.connectRetryTime ?? 5,
      passive: !!config.passive, gracefulRestartTime: this.o.gracefulRestartTime ?? 120, restarting: !!this.o.restarting,
      clock: this.clock, log: this.log,
      connect: () => connectTcp({
        address: addr, port: config.port ?? DEFAULT_PORT, password: config.password, netns: this.o.netns,
        localAddress: config.localAddress ?? (this.o.listenAddress && sameFamily(this.o.listenAddress, addr) && !isWildcard(this.o.listenAddress) ? this.o.listenAddress : undefined),
      }),
    });
    const peer: Peer = { config, info, session, adjOut: new Map() };
    this.peers.set(addr, peer);
    session.on('established', () => this.onEstablished(peer));
    session.on('down', (d: SessionDown) => this.onDown(peer, d));
    session.on('update', (u: DecodedUpdate) => this.onUpdate(peer, u));
    session.on('routeRefresh', (afi: number) => this.onRouteRefresh(peer, afi));
    session.on('state', (s: State) => this.emit('peerState', addr, s));
    if (this.tcpListeners.length) this.applyMd5(addr, config.password);
    if (this.started) session.start();
  }

  private removePeer(p: Peer, subcode: number) {
    this.peers.delete(p.info.address);
    this.clock.clearTimeout(p.staleTimer);
    p.session.removeAllListeners();
    p.session.stop({ notification: { code: CEASE, subcode } });
    if (p.config.password) this.applyMd5(p.info.address, undefined);
    this.rib.dropPeer(p.info);
  }

  private applyMd5(address: string, password: string | undefined) {
    for (const l of this.tcpListeners) {
      if (!sameFamily(l.address, address)) continue;
      try { setMd5Key(l.fd, address, password); } catch (err) { this.log('warn', `tcp md5 key for ${address}: ${(err as Error).message}`); }
    }
  }

  private onInbound(socket: net.Socket) {
    const addr = normalize(socket.remoteAddress ?? '');
    const p = this.peers.get(addr);
    if (!p) { this.log('info', `connection from unknown peer ${addr} refused`); socket.destroy(); return; }
    p.session.accept(socket);
  }

  private onEstablished(p: Peer) {
    const s = p.session;
    p.info.routerId = s.peerOpen!.routerId;
    this.log('info', `peer ${p.info.address}: established`);
    // Helper side of RFC 4724 §4.2: families without preserved forwarding state lose their stale routes now.
    if (this.rib.hasStale(p.info)) {
      this.clock.clearTimeout(p.staleTimer);
      for (const [afi, fam] of [[AFI_IPV4, 4], [AFI_IPV6, 6]] as const) {
        if (!s.peerGr || !s.peerGr.forwarding.has(afi) || !s.families.has(afi)) this.rib.sweepStale(p.info, fam);
      }
      const wait = Math.max(s.peerGr?.restartTime ?? 0, 120) * 1000;
      p.staleTimer = this.clock.setTimeout(() => { this.rib.sweepStale(p.info); this.scheduleFlush(); }, wait);
      this.scheduleFlush();
    }
    this.flushNow(); // our Loc-RIB is current before the initial table goes out
    p.adjOut.clear();
    this.sendTable(p, [...this.rib.prefixes()]);
    // End-of-RIB after the initial table (RFC 4724 §2).
    const eors: Uint8Array[] = [];
    for (const afi of s.families) eors.push(encodeEndOfRib(afi));
    s.send(eors);
  }

  private onDown(p: Peer, d: SessionDown) {
    p.adjOut.clear();
    const gr = d.graceful && p.config.gracefulRestart !== false && p.session.peerGr;
    // RFC 4724 §4.2: only the families the peer's capability lists are kept (a "GR aware"
    // peer such as BIRD's default lists none: its routes go at once).
    const listed = gr ? gr.families : new Set<number>();
    if (gr && gr.restartTime > 0 && (listed.has(AFI_IPV4) || listed.has(AFI_IPV6))) {
      let n = this.rib.markStale(p.info);
      for (const [afi, fam] of [[AFI_IPV4, 4], [AFI_IPV6, 6]] as const) if (!listed.has(afi)) n -= this.rib.sweepStale(p.info, fam);
      this.log('info', `peer ${p.info.address}: graceful restart, keeping ${n} routes as stale for ${p.session.peerGr!.restartTime} s`);
      this.clock.clearTimeout(p.staleTimer);
      p.staleTimer = this.clock.setTimeout(() => { this.rib.sweepStale(p.info); this.scheduleFlush(); }, p.session.peerGr!.restartTime * 1000);
    } else {
      this.clock.clearTimeout(p.staleTimer);
      this.rib.dropPeer(p.info);
    }
    this.scheduleFlush();
  }

  private onUpdate(p: Peer, u: DecodedUpdate) {
    const eor = endOfRib(u);
    if (eor) {
      const fam = eor.afi === AFI_IPV6 ? 6 : 4;
      if (this.rib.sweepStale(p.info, fam) && !this.rib.hasStale(p.info)) this.clock.clearTimeout(p.staleTimer);
      this.scheduleFlush();
      this.emit('endOfRib', p.info.address, fam);
      return;
    }
    const src = p.info;
    for (const prefix of u.withdrawn) this.rib.withdraw(prefix, src);
    const un = u.attrs.mpUnreach;
    if (un && un.safi === SAFI_UNICAST) for (const prefix of un.withdrawn) this.rib.withdraw(prefix, src);
    const { mpReach, mpUnreach, ...attrs } = u.attrs;
    void mpUnreach;
    const reach = mpReach && mpReach.safi === SAFI_UNICAST && mpReach.nlri.length ? mpReach : undefined;
    if (u.nlri.length || reach) {
      if (this.rib.isLoop(src, attrs)) {
        for (const prefix of u.nlri) this.rib.withdraw(prefix, src);
        if (reach) for (const prefix of reach.nlri) this.rib.withdraw(prefix, src);
      } else {
        const shared: PathAttributes = attrs;
        if (u.nlri.length) {
          const path: Path = { source: src, attrs: shared, nextHop: attrs.nextHop, stale: false, one: undefined, hops: undefined };
          for (const prefix of u.nlri) this.rib.announce(prefix, path);
        }
        if (reach) {
          const nh = reach.nextHops.find((h) => !h.startsWith('fe80')) ?? reach.nextHops[0];
          const path: Path = { source: src, attrs: shared, nextHop: nh, stale: false, one: undefined, hops: undefined };
          for (const prefix of reach.nlri) this.rib.announce(prefix, path);
        }
      }
    }
    // A table arrives faster than the event loop turns (libuv reads many chunks per poll): hand
    // changes on every FLUSH_BATCH prefixes so the kernel is programmed while UPDATEs still arrive.
    if (this.rib.pendingCount >= FLUSH_BATCH) this.flushNow();
    else this.scheduleFlush();
  }

  private onRouteRefresh(p: Peer, afi: number) {
    const fam = afi === AFI_IPV6 ? 6 : 4;
    for (const prefix of [...p.adjOut.keys()]) if (familyOf(prefix) === fam) p.adjOut.delete(prefix);
    this.sendTable(p, [...this.rib.prefixes()].filter((x) => familyOf(x) === fam));
    p.session.send([encodeEndOfRib(afi)]);
  }

  // ---- flushing: Loc-RIB changes → 'routes' event and Adj-RIB-Out --------------------------

  private scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flushNow(); });
  }

  /** Emits 'routes' for what changed since the last flush (nextHops arrays are shared: never mutate them). */
  private flushNow() {
    const changed: string[] = [];
    const events: RouteChange[] = [];
    // Only a route reflector passes learned routes on: otherwise only changes involving our own
    // originations can touch an Adj-RIB-Out.
    const reflector = !!this.o.clusterId;
    this.rib.flush((prefix, old, now) => {
      if (reflector || old?.[0].source.local || now?.[0].source.local) changed.push(prefix);
      const before = old ? this.nextHopsOf(old) : NO_HOPS;
      const after = now ? this.nextHopsOf(now) : NO_HOPS;
      if (before === after || sameHops(before, after)) return;
      events.push({ prefix, family: familyOf(prefix), nextHops: after });
    });
    if (changed.length) for (const p of this.peers.values()) if (p.session.state === 'Established') this.sendTable(p, changed);
    if (events.length) this.emit('routes', events);
  }

  /** Distinct next-hop lists, one array each (100,000 prefixes from one peer share one). */
  private readonly hopLists = new Map<string, string[]>();

  /** Best next hops of a Loc-RIB entry, sorted, deduplicated; [] for our own originations. */
  private nextHopsOf(paths: readonly Path[]): string[] {
    if (paths.length === 1 && paths[0].hops) return paths[0].hops;
    let hops: string[];
    if (paths[0].source.local) hops = NO_HOPS;
    else if (paths.length === 1) hops = paths[0].nextHop ? [paths[0].nextHop] : NO_HOPS;
    else {
      const set = new Set<string>();
      for (const p of paths) if (p.nextHop) set.add(p.nextHop);
      hops = [...set].sort();
    }
    if (hops.length) {
      const key = hops.length === 1 ? hops[0] : hops.join(',');
      const have = this.hopLists.get(key);
      if (have) hops = have;
      else { if (this.hopLists.size >= 10_000) this.hopLists.clear(); this.hopLists.set(key, hops); }
    }
    if (paths.length === 1) paths[0].hops = hops;
    return hops;
  }

  /** Brings the peer's Adj-RIB-Out in line with the Loc-RIB for these prefixes; packs what changed. */
  private sendTable(p: Peer, prefixes: string[]) {
    const s = p.session;
    const groups = new Map<Path, { v4: string[]; v6: string[] }>();
    const w4: string[] = [], w6: string[] = [];
    for (const prefix of prefixes) {
      const fam = familyOf(prefix);
      const best = this.rib.bestPath(prefix);
      const ok = best && s.families.has(fam === 4 ? AFI_IPV4 : AFI_IPV6) && exportable(best, p.info, this.o.clusterId) && this.nextHopFor(p, best, fam) !== undefined;
      const desired = ok ? best : undefined;
      const prev = p.adjOut.get(prefix);
      if (desired === prev) continue;
      if (desired) {
        p.adjOut.set(prefix, desired);
        let g = groups.get(desired);
        if (!g) { g = { v4: [], v6: [] }; groups.set(desired, g); }
        (fam === 4 ? g.v4 : g.v6).push(prefix);
      } else {
        p.adjOut.delete(prefix);
        (fam === 4 ? w4 : w6).push(prefix);
      }
    }
    const msgs: Uint8Array[] = [];
    if (w4.length || w6.length) msgs.push(...packWithdrawals(w4, w6));
    const ctx = s.codecContext;
    for (const [path, g] of groups) {
      const attrs = this.outAttrs(p, path);
      if (g.v4.length) msgs.push(...packAnnouncements({ ...attrs, nextHop: this.nextHopFor(p, path, 4) }, g.v4, [], [], ctx));
      if (g.v6.length) msgs.push(...packAnnouncements(attrs, [], g.v6, [this.nextHopFor(p, path, 6)!], ctx));
    }
    if (msgs.length) s.send(msgs);
  }

  private nextHopFor(p: Peer, path: Path, fam: 4 | 6): string | undefined {
    const nh = path.nextHop;
    if (!path.source.local && !p.info.ebgp) return nh && familyOf(nh) === fam ? nh : undefined; // reflected: unchanged
    if (nh && familyOf(nh) === fam && !(p.info.ebgp && !path.source.local)) return nh;
    const self = p.session.localAddress;
    return self && familyOf(self) === fam ? self : undefined;
  }

  private outAttrs(p: Peer, path: Path): PathAttributes {
    if (path.source.local) {
      return {
        origin: ORIGIN_IGP,
        asPath: p.info.ebgp ? [{ type: AS_SEQUENCE, asns: [this.asn] }] : [],
        localPref: p.info.ebgp ? undefined : 100,
        communities: path.attrs.communities,
      };
    }
    // Reflection (RFC 4456 §8): ORIGINATOR_ID set once, our cluster ID prepended, next hop kept.
    return {
      ...path.attrs, nextHop: undefined,
      localPref: path.attrs.localPref ?? 100,
      originatorId: path.attrs.originatorId ?? path.source.routerId,
      clusterList: [this.o.clusterId!, ...(path.attrs.clusterList ?? [])],
    };
  }
}

const NO_HOPS: string[] = [];

function sameHops(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function familyOf(x: string): 4 | 6 { return x.includes(':') ? 6 : 4; }
function sameFamily(a: string, b: string): boolean { return familyOf(a) === familyOf(b); }
function isWildcard(a: string): boolean { return a === '0.0.0.0' || a === '::'; }
/**
 * The peer-map key of an address: IPv4-mapped IPv6 as IPv4, IPv6 in canonical text (RFC 5952,
 * as sockets report it), so a peer configured as "fd00:0:0::1" matches its inbound connections.
 */
function normalize(a: string): string {
  const text = a.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  const ip = text.includes(':') ? tryParseIp(text) : undefined;
  return ip ? formatIp(ip) : text;
}
