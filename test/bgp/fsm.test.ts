// FSM (RFC 4271 §8): transitions from every state, timers as actions, hold-time negotiation,
// OPEN checks and §6.8 collision resolution. Pure: no clock, no sockets.
import t from 'tap';
import { step, initialState, negotiateHoldTime, resolveCollision, type FsmState, type FsmEvent, type FsmAction, type State } from '../../lib/bgp/fsm';
import type { OpenMessage } from '../../lib/bgp/codec/types';
import { BgpError } from '../../lib/bgp/errors';

const cfg = { asn: 64512, peerAsn: 64512, routerId: '10.0.0.1', holdTime: 90, connectRetryTime: 5, passive: false };
const open = (o: Partial<OpenMessage> = {}): OpenMessage => ({ type: 'open', version: 4, asn: 64512, holdTime: 30, routerId: '10.0.0.2', capabilities: [], ...o });
const at = (state: State, extra: Partial<FsmState> = {}): FsmState => ({ ...initialState(cfg), state, ...extra });
const types = (a: FsmAction[]) => a.map((x) => x.type === 'startTimer' ? `start:${x.timer}:${x.seconds}` : x.type === 'stopTimer' ? `stop:${x.timer}` : x.type === 'sendNotification' ? `notify:${x.code}/${x.subcode}` : x.type);

