// The BGP finite state machine (RFC 4271 §8) as one pure function: step(state, event) →
// [state, actions]. Timers, sockets and messages are actions the session carries out; OPEN
// checks (§6.2), hold-time negotiation (§4.2) and collision resolution (§6.8) live here.
import {
  BgpError, OPEN_MESSAGE_ERROR, BAD_PEER_AS, BAD_BGP_IDENTIFIER, HOLD_TIMER_EXPIRED, FSM_ERROR, CEASE,
  CEASE_ADMINISTRATIVE_SHUTDOWN, FSM_UNEXPECTED_IN_OPENSENT, FSM_UNEXPECTED_IN_OPENCONFIRM, FSM_UNEXPECTED_IN_ESTABLISHED,
  UNACCEPTABLE_HOLD_TIME,
} from './errors';
import { routerIdToNumber } from './codec/message';
import type { OpenMessage } from './codec/types';

export type State = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';
export type Timer = 'connectRetry' | 'hold' | 'keepalive';

export interface FsmConfig {
  asn: number;
  peerAsn: number;
  routerId: string;
  /** Proposed hold time in seconds (0 = no keepalives); 90 by default in the speaker. */
  holdTime: number;
  connectRetryTime: number;
  /** Never initiate the TCP connection; only accept. */
  passive: boolean;
}

export interface FsmState {
  state: State;
  config: FsmConfig;
  /** Negotiated hold and keepalive times (seconds) once the peer's OPEN is in. */
  holdTime: number;
  keepaliveTime: number;
  peerOpen?: OpenMessage;
}

export type FsmEvent =
  | { type: 'ManualStart' } | { type: 'ManualStop' } | { type: 'AutomaticStart' }
  | { type: 'ConnectRetryTimer_Expires' } | { type: 'HoldTimer_Expires' } | { type: 'KeepaliveTimer_Expires' }
  | { type: 'Tcp_CR_Acked' } | { type: 'TcpConnectionConfirmed' } | { type: 'TcpConnectionFails' }
  | { type: 'BGPOpen'; open: OpenMessage }
  | { type: 'BGPHeaderErr'; error: BgpError } | { type: 'BGPOpenMsgErr'; error: BgpError } | { type: 'UpdateMsgErr'; error: BgpError }
  | { type: 'NotifMsg'; code: number; subcode: number }
  | { type: 'KeepAliveMsg' } | { type: 'UpdateMsg' } | { type: 'RouteRefreshMsg' };

export type FsmAction =
  | { type: 'connect' }
  | { type: 'drop' }
  | { type: 'sendOpen' }
  | { type: 'sendKeepalive' }
  | { type: 'sendNotification'; code: number; subcode: number; data?: Uint8Array }
  | { type: 'startTimer'; timer: Timer; seconds: number }
  | { type: 'stopTimer'; timer: Timer }
  | { type: 'established' }
  /** The session ended; `notification` set when one was sent or received (GR helper does not apply then). */
  | { type: 'sessionDown'; from: State; reason: string; notification?: { code: number; subcode: number; sent: boolean } };

/** RFC 4271 §10: the hold time to use in OpenSent before the peer's OPEN arrives. */
export const LARGE_HOLD_TIME = 240;

export function initialState(config: FsmConfig): FsmState {
  return { state: 'Idle', config, holdTime: config.holdTime, keepaliveTime: Math.floor(config.holdTime / 3) };
}

const ALL_TIMERS: FsmAction[] = [{ type: 'stopTimer', timer: 'connectRetry' }, { type: 'stopTimer', timer: 'hold' }, { type: 'stopTimer', timer: 'keepalive' }];

function toIdle(s: FsmState, reason: string, notify?: { code: number; subcode: number; data?: Uint8Array }, received?: { code: number; subcode: number }): [FsmState, FsmAction[]] {
  const actions: FsmAction[] = [];
  if (notify) actions.push({ type: 'sendNotification', ...notify });
  actions.push({ type: 'drop' }, ...ALL_TIMERS);
  const n = notify ? { code: notify.code, subcode: notify.subcode, sent: true } : received ? { ...received, sent: false } : undefined;
  actions.push({ type: 'sessionDown', from: s.state, reason, notification: n });
  return [{ ...s, state: 'Idle', peerOpen: undefined }, actions];
}

