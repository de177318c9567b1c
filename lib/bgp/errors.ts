// BGP errors: one class carrying the NOTIFICATION code/subcode/data (RFC 4271 §4.5) and the
// RFC 7606 handling the receiver must apply. A decode error *is* the NOTIFICATION to send.

export type ErrorHandling = 'session-reset' | 'treat-as-withdraw' | 'attribute-discard';

// RFC 4271 §4.5 error codes.
export const MESSAGE_HEADER_ERROR = 1;
export const OPEN_MESSAGE_ERROR = 2;
export const UPDATE_MESSAGE_ERROR = 3;
export const HOLD_TIMER_EXPIRED = 4;
export const FSM_ERROR = 5;
export const CEASE = 6;
export const ROUTE_REFRESH_MESSAGE_ERROR = 7; // RFC 7313

// Message Header Error subcodes.
export const CONNECTION_NOT_SYNCHRONIZED = 1;
export const BAD_MESSAGE_LENGTH = 2;
export const BAD_MESSAGE_TYPE = 3;
// OPEN Message Error subcodes.
export const UNSUPPORTED_VERSION_NUMBER = 1;
export const BAD_PEER_AS = 2;
export const BAD_BGP_IDENTIFIER = 3;
export const UNSUPPORTED_OPTIONAL_PARAMETER = 4;
export const UNACCEPTABLE_HOLD_TIME = 6;
export const UNSUPPORTED_CAPABILITY = 7;
// UPDATE Message Error subcodes.
export const MALFORMED_ATTRIBUTE_LIST = 1;
export const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2;
export const MISSING_WELL_KNOWN_ATTRIBUTE = 3;
export const ATTRIBUTE_FLAGS_ERROR = 4;
export const ATTRIBUTE_LENGTH_ERROR = 5;
export const INVALID_ORIGIN_ATTRIBUTE = 6;
export const INVALID_NEXT_HOP_ATTRIBUTE = 8;
export const OPTIONAL_ATTRIBUTE_ERROR = 9;
export const INVALID_NETWORK_FIELD = 10;
export const MALFORMED_AS_PATH = 11;
// FSM Error subcodes (RFC 6608).
export const FSM_UNEXPECTED_IN_OPENSENT = 1;
export const FSM_UNEXPECTED_IN_OPENCONFIRM = 2;
export const FSM_UNEXPECTED_IN_ESTABLISHED = 3;
// Cease subcodes (RFC 4486).
export const CEASE_MAX_PREFIXES = 1;
export const CEASE_ADMINISTRATIVE_SHUTDOWN = 2;
export const CEASE_PEER_DECONFIGURED = 3;
export const CEASE_ADMINISTRATIVE_RESET = 4;
export const CEASE_CONNECTION_REJECTED = 5;
export const CEASE_OTHER_CONFIGURATION_CHANGE = 6;
export const CEASE_CONNECTION_COLLISION_RESOLUTION = 7;
export const CEASE_OUT_OF_RESOURCES = 8;

const CODE_NAMES: Record<number, string> = {
  1: 'message header error', 2: 'open message error', 3: 'update message error',
  4: 'hold timer expired', 5: 'finite state machine error', 6: 'cease', 7: 'route refresh message error',
};

/** A BGP protocol error: what to put in the NOTIFICATION, and how RFC 7606 says to react. */
export class BgpError extends Error {
  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Uint8Array = new Uint8Array(0),
    readonly handling: ErrorHandling = 'session-reset',
    detail?: string,
  ) {
    super(`bgp ${CODE_NAMES[code] ?? `error ${code}`} (${code}/${subcode})${detail ? `: ${detail}` : ''}`);
    this.name = 'BgpError';
  }
}

/** Human text for a code/subcode pair, as used in status info. */
export function describeError(code: number, subcode: number): string {
  return `${CODE_NAMES[code] ?? `error ${code}`} ${code}/${subcode}`;
}
