// One BGP session with one peer: owns the TCP connection(s), the framer and the FSM, carries
// out the FSM's actions (timers on the injected clock, sends, connects), resolves connection
// collisions (RFC 4271 §6.8) and backs off after repeated failures. Emits decoded messages;
// a peer's bad bytes end in a NOTIFICATION, never in an exception.
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { Framer } from './framer';
import { step, initialState, resolveCollision, LARGE_HOLD_TIME, type FsmState, type FsmEvent, type FsmAction, type State, type Timer } from './fsm';
import { BgpError, CEASE, CEASE_CONNECTION_COLLISION_RESOLUTION, describeError } from './errors';
import { decodeMessage, encodeOpen, encodeKeepalive, encodeNotification, type DecodedMessage } from './codec/index';
import type { DecodedUpdate } from './codec/update';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST } from './codec/prefix';
import { GR_FLAG_RESTART, type Capability, type OpenMessage, type CodecContext } from './codec/types';
import type { Clock, TimerHandle } from './clock';

export interface SessionOptions {
  asn: number;
  routerId: string;
  peerAsn: number;
  peerAddress: string;
  holdTime: number;
  connectRetryTime: number;
  passive: boolean;
  /** Graceful restart capability: restart time in seconds (0 = none); `restarting` sets the R bit. */
  gracefulRestartTime: number;
  restarting: boolean;
  clock: Clock;
  /** Opens the outbound TCP connection (plain or MD5). */
  connect: () => Promise<net.Socket>;
  log?: (level: 'debug' | 'info' | 'warn', msg: string) => void;
}

export interface SessionDown {
  reason: string;
  wasEstablished: boolean;
  /** True when the session ended without a NOTIFICATION and the peer has graceful restart: keep its routes (RFC 4724 §4.2). */
  graceful: boolean;
  notification?: { code: number; subcode: number; sent: boolean };
}

/** The peer's Graceful Restart capability: `families` every AFI it lists, `forwarding` those with the F bit. */
export interface PeerGracefulRestart { restartTime: number; restarted: boolean; forwarding: Set<number>; families: Set<number> }

interface Conn {
  socket: net.Socket;
  framer: Framer;
  outbound: boolean;
  /** For a collision candidate: the peer's OPEN once it arrives. */
  open?: OpenMessage;
  closed: boolean;
}

/**
 * Idle hold after a session went down: 1, 2, 4 s, then every 5 s (the connect-retry time BIRD
 * and Calico use), so a peer that refused for a while is reached within 5 s of coming back.
 */
export const IDLE_HOLD_BASE_MS = 1000;
export const IDLE_HOLD_MAX_MS = 5000;

export class Session extends EventEmitter {
  private fsm: FsmState;
  private conn: Conn | undefined;
  private pendingConn: Conn | undefined;
  private readonly timers = new Map<Timer | 'idleHold', TimerHandle>();
  private connectToken = 0;
  private stopped = true;
  private failures = 0;
  private sentRestartBit = false;
  /** Epoch ms of the last state change. */
  since: number;
  info = '';
  peerOpen: OpenMessage | undefined;
  /** Negotiated after OPEN. */
  fourOctetAs = false;
  families = new Set<number>();
  peerRouteRefresh = false;
  peerGr: PeerGracefulRestart | undefined;

  constructor(private readonly o: SessionOptions) {
    super();
    this.fsm = initialState({ asn: o.asn, peerAsn: o.peerAsn, routerId: o.routerId, holdTime: o.holdTime, connectRetryTime: o.connectRetryTime, passive: o.passive });
    this.since = o.clock.now();
  }