t.test('transitions', async (t) => {
  const rows: { name: string; from: FsmState; ev: FsmEvent; to: State; actions: string[] }[] = [
    { name: 'idle start', from: at('Idle'), ev: { type: 'ManualStart' }, to: 'Connect', actions: ['start:connectRetry:5', 'connect'] },
    { name: 'idle passive start', from: { ...at('Idle'), config: { ...cfg, passive: true } }, ev: { type: 'ManualStart' }, to: 'Active', actions: [] },
    { name: 'idle ignores keepalive', from: at('Idle'), ev: { type: 'KeepAliveMsg' }, to: 'Idle', actions: [] },
    { name: 'connect: tcp up', from: at('Connect'), ev: { type: 'Tcp_CR_Acked' }, to: 'OpenSent', actions: ['stop:connectRetry', 'sendOpen', 'start:hold:240'] },
    { name: 'connect: retry expires', from: at('Connect'), ev: { type: 'ConnectRetryTimer_Expires' }, to: 'Connect', actions: ['drop', 'start:connectRetry:5', 'connect'] },
    { name: 'connect: tcp fails', from: at('Connect'), ev: { type: 'TcpConnectionFails' }, to: 'Active', actions: ['drop', 'start:connectRetry:5'] },
    { name: 'connect: stop', from: at('Connect'), ev: { type: 'ManualStop' }, to: 'Idle', actions: ['drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive'] },
    { name: 'active: inbound', from: at('Active'), ev: { type: 'TcpConnectionConfirmed' }, to: 'OpenSent', actions: ['stop:connectRetry', 'sendOpen', 'start:hold:240'] },
    { name: 'active: retry → connect', from: at('Active'), ev: { type: 'ConnectRetryTimer_Expires' }, to: 'Connect', actions: ['drop', 'start:connectRetry:5', 'connect'] },
    { name: 'active: open is an fsm error', from: at('Active'), ev: { type: 'BGPOpen', open: open() }, to: 'Idle', actions: ['drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'opensent: open ok', from: at('OpenSent'), ev: { type: 'BGPOpen', open: open() }, to: 'OpenConfirm', actions: ['stop:connectRetry', 'sendKeepalive', 'start:keepalive:10', 'start:hold:30'] },
    { name: 'opensent: open hold 0', from: at('OpenSent'), ev: { type: 'BGPOpen', open: open({ holdTime: 0 }) }, to: 'OpenConfirm', actions: ['stop:connectRetry', 'sendKeepalive', 'stop:hold'] },
    { name: 'opensent: bad peer as', from: at('OpenSent'), ev: { type: 'BGPOpen', open: open({ asn: 1 }) }, to: 'Idle', actions: ['notify:2/2', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'opensent: hold expires', from: at('OpenSent'), ev: { type: 'HoldTimer_Expires' }, to: 'Idle', actions: ['notify:4/0', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'opensent: tcp fails', from: at('OpenSent'), ev: { type: 'TcpConnectionFails' }, to: 'Active', actions: ['drop', 'stop:hold', 'start:connectRetry:5'] },
    { name: 'opensent: keepalive unexpected', from: at('OpenSent'), ev: { type: 'KeepAliveMsg' }, to: 'Idle', actions: ['notify:5/1', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'opensent: header error', from: at('OpenSent'), ev: { type: 'BGPHeaderErr', error: new BgpError(1, 2) }, to: 'Idle', actions: ['notify:1/2', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'opensent: notification', from: at('OpenSent'), ev: { type: 'NotifMsg', code: 6, subcode: 2 }, to: 'Idle', actions: ['drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'openconfirm: keepalive', from: at('OpenConfirm', { holdTime: 30, keepaliveTime: 10 }), ev: { type: 'KeepAliveMsg' }, to: 'Established', actions: ['start:hold:30', 'established'] },
    { name: 'openconfirm: keepalive timer', from: at('OpenConfirm', { holdTime: 30, keepaliveTime: 10 }), ev: { type: 'KeepaliveTimer_Expires' }, to: 'OpenConfirm', actions: ['sendKeepalive', 'start:keepalive:10'] },
    { name: 'openconfirm: update unexpected', from: at('OpenConfirm'), ev: { type: 'UpdateMsg' }, to: 'Idle', actions: ['notify:5/2', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'openconfirm: second open', from: at('OpenConfirm'), ev: { type: 'BGPOpen', open: open() }, to: 'Idle', actions: ['notify:5/2', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'established: update restarts hold', from: at('Established', { holdTime: 30, keepaliveTime: 10 }), ev: { type: 'UpdateMsg' }, to: 'Established', actions: ['start:hold:30'] },
    { name: 'established: hold 0 keeps no timer', from: at('Established', { holdTime: 0, keepaliveTime: 0 }), ev: { type: 'KeepAliveMsg' }, to: 'Established', actions: [] },
    { name: 'established: update error', from: at('Established'), ev: { type: 'UpdateMsgErr', error: new BgpError(3, 1) }, to: 'Idle', actions: ['notify:3/1', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'established: hold expires', from: at('Established'), ev: { type: 'HoldTimer_Expires' }, to: 'Idle', actions: ['notify:4/0', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'established: stop', from: at('Established'), ev: { type: 'ManualStop' }, to: 'Idle', actions: ['notify:6/2', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'established: tcp fails', from: at('Established'), ev: { type: 'TcpConnectionFails' }, to: 'Idle', actions: ['drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
    { name: 'established: open', from: at('Established'), ev: { type: 'BGPOpen', open: open() }, to: 'Idle', actions: ['notify:5/3', 'drop', 'stop:connectRetry', 'stop:hold', 'stop:keepalive', 'sessionDown'] },
  ];
  for (const r of rows) {
    const [s, a] = step(r.from, r.ev);
    t.same([s.state, types(a)], [r.to, r.actions], r.name);
  }
});

t.test('sessionDown carries the notification (graceful restart needs to know)', async (t) => {
  const [, a1] = step(at('Established'), { type: 'TcpConnectionFails' });
  t.same(a1.find((x) => x.type === 'sessionDown'), { type: 'sessionDown', from: 'Established', reason: 'connection closed', notification: undefined });
  const [, a2] = step(at('Established'), { type: 'NotifMsg', code: 6, subcode: 4 });
  t.match(a2.find((x) => x.type === 'sessionDown'), { notification: { code: 6, subcode: 4, sent: false } });
});

t.test('hold time negotiation and collision resolution', async (t) => {
  t.same(negotiateHoldTime(90, 30), { holdTime: 30, keepaliveTime: 10 });
  t.same(negotiateHoldTime(90, 0), { holdTime: 0, keepaliveTime: 0 });
  t.same(negotiateHoldTime(9, 240), { holdTime: 9, keepaliveTime: 3 });
  t.equal(resolveCollision('10.0.0.1', '10.0.0.2'), 'keepInbound', 'lower local id: keep the peer-initiated connection');
  t.equal(resolveCollision('10.0.0.2', '10.0.0.1'), 'keepOutbound');
  t.equal(resolveCollision('200.0.0.1', '10.0.0.1'), 'keepOutbound', 'identifiers compare as unsigned');
});

t.test('a full session walk', async (t) => {
  let s = initialState(cfg);
  const seq: FsmEvent[] = [{ type: 'ManualStart' }, { type: 'Tcp_CR_Acked' }, { type: 'BGPOpen', open: open() }, { type: 'KeepAliveMsg' }];
  for (const e of seq) [s] = step(s, e);
  t.equal(s.state, 'Established');
  t.equal(s.holdTime, 30);
  t.equal(s.peerOpen?.routerId, '10.0.0.2');
});
