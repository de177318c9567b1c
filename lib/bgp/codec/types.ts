// Message shapes of the BGP-4 codec (RFC 4271 §4) with the capabilities and path attributes
// this speaker understands; unknown capabilities and attributes are carried as raw bytes.

export const MARKER_LEN = 16;
export const HEADER_LEN = 19;
export const MAX_MESSAGE_LEN = 4096;
export const MSG_OPEN = 1;
export const MSG_UPDATE = 2;
export const MSG_NOTIFICATION = 3;
export const MSG_KEEPALIVE = 4;
export const MSG_ROUTE_REFRESH = 5;
export const AS_TRANS = 23456;

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }                 // code 1, RFC 4760
  | { kind: 'routeRefresh' }                                              // code 2, RFC 2918
  | { kind: 'gracefulRestart'; flags: number; restartTime: number;        // code 64, RFC 4724
      families: { afi: number; safi: number; forwarding: boolean }[] }
  | { kind: 'fourOctetAs'; asn: number }                                  // code 65, RFC 6793
  | { kind: 'unknown'; code: number; value: Uint8Array };

export const CAP_MULTIPROTOCOL = 1;
export const CAP_ROUTE_REFRESH = 2;
export const CAP_GRACEFUL_RESTART = 64;
export const CAP_FOUR_OCTET_AS = 65;
/** Graceful restart flags (high nibble of the 16-bit field): R = restarted, N = notification (RFC 8538). */
export const GR_FLAG_RESTART = 0x8;
export const GR_FLAG_NOTIFICATION = 0x4;

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The speaker's AS: the 4-octet AS capability's value when present, else the 2-octet field. */
  asn: number;
  holdTime: number;
  routerId: string;
  capabilities: Capability[];
}

export const AS_SET = 1;
export const AS_SEQUENCE = 2;
export const AS_CONFED_SEQUENCE = 3;
export const AS_CONFED_SET = 4;
export interface AsPathSegment { type: number; asns: number[] }

export interface MpReach { afi: number; safi: number; nextHops: string[]; nlri: string[] }
export interface MpUnreach { afi: number; safi: number; withdrawn: string[] }
export interface RawAttribute { flags: number; code: number; value: Uint8Array }

export interface PathAttributes {
  origin?: number;
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  originatorId?: string;
  clusterList?: string[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Unrecognized optional transitive attributes, passed on with the Partial bit (RFC 4271 §5). */
  unknown?: RawAttribute[];
}

export const ATTR_ORIGIN = 1;
export const ATTR_AS_PATH = 2;
export const ATTR_NEXT_HOP = 3;
export const ATTR_MULTI_EXIT_DISC = 4;
export const ATTR_LOCAL_PREF = 5;
export const ATTR_ATOMIC_AGGREGATE = 6;
export const ATTR_AGGREGATOR = 7;
export const ATTR_COMMUNITIES = 8;
export const ATTR_ORIGINATOR_ID = 9;
export const ATTR_CLUSTER_LIST = 10;
export const ATTR_MP_REACH_NLRI = 14;
export const ATTR_MP_UNREACH_NLRI = 15;
export const ATTR_AS4_PATH = 17;
export const ATTR_AS4_AGGREGATOR = 18;

export const FLAG_OPTIONAL = 0x80;
export const FLAG_TRANSITIVE = 0x40;
export const FLAG_PARTIAL = 0x20;
export const FLAG_EXTENDED_LENGTH = 0x10;

export const ORIGIN_IGP = 0;
export const ORIGIN_EGP = 1;
export const ORIGIN_INCOMPLETE = 2;

export interface UpdateMessage {
  type: 'update';
  withdrawn: string[];
  attrs: PathAttributes;
  nlri: string[];
}

export interface NotificationMessage { type: 'notification'; code: number; subcode: number; data: Uint8Array }
export interface KeepaliveMessage { type: 'keepalive' }
export interface RouteRefreshMessage { type: 'routeRefresh'; afi: number; safi: number; subtype: number }

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** Session facts the codec needs (RFC 6793: AS_PATH width; RFC 7606 §7.5: LOCAL_PREF from eBGP). */
export interface CodecContext {
  fourOctetAs: boolean;
  /** True when the peer is external (LOCAL_PREF received from it is discarded). */
  ebgp?: boolean;
}
