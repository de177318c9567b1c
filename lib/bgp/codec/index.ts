// The BGP-4 codec: whole messages (header included) to values and back. Pure; no sockets.
import { checkHeader, decodeOpen, decodeNotification, decodeRouteRefresh, encodeOpen, encodeKeepalive, encodeNotification, encodeRouteRefresh } from './message';
import { decodeUpdate, encodeUpdate, type DecodedUpdate } from './update';
import { MSG_OPEN, MSG_UPDATE, MSG_NOTIFICATION, MSG_KEEPALIVE, type BgpMessage, type CodecContext } from './types';

export * from './types';
export * from './message';
export * from './update';
export * from './prefix';

export type DecodedMessage = Exclude<BgpMessage, { type: 'update' }> | DecodedUpdate;

/** Decodes one complete message; throws BgpError (session-reset) on a fatal error. */
export function decodeMessage(buf: Uint8Array, ctx: CodecContext): DecodedMessage {
  const [len, type] = checkHeader(buf, 0);
  if (len !== buf.length) throw new RangeError(`message buffer of ${buf.length} octets, header says ${len}`);
  switch (type) {
    case MSG_OPEN: return decodeOpen(buf);
    case MSG_UPDATE: return decodeUpdate(buf, ctx);
    case MSG_NOTIFICATION: return decodeNotification(buf);
    case MSG_KEEPALIVE: return { type: 'keepalive' };
    default: return decodeRouteRefresh(buf);
  }
}

/** Encodes one message. */
export function encodeMessage(m: BgpMessage, ctx: CodecContext): Uint8Array {
  switch (m.type) {
    case 'open': return encodeOpen(m);
    case 'update': return encodeUpdate(m, ctx);
    case 'notification': return encodeNotification(m);
    case 'keepalive': return encodeKeepalive();
    case 'routeRefresh': return encodeRouteRefresh(m);
  }
}