  get state(): State { return this.fsm.state; }
  get codecContext(): CodecContext { return { fourOctetAs: this.fourOctetAs, ebgp: this.o.asn !== this.o.peerAsn }; }
  get ebgp(): boolean { return this.o.asn !== this.o.peerAsn; }
  /** Local address of the established connection (for next-hop self). */
  get localAddress(): string | undefined { return this.conn?.socket.localAddress?.replace(/^::ffff:/, ''); }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.dispatch({ type: 'ManualStart' });
  }

  /** Stops the session: with `silent` no NOTIFICATION is sent (a graceful restart of ours). */
  stop(opts: { silent?: boolean; notification?: { code: number; subcode: number } } = {}): void {
    this.stopped = true;
    this.clearTimer('idleHold');
    this.connectToken++;
    this.closeConn(this.pendingConn, undefined);
    this.pendingConn = undefined;
    if (opts.silent) {
      if (this.conn) { this.conn.closed = true; this.conn.socket.destroy(); this.conn = undefined; }
      this.dispatch({ type: 'TcpConnectionFails' });
      this.dispatch({ type: 'ManualStop' });
    } else if (opts.notification && (this.state === 'OpenSent' || this.state === 'OpenConfirm' || this.state === 'Established')) {
      this.writeRaw(encodeNotification(opts.notification));
      this.dispatch({ type: 'ManualStop' });
    } else {
      this.dispatch({ type: 'ManualStop' });
    }
    for (const t of [...this.timers.keys()]) this.clearTimer(t);
  }

  /** Takes an inbound connection from the listener. */
  accept(socket: net.Socket): void {
    if (this.stopped) { socket.destroy(); return; }
    const conn = this.wrap(socket, false);
    if (this.state === 'Idle') {
      // Waiting out the idle hold: an inbound connection starts the session now.
      this.clearTimer('idleHold');
      this.fsm = { ...this.fsm, state: 'Active' };
    }
    switch (this.state) {
      case 'Connect':
      case 'Active':
        // Our own connect may still be in flight: it is not abandoned (the peer may be using it
        // while dropping this one); if it completes it becomes a collision candidate (§6.8).
        if (this.conn) this.closeConn(this.conn, undefined);
        this.conn = conn;
        this.dispatch({ type: 'TcpConnectionConfirmed' });
        return;
      case 'OpenSent':
      case 'OpenConfirm':
        // §6.8: both sides connected; decide once the new connection's OPEN names the peer.
        if (this.pendingConn) this.closeConn(this.pendingConn, undefined);
        this.pendingConn = conn;
        this.writeTo(conn, encodeOpen(this.buildOpen()));
        return;
      case 'Established':
        if (this.peerGr) {
          // RFC 4724 §4.2: a new connection from a restarting peer ends the old session.
          this.log('info', 'new connection while established: peer restarted');
          this.dispatch({ type: 'TcpConnectionFails' });
          this.clearTimer('idleHold');
          this.fsm = { ...this.fsm, state: 'Active' };
          this.conn = conn;
          this.dispatch({ type: 'TcpConnectionConfirmed' });
          return;
        }
        this.closeConn(conn, { code: CEASE, subcode: CEASE_CONNECTION_COLLISION_RESOLUTION });
    }
  }

  /** Sends encoded messages on the established connection. Returns false when buffered past the high-water mark. */
  send(msgs: Uint8Array[]): boolean {
    if (this.state !== 'Established' || !this.conn) return false;
    let ok = true;
    for (const m of msgs) ok = this.conn.socket.write(m) && ok;
    return ok;
  }

  private log(level: 'debug' | 'info' | 'warn', msg: string) { this.o.log?.(level, `peer ${this.o.peerAddress}: ${msg}`); }

  private wrap(socket: net.Socket, outbound: boolean): Conn {
    const conn: Conn = { socket, framer: new Framer(), outbound, closed: false };
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(conn, d));
    socket.on('error', (err) => { this.log('debug', `socket error: ${err.message}`); });
    socket.on('close', () => this.onClose(conn));
    return conn;
  }

  private onClose(conn: Conn) {
    if (conn.closed) return;
    conn.closed = true;
    if (conn === this.pendingConn) { this.pendingConn = undefined; return; }
    if (conn === this.conn && this.pendingConn && (this.state === 'OpenSent' || this.state === 'OpenConfirm')) {
      this.promotePending('closed');
      return;
    }
    if (conn === this.conn) {
      this.conn = undefined;
      if (!this.info) this.info = 'connection closed';
      this.dispatch({ type: 'TcpConnectionFails' });
    }
  }

  private onData(conn: Conn, data: Buffer) {
    if (conn.closed) return;
    let msgs: Uint8Array[];
    try {
      msgs = conn.framer.push(data);
    } catch (err) {
      this.protocolError(conn, err, 'BGPHeaderErr');
      return;
    }
    for (const raw of msgs) {
      if (conn.closed) return;
      let msg: DecodedMessage;
      try {
        msg = decodeMessage(raw, this.codecContext);
      } catch (err) {
        const type = raw[18];
        this.protocolError(conn, err, type === 1 ? 'BGPOpenMsgErr' : type === 2 ? 'UpdateMsgErr' : 'BGPHeaderErr');
        return;
      }
      try {
        if (conn === this.pendingConn) this.onCollisionMessage(conn, msg);
        else if (conn === this.conn && this.pendingConn && msg.type === 'notification' && msg.code === CEASE
          && msg.subcode === CEASE_CONNECTION_COLLISION_RESOLUTION && (this.state === 'OpenSent' || this.state === 'OpenConfirm')) {
          // The peer resolved the collision first, in favour of the other connection.
          this.promotePending('closed by the peer (collision resolution)');
          return;
        } else if (conn === this.conn) this.onMessage(msg);
      } catch (err) {
        // Our own bug must not take the process down: reset this session.
        this.log('warn', `internal error handling ${msg.type}: ${(err as Error).stack ?? err}`);
        this.protocolError(conn, new BgpError(CEASE, 0), 'BGPHeaderErr');
        return;
      }
    }
  }

  private protocolError(conn: Conn, err: unknown, kind: 'BGPHeaderErr' | 'BGPOpenMsgErr' | 'UpdateMsgErr') {
    const e = err instanceof BgpError ? err : new BgpError(CEASE, 0, undefined, 'session-reset', String(err));
    this.log('warn', `protocol error: ${e.message}`);
    if (conn === this.pendingConn) { this.closeConn(conn, e); this.pendingConn = undefined; return; }
    this.info = `sent ${describeError(e.code, e.subcode)}`;
    this.dispatch({ type: kind, error: e } as FsmEvent);
  }

  private onMessage(msg: DecodedMessage) {
    switch (msg.type) {
      case 'open': {
        this.dispatch({ type: 'BGPOpen', open: msg });
        if (this.state === 'OpenConfirm') this.negotiate(msg);
        return;
      }
      case 'keepalive': this.dispatch({ type: 'KeepAliveMsg' }); return;
      case 'notification':
        this.info = `received ${describeError(msg.code, msg.subcode)}`;
        this.dispatch({ type: 'NotifMsg', code: msg.code, subcode: msg.subcode });
        return;
      case 'routeRefresh':
        this.dispatch({ type: 'RouteRefreshMsg' });
        if (this.state === 'Established') this.emit('routeRefresh', msg.afi, msg.safi);
        return;
      case 'update':
        this.dispatch({ type: 'UpdateMsg' });
        if (this.state === 'Established') {
          for (const e of (msg as DecodedUpdate).errors) this.log('warn', `update: ${e.handling}: ${e.message}`);
          this.emit('update', msg);
        }
    }
  }

  private onCollisionMessage(conn: Conn, msg: DecodedMessage) {
    if (msg.type !== 'open') {
      if (msg.type === 'notification') { this.closeConn(conn, undefined); this.pendingConn = undefined; }
      return; // a KEEPALIVE before we decided is ignored
    }
    const keep = this.state === 'Established' ? 'existing' : resolveCollision(this.o.routerId, msg.routerId) === (this.conn?.outbound ? 'keepOutbound' : 'keepInbound') ? 'existing' : 'new';
    const cease = { code: CEASE, subcode: CEASE_CONNECTION_COLLISION_RESOLUTION };
    this.log('info', `connection collision with ${msg.routerId}: keeping the ${keep} connection`);
    if (keep === 'existing') { this.closeConn(conn, cease); this.pendingConn = undefined; return; }
    const old = this.conn;
    this.conn = conn;
    this.pendingConn = undefined;
    if (old) this.closeConn(old, cease);
    // The new connection has sent our OPEN already: continue it from OpenSent.
    this.fsm = { ...this.fsm, state: 'OpenSent', holdTime: LARGE_HOLD_TIME, peerOpen: undefined };
    this.onMessage(msg);
  }

  /**
   * The current connection (not yet Established) lost the collision on the peer's side: carry
   * on with the other one, on which our OPEN went out already, from OpenSent.
   */
  private promotePending(why: string) {
    const next = this.pendingConn!;
    const old = this.conn;
    this.pendingConn = undefined;
    this.conn = next;
    if (old) this.closeConn(old, undefined);
    this.log('info', `connection collision: connection ${why}, continuing on the other one`);
    this.clearTimer('keepalive');
    this.fsm = { ...this.fsm, state: 'OpenSent', holdTime: LARGE_HOLD_TIME, peerOpen: undefined };
    this.startTimer('hold', LARGE_HOLD_TIME);
    if (next.open) this.onMessage(next.open);
  }

  private negotiate(open: OpenMessage) {
    this.peerOpen = open;
    const caps = open.capabilities;
    this.fourOctetAs = caps.some((c) => c.kind === 'fourOctetAs');
    const mp = caps.filter((c): c is Extract<Capability, { kind: 'multiprotocol' }> => c.kind === 'multiprotocol' && c.safi === SAFI_UNICAST);
    // RFC 4760 §8: no multiprotocol capability at all means IPv4 unicast only.
    this.families = new Set(caps.some((c) => c.kind === 'multiprotocol') ? mp.map((c) => c.afi).filter((a) => a === AFI_IPV4 || a === AFI_IPV6) : [AFI_IPV4]);
    this.peerRouteRefresh = caps.some((c) => c.kind === 'routeRefresh' || (c.kind === 'unknown' && c.code === 128));
    const gr = caps.find((c): c is Extract<Capability, { kind: 'gracefulRestart' }> => c.kind === 'gracefulRestart');
    this.peerGr = gr ? { restartTime: gr.restartTime, restarted: (gr.flags & GR_FLAG_RESTART) !== 0, forwarding: new Set(gr.families.filter((f) => f.forwarding).map((f) => f.afi)), families: new Set(gr.families.map((f) => f.afi)) } : undefined;
  }

  /** Our OPEN (RFC 5492 capabilities). */
  buildOpen(): OpenMessage {
    const capabilities: Capability[] = [
      { kind: 'multiprotocol', afi: AFI_IPV4, safi: SAFI_UNICAST },
      { kind: 'multiprotocol', afi: AFI_IPV6, safi: SAFI_UNICAST },
      { kind: 'routeRefresh' },
    ];
    if (this.o.gracefulRestartTime > 0) {
      // Forwarding state is kept: the agent leaves its kernel routes in place across restarts.
      capabilities.push({
        kind: 'gracefulRestart', flags: this.o.restarting && !this.sentRestartBit ? GR_FLAG_RESTART : 0,
        restartTime: Math.min(this.o.gracefulRestartTime, 4095),
        families: [{ afi: AFI_IPV4, safi: SAFI_UNICAST, forwarding: true }, { afi: AFI_IPV6, safi: SAFI_UNICAST, forwarding: true }],
      });
    }
    capabilities.push({ kind: 'fourOctetAs', asn: this.o.asn });
    return { type: 'open', version: 4, asn: this.o.asn, holdTime: this.o.holdTime, routerId: this.o.routerId, capabilities };
  }

  private dispatch(e: FsmEvent) {
    const prev = this.fsm.state;
    const [next, actions] = step(this.fsm, e);
    this.fsm = next;
    if (next.state !== prev) { this.since = this.o.clock.now(); }
    for (const a of actions) this.perform(a);
    if (next.state !== prev) this.emit('state', next.state, prev);
  }

  private perform(a: FsmAction) {
    switch (a.type) {
      case 'connect': this.startConnect(); break;
      case 'drop':
        this.connectToken++;
        if (this.conn) { this.closeConn(this.conn, undefined); this.conn = undefined; }
        if (this.pendingConn) { this.closeConn(this.pendingConn, undefined); this.pendingConn = undefined; }
        break;
      case 'sendOpen':
        this.writeRaw(encodeOpen(this.buildOpen()));
        if (this.o.restarting) this.sentRestartBit = true;
        break;
      case 'sendKeepalive': this.writeRaw(encodeKeepalive()); break;
      case 'sendNotification':
        this.info = `sent ${describeError(a.code, a.subcode)}`;
        this.writeRaw(encodeNotification(a));
        break;
      case 'startTimer': this.startTimer(a.timer, a.seconds); break;
      case 'stopTimer': this.clearTimer(a.timer); break;
      case 'established':
        this.failures = 0;
        this.info = '';
        this.emit('established', this.peerOpen);
        break;
      case 'sessionDown': {
        const wasEstablished = a.from === 'Established';
        const down: SessionDown = { reason: a.reason, wasEstablished, graceful: wasEstablished && !a.notification && !!this.peerGr, notification: a.notification };
        if (!this.info) this.info = a.reason;
        this.log('info', `session down from ${a.from}: ${a.reason}`);
        this.emit('down', down);
        if (!this.stopped) this.scheduleRestart();
        break;
      }
    }
  }

  private scheduleRestart() {
    this.failures++;
    const ms = Math.min(IDLE_HOLD_BASE_MS * 2 ** Math.min(this.failures - 1, 10), IDLE_HOLD_MAX_MS);
    this.clearTimer('idleHold');
    this.timers.set('idleHold', this.o.clock.setTimeout(() => { this.timers.delete('idleHold'); if (!this.stopped) this.dispatch({ type: 'AutomaticStart' }); }, ms));
  }

  private startTimer(t: Timer, seconds: number) {
    this.clearTimer(t);
    const ev: FsmEvent['type'] = t === 'connectRetry' ? 'ConnectRetryTimer_Expires' : t === 'hold' ? 'HoldTimer_Expires' : 'KeepaliveTimer_Expires';
    this.timers.set(t, this.o.clock.setTimeout(() => { this.timers.delete(t); this.dispatch({ type: ev } as FsmEvent); }, seconds * 1000));
  }

  private clearTimer(t: Timer | 'idleHold') {
    const h = this.timers.get(t);
    if (h) { this.o.clock.clearTimeout(h); this.timers.delete(t); }
  }

  private startConnect() {
    const token = ++this.connectToken;
    this.o.connect().then((socket) => {
      if (token !== this.connectToken || this.stopped) { socket.destroy(); return; }
      if ((this.state === 'OpenSent' || this.state === 'OpenConfirm') && this.conn && !this.conn.outbound && !this.pendingConn) {
        // An inbound connection came first (§6.8): both ends may have accepted the other's
        // connection; keep this one as the collision candidate and let the OPENs decide.
        const conn = this.wrap(socket, true);
        this.pendingConn = conn;
        this.writeTo(conn, encodeOpen(this.buildOpen()));
        return;
      }
      if ((this.state !== 'Connect' && this.state !== 'Active') || this.conn) { socket.destroy(); return; }
      this.conn = this.wrap(socket, true);
      this.dispatch({ type: 'Tcp_CR_Acked' });
    }, (err: Error) => {
      if (token !== this.connectToken) return;
      this.info = `connect: ${err.message}`;
      if (this.state === 'Connect') this.dispatch({ type: 'TcpConnectionFails' });
    });
  }

  private writeRaw(b: Uint8Array) { if (this.conn && !this.conn.closed) this.conn.socket.write(b); }
  private writeTo(c: Conn, b: Uint8Array) { if (!c.closed) c.socket.write(b); }

  private closeConn(c: Conn | undefined, notify: { code: number; subcode: number; data?: Uint8Array } | undefined) {
    if (!c || c.closed) return;
    c.closed = true;
    const s = c.socket;
    if (notify) s.write(encodeNotification(notify));
    s.end();
    const t = setTimeout(() => s.destroy(), 1000);
    t.unref?.();
    s.once('close', () => clearTimeout(t));
  }
}