const fsmErrorSubcode = (st: State) => st === 'OpenSent' ? FSM_UNEXPECTED_IN_OPENSENT : st === 'OpenConfirm' ? FSM_UNEXPECTED_IN_OPENCONFIRM : st === 'Established' ? FSM_UNEXPECTED_IN_ESTABLISHED : 0;

/** OPEN checks the codec cannot make (§6.2): peer AS, identifier, hold time. */
export function checkOpen(config: FsmConfig, open: OpenMessage): BgpError | undefined {
  if (open.asn !== config.peerAsn) {
    const d = open.asn > 0xffff ? new Uint8Array([0x5b, 0xa0]) : new Uint8Array([open.asn >> 8, open.asn & 255]);
    return new BgpError(OPEN_MESSAGE_ERROR, BAD_PEER_AS, d, 'session-reset', `peer as ${open.asn}, expected ${config.peerAsn}`);
  }
  if (open.asn === config.asn && open.routerId === config.routerId) {
    return new BgpError(OPEN_MESSAGE_ERROR, BAD_BGP_IDENTIFIER, undefined, 'session-reset', `router id ${open.routerId} is ours`);
  }
  if (open.holdTime === 1 || open.holdTime === 2) return new BgpError(OPEN_MESSAGE_ERROR, UNACCEPTABLE_HOLD_TIME, undefined, 'session-reset', `hold time ${open.holdTime}`);
  return undefined;
}

/** Hold time negotiation (§4.2): the smaller of both, 0 meaning no keepalives; keepalive = hold/3. */
export function negotiateHoldTime(local: number, remote: number): { holdTime: number; keepaliveTime: number } {
  const holdTime = Math.min(local, remote);
  return { holdTime, keepaliveTime: Math.floor(holdTime / 3) };
}

/** §6.8: which connection survives a collision; the one initiated by the higher BGP Identifier. */
export function resolveCollision(localRouterId: string, remoteRouterId: string): 'keepOutbound' | 'keepInbound' {
  return routerIdToNumber(localRouterId) < routerIdToNumber(remoteRouterId) ? 'keepInbound' : 'keepOutbound';
}

