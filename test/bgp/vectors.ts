// Annotated BGP message vectors: one field per line, `#` comments. OPENs captured from
// BIRD 2.0.12 and GoBGP 3.10 on these machines; the rest annotated by hand from the RFCs.

/** Hex text (whitespace and `#` comments ignored) to bytes. */
export function hex(text: string): Uint8Array {
  const clean = text.split('\n').map((l) => l.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

const MARKER = 'ffffffffffffffffffffffffffffffff';

/** OPEN sent by BIRD 2.0.12 (iBGP AS 64512, graceful restart on), captured. */
export const BIRD_OPEN = `
${MARKER}       # marker
0039            # length 57
01              # type OPEN
04              # version 4
fc00            # my AS 64512
005a            # hold time 90
0a630002        # BGP identifier 10.99.0.2
1c              # optional parameters length 28
02 1a           # parameter: capabilities, 26 octets
01 04 0001 00 01  # multiprotocol: AFI 1 (IPv4), SAFI 1 (unicast)
02 00             # route refresh
40 06 0078 0001 01 00  # graceful restart: flags 0, restart time 120; IPv4 unicast, F=0
41 04 0000fc00    # 4-octet AS 64512
46 00             # enhanced route refresh (70): unknown to us, preserved
47 00             # long-lived graceful restart (71): unknown, preserved
`;

/** OPEN sent by GoBGP 3.10 (eBGP AS 64513), captured. */
export const GOBGP_OPEN = `
${MARKER}       # marker
0041            # length 65
01              # type OPEN
04              # version 4
fc01            # my AS 64513
005a            # hold time 90
0a630003        # BGP identifier 10.99.0.3
24              # optional parameters length 36
02 22           # parameter: capabilities, 34 octets
02 00                 # route refresh
49 04 02 766d 00      # FQDN (73): hostname "vm", no domain (unknown, preserved)
01 04 0001 00 01      # multiprotocol IPv4 unicast
01 04 0002 00 01      # multiprotocol IPv6 unicast
41 04 0000fc01        # 4-octet AS 64513
05 06 0001 0001 0002  # extended next hop (5): IPv4 unicast over IPv6 (unknown, preserved)
`;

/** UPDATE on a 4-octet-AS session with every attribute we decode. */
export const UPDATE_FULL = `
${MARKER}       # marker
005e            # length 94
02              # type UPDATE
0005            # withdrawn routes length
1a 0af40900     #   10.244.9.0/26
003b            # total path attribute length 59
40 01 01 00     # ORIGIN IGP (well-known, transitive)
40 02 0a 02 02 0000fc01 fa56ea00  # AS_PATH: AS_SEQUENCE [64513, 4200000000]
40 03 04 0a630001  # NEXT_HOP 10.99.0.1
80 04 04 00000032  # MULTI_EXIT_DISC 50 (optional non-transitive)
40 05 04 000000c8  # LOCAL_PREF 200
c0 08 04 fde80064  # COMMUNITIES 65000:100 (optional transitive)
80 09 04 0a630009  # ORIGINATOR_ID 10.99.0.9
80 0a 04 01010101  # CLUSTER_LIST [1.1.1.1]
1a 0af40100     # NLRI 10.244.1.0/26
08 0a           # NLRI 10.0.0.0/8
`;

/** UPDATE with MP_REACH_NLRI for IPv6 unicast, global + link-local next hop (RFC 2545 §3). */
export const UPDATE_V6 = `
${MARKER}       # marker
0056            # length 86
02              # type UPDATE
0000            # no withdrawn routes
003f            # total path attribute length 63
40 01 01 00     # ORIGIN IGP
40 02 00        # AS_PATH empty (iBGP)
40 05 04 00000064  # LOCAL_PREF 100
80 0e 2e        # MP_REACH_NLRI, 46 octets
  0002 01       #   AFI 2 (IPv6), SAFI 1
  20            #   next hop length 32
  fd000099000000000000000000000001  # global fd00:99::1
  fe800000000000000000000000000001  # link-local fe80::1
  00            #   reserved
  40 fd00001002440005  # fd00:10:244:5::/64
`;

/** End-of-RIB, IPv4 unicast: an empty UPDATE (RFC 4724 §2). */
export const EOR_V4 = `${MARKER} 0017 02 0000 0000`;
/** End-of-RIB, IPv6 unicast: an UPDATE with only an empty MP_UNREACH_NLRI. */
export const EOR_V6 = `${MARKER} 001d 02 0000 0006 # length 29; attrs 6
80 0f 03 0002 01  # MP_UNREACH_NLRI AFI 2 SAFI 1, nothing withdrawn
`;
export const KEEPALIVE = `${MARKER} 0013 04`;
/** NOTIFICATION Cease / Administrative Shutdown (RFC 4486). */
export const NOTIFICATION_CEASE = `${MARKER} 0015 03 06 02`;
/** NOTIFICATION OPEN error / Bad Peer AS, data = the AS (2 octets). */
export const NOTIFICATION_BAD_PEER_AS = `${MARKER} 0017 03 02 02 fc01`;
/** ROUTE-REFRESH IPv4 unicast (RFC 2918). */
export const ROUTE_REFRESH_V4 = `${MARKER} 0017 05 0001 00 01`;