/** One FSM step. */
export function step(s: FsmState, e: FsmEvent): [FsmState, FsmAction[]] {
  const c = s.config;
  switch (s.state) {
    case 'Idle':
      if (e.type === 'ManualStart' || e.type === 'AutomaticStart') {
        if (c.passive) return [{ ...s, state: 'Active' }, []];
        return [{ ...s, state: 'Connect' }, [{ type: 'startTimer', timer: 'connectRetry', seconds: c.connectRetryTime }, { type: 'connect' }]];
      }
      return [s, []]; // §8.2.2: other events in Idle are ignored
    case 'Connect':
    case 'Active':
      switch (e.type) {
        case 'ManualStop': return [{ ...s, state: 'Idle' }, [{ type: 'drop' }, ...ALL_TIMERS]];
        case 'ConnectRetryTimer_Expires':
          if (c.passive) return [s, []];
          return [{ ...s, state: 'Connect' }, [{ type: 'drop' }, { type: 'startTimer', timer: 'connectRetry', seconds: c.connectRetryTime }, { type: 'connect' }]];
        case 'Tcp_CR_Acked':
        case 'TcpConnectionConfirmed':
          return [{ ...s, state: 'OpenSent', holdTime: LARGE_HOLD_TIME }, [
            { type: 'stopTimer', timer: 'connectRetry' }, { type: 'sendOpen' },
            { type: 'startTimer', timer: 'hold', seconds: LARGE_HOLD_TIME }]];
        case 'TcpConnectionFails':
          return [{ ...s, state: 'Active' }, [{ type: 'drop' }, ...(c.passive ? [] : [{ type: 'startTimer', timer: 'connectRetry', seconds: c.connectRetryTime } as FsmAction])]];
        case 'ManualStart': case 'AutomaticStart': return [s, []];
        default: return toIdle(s, `unexpected ${e.type} in ${s.state}`);
      }
    case 'OpenSent':
      switch (e.type) {
        case 'ManualStop': return toIdle(s, 'administrative shutdown', { code: CEASE, subcode: CEASE_ADMINISTRATIVE_SHUTDOWN });
        case 'HoldTimer_Expires': return toIdle(s, 'hold timer expired', { code: HOLD_TIMER_EXPIRED, subcode: 0 });
        case 'TcpConnectionFails':
          // §8.2.2: OpenSent + TCP failure → Active, ConnectRetryTimer restarted.
          return [{ ...s, state: 'Active' }, [{ type: 'drop' }, { type: 'stopTimer', timer: 'hold' },
            ...(c.passive ? [] : [{ type: 'startTimer', timer: 'connectRetry', seconds: c.connectRetryTime } as FsmAction])]];
        case 'BGPOpen': {
          const err = checkOpen(c, e.open);
          if (err) return toIdle(s, err.message, { code: err.code, subcode: err.subcode, data: err.data });
          const { holdTime, keepaliveTime } = negotiateHoldTime(c.holdTime, e.open.holdTime);
          const actions: FsmAction[] = [{ type: 'stopTimer', timer: 'connectRetry' }, { type: 'sendKeepalive' }];
          if (holdTime > 0) actions.push({ type: 'startTimer', timer: 'keepalive', seconds: keepaliveTime }, { type: 'startTimer', timer: 'hold', seconds: holdTime });
          else actions.push({ type: 'stopTimer', timer: 'hold' });
          return [{ ...s, state: 'OpenConfirm', holdTime, keepaliveTime, peerOpen: e.open }, actions];
        }
        case 'BGPHeaderErr': case 'BGPOpenMsgErr': case 'UpdateMsgErr':
          return toIdle(s, e.error.message, { code: e.error.code, subcode: e.error.subcode, data: e.error.data });
        case 'NotifMsg': return toIdle(s, `notification ${e.code}/${e.subcode} received`, undefined, e);
        case 'ManualStart': case 'AutomaticStart': return [s, []];
        default: return toIdle(s, `unexpected ${e.type} in OpenSent`, { code: FSM_ERROR, subcode: fsmErrorSubcode(s.state) });
      }
    case 'OpenConfirm':
    case 'Established':
      switch (e.type) {
        case 'ManualStop': return toIdle(s, 'administrative shutdown', { code: CEASE, subcode: CEASE_ADMINISTRATIVE_SHUTDOWN });
        case 'HoldTimer_Expires': return toIdle(s, 'hold timer expired', { code: HOLD_TIMER_EXPIRED, subcode: 0 });
        case 'KeepaliveTimer_Expires':
          return [s, [{ type: 'sendKeepalive' }, { type: 'startTimer', timer: 'keepalive', seconds: s.keepaliveTime }]];
        case 'TcpConnectionFails': return toIdle(s, 'connection closed');
        case 'NotifMsg': return toIdle(s, `notification ${e.code}/${e.subcode} received`, undefined, e);
        case 'BGPHeaderErr': case 'BGPOpenMsgErr': case 'UpdateMsgErr':
          return toIdle(s, e.error.message, { code: e.error.code, subcode: e.error.subcode, data: e.error.data });
        case 'KeepAliveMsg':
          if (s.state === 'OpenConfirm') {
            return [{ ...s, state: 'Established' }, [...(s.holdTime > 0 ? [{ type: 'startTimer', timer: 'hold', seconds: s.holdTime } as FsmAction] : []), { type: 'established' }]];
          }
          return [s, s.holdTime > 0 ? [{ type: 'startTimer', timer: 'hold', seconds: s.holdTime }] : []];
        case 'UpdateMsg': case 'RouteRefreshMsg':
          if (s.state === 'Established') return [s, s.holdTime > 0 ? [{ type: 'startTimer', timer: 'hold', seconds: s.holdTime }] : []];
          return toIdle(s, `unexpected ${e.type} in OpenConfirm`, { code: FSM_ERROR, subcode: FSM_UNEXPECTED_IN_OPENCONFIRM });
        case 'ManualStart': case 'AutomaticStart': return [s, []];
        default: return toIdle(s, `unexpected ${e.type} in ${s.state}`, { code: FSM_ERROR, subcode: fsmErrorSubcode(s.state) });
      }
  }
}
