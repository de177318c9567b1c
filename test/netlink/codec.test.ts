// Golden bytes for the rtnetlink codec, annotated field by field from the kernel uapi
// headers (iproute2 sends the same layouts), checked both ways; malformed input must only
// ever raise NetlinkDecodeError with the right code.
import t from 'tap';
import {
  NlWriter, attrString, decodeAttrs, decodeError, decodeMessages, decodeNextHops, encodeError, writeIp4,
} from '../../lib/netlink/codec';
import { NetlinkDecodeError } from '../../lib/netlink/errors';
import { decodeRoute, encodeRouteRequest, type Route } from '../../lib/netlink/route';
import { decodeAddr, encodeAddrRequest, type Addr } from '../../lib/netlink/addr';
import { decodeLink, encodeLinkUpRequest, encodeVethRequest, encodeVxlanRequest } from '../../lib/netlink/link';
import { decodeNeigh, encodeNeighParmsRequest, encodeNeighRequest, type Neigh } from '../../lib/netlink/neigh';
import { RTM_NEWROUTE, NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLMSG_ERROR } from '../../lib/netlink/constants';

/** Annotated hex: whitespace-separated byte pairs, `#` to end of line is a comment. */
function hex(text: string): Uint8Array {
  const clean = text.split('\n').map((l) => l.replace(/#.*/, '')).join(' ').replace(/\s+/g, '');
  if (clean.length % 2) throw new Error('odd hex');
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const routeCases: { name: string; route: Route; del?: boolean; bytes: string; decoded?: Route }[] = [
  {
    name: 'ip route add 10.244.1.0/26 dev 2 proto 177 (scope link: no gateway)',
    route: { family: 4, dst: '10.244.1.0/26', oif: 2, protocol: 177 },
    bytes: `
      02          # rtm_family AF_INET
      1a          # rtm_dst_len 26
      00          # rtm_src_len
      00          # rtm_tos
      fe          # rtm_table RT_TABLE_MAIN
      b1          # rtm_protocol 177 (RTPROT_BRINDLE)
      fd          # rtm_scope RT_SCOPE_LINK
      01          # rtm_type RTN_UNICAST
      00000000    # rtm_flags
      0800 0100   # nla_len 8, RTA_DST
      0af40100    #   10.244.1.0
      0800 0400   # nla_len 8, RTA_OIF
      02000000    #   ifindex 2
    `,
    decoded: { family: 4, dst: '10.244.1.0/26', oif: 2, protocol: 177, scope: 'link', type: 'unicast', table: 254 },
  },
  {
    name: 'ip -6 route add blackhole fd00:10:244::/122 table 1000 proto 177',
    route: { family: 6, dst: 'fd00:10:244::/122', type: 'blackhole', table: 1000, protocol: 177 },
    bytes: `
      0a          # rtm_family AF_INET6
      7a          # rtm_dst_len 122
      00 00       # rtm_src_len, rtm_tos
      00          # rtm_table RT_TABLE_UNSPEC: the table is > 255, so RTA_TABLE carries it
      b1          # rtm_protocol 177
      00          # rtm_scope RT_SCOPE_UNIVERSE
      06          # rtm_type RTN_BLACKHOLE
      00000000    # rtm_flags
      1400 0100   # nla_len 20, RTA_DST
      fd000010 02440000 00000000 00000000
      0800 0f00   # nla_len 8, RTA_TABLE
      e8030000    #   1000
    `,
    decoded: { family: 6, dst: 'fd00:10:244::/122', type: 'blackhole', table: 1000, protocol: 177, scope: 'universe' },
  },
  {
    name: 'ip route add 0.0.0.0/0 via 169.254.1.1 dev 2 onlink',
    route: { family: 4, dst: '0.0.0.0/0', gateway: '169.254.1.1', oif: 2, onlink: true },
    bytes: `
      02 00 00 00 # AF_INET, dst_len 0 (no RTA_DST), src_len, tos
      fe          # RT_TABLE_MAIN
      03          # rtm_protocol RTPROT_BOOT (ip's default)
      00          # RT_SCOPE_UNIVERSE (has a gateway)
      01          # RTN_UNICAST
      04000000    # rtm_flags RTNH_F_ONLINK
      0800 0500   # RTA_GATEWAY
      a9fe0101    #   169.254.1.1
      0800 0400   # RTA_OIF
      02000000
    `,
    decoded: { family: 4, dst: '0.0.0.0/0', gateway: '169.254.1.1', oif: 2, onlink: true, protocol: 3, scope: 'universe', type: 'unicast', table: 254 },
  },
  {
    name: 'ip route add 10.0.0.0/8 proto 177 nexthop via 198.18.0.2 dev 3 onlink nexthop via 198.18.0.3 dev 4 weight 2',
    route: {
      family: 4, dst: '10.0.0.0/8', protocol: 177,
      multipath: [{ gateway: '198.18.0.2', oif: 3, onlink: true }, { gateway: '198.18.0.3', oif: 4, weight: 2 }],
    },
    bytes: `
      02 08 00 00 # AF_INET, dst_len 8
      fe b1 00 01 # main, proto 177, universe, unicast
      00000000    # rtm_flags
      0800 0100   # RTA_DST
      0a000000    #   10.0.0.0
      2400 0900   # nla_len 36, RTA_MULTIPATH
      1000        #   rtnh_len 16
      04          #   rtnh_flags RTNH_F_ONLINK
      00          #   rtnh_hops (weight - 1)
      03000000    #   rtnh_ifindex 3
      0800 0500   #   RTA_GATEWAY
      c6120002    #     198.18.0.2
      1000 00 01  #   rtnh_len 16, flags 0, hops 1 (weight 2)
      04000000    #   rtnh_ifindex 4
      0800 0500 c6120003 # RTA_GATEWAY 198.18.0.3
    `,
    decoded: {
      family: 4, dst: '10.0.0.0/8', protocol: 177, scope: 'universe', type: 'unicast', table: 254,
      multipath: [{ gateway: '198.18.0.2', oif: 3, onlink: true, weight: 1 }, { gateway: '198.18.0.3', oif: 4, weight: 2 }],
    },
  },
  {
    name: 'ip route del 10.244.1.0/26 proto 177 (wildcards: type unspec, scope nowhere)',
    route: { family: 4, dst: '10.244.1.0/26', protocol: 177 },
    del: true,
    bytes: `
      02 1a 00 00 # AF_INET, dst_len 26
      fe          # main
      b1          # proto 177
      ff          # RT_SCOPE_NOWHERE: match any scope
      00          # RTN_UNSPEC: match any type
      00000000
      0800 0100 0af40100 # RTA_DST 10.244.1.0
    `,
  },
];

t.test('route messages', async (t) => {
  for (const c of routeCases) {
    t.test(c.name, async (t) => {
      const want = hex(c.bytes);
      t.equal(toHex(encodeRouteRequest(c.route, c.del)), toHex(want), 'encode equals bytes');
      if (c.decoded) t.same(decodeRoute(want), c.decoded, 'decode equals value');
    });
  }
});

t.test('full message with nlmsghdr', async (t) => {
  const w = new NlWriter(16); // small on purpose: must grow
  const start = w.beginMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 7, 0);
  w.bytes(encodeRouteRequest(routeCases[0].route));
  w.endMessage(start);
  const want = hex(`
    2c000000    # nlmsg_len 44 = 16 header + 12 rtmsg + 2 x 8 attributes
    1800        # nlmsg_type RTM_NEWROUTE (24)
    0506        # nlmsg_flags REQUEST|ACK|EXCL|CREATE = 0x605
    07000000    # nlmsg_seq 7
    00000000    # nlmsg_pid 0 (to the kernel)
    02 1a 00 00 fe b1 fd 01 00000000
    0800 0100 0af40100
    0800 0400 02000000
  `);
  t.equal(toHex(w.view()), toHex(want));
  const msgs = decodeMessages(want);
  t.equal(msgs.length, 1);
  t.match(msgs[0], { type: RTM_NEWROUTE, flags: 0x605, seq: 7, pid: 0 });
  t.same(decodeRoute(msgs[0].payload), routeCases[0].decoded);
});

t.test('veth with peer in another namespace', async (t) => {
  const want = hex(`
    00 00 0000 00000000 00000000 00000000   # ifinfomsg: AF_UNSPEC, type, index 0, flags, change
    0a00 0300 7665746830 00 0000            # IFLA_IFNAME "veth0\\0" + 2 pad
    0800 0400 78050000                      # IFLA_MTU 1400
    0a00 0100 eeeeeeeeeeee 0000             # IFLA_ADDRESS ee:ee:ee:ee:ee:ee + pad
    0800 1f00 01000000                      # IFLA_NUM_TX_QUEUES (31) 1 (the default)
    0800 2000 01000000                      # IFLA_NUM_RX_QUEUES (32) 1
    5400 1200                               # IFLA_LINKINFO, 84 bytes
      0900 0100 76657468 00 000000          #   IFLA_INFO_KIND "veth\\0" + 3 pad
      4400 0200                             #   IFLA_INFO_DATA, 68 bytes
        4000 0100                           #     VETH_INFO_PEER, 64 bytes
          00 00 0000 00000000 00000000 00000000 # peer ifinfomsg
          0900 0300 65746830 00 000000      #       IFLA_IFNAME "eth0\\0"
          0800 0400 78050000                #       IFLA_MTU 1400 (peer mtu defaults to mtu)
          0800 1f00 01000000                #       IFLA_NUM_TX_QUEUES 1 (the peer's own)
          0800 2000 01000000                #       IFLA_NUM_RX_QUEUES 1
          0800 1c00 05000000                #       IFLA_NET_NS_FD 5
  `);
  const got = encodeVethRequest({ name: 'veth0', peerName: 'eth0', peerNetnsFd: 5, mtu: 1400, mac: 'ee:ee:ee:ee:ee:ee' });
  t.equal(toHex(got), toHex(want));
  // Walk back down the nesting: LINKINFO → INFO_DATA → VETH_INFO_PEER → IFLA_IFNAME.
  const top = decodeAttrs(got, 16);
  const peer = decodeAttrs(decodeAttrs(decodeAttrs(top[18]!)[2]!)[1]!, 16);
  t.equal(Buffer.from(peer[3]!).toString(), 'eth0\0');
});

t.test('link up with IPv4 device settings (IFLA_AF_SPEC)', async (t) => {
  t.equal(toHex(encodeLinkUpRequest(7)), toHex(hex(`
    00 00 0000 07000000 01000000 01000000   # ifinfomsg: index 7, flags IFF_UP, change IFF_UP
  `)), 'plain up');
  t.equal(toHex(encodeLinkUpRequest(7, { forwarding: true, proxyArp: true })), toHex(hex(`
    00 00 0000 07000000 01000000 01000000   # ifinfomsg: index 7, IFF_UP/IFF_UP
    1c00 1a00                               # IFLA_AF_SPEC (26), 28 bytes
      1800 0200                             #   AF_INET (2), 24 bytes
        1400 0100                           #     IFLA_INET_CONF (1), 20 bytes
          0800 0100 01000000                #       IPV4_DEVCONF_FORWARDING (1) = 1
          0800 0300 01000000                #       IPV4_DEVCONF_PROXY_ARP (3) = 1
  `)), 'up + forwarding + proxy_arp');
  t.equal(toHex(encodeLinkUpRequest(7, { proxyArp: false })), toHex(hex(`
    00 00 0000 07000000 01000000 01000000
    1400 1a00 1000 0200 0c00 0100
          0800 0300 00000000                #       IPV4_DEVCONF_PROXY_ARP (3) = 0
  `)), 'only what is given');
});

t.test('neighbour table parameters (RTM_SETNEIGHTBL)', async (t) => {
  t.equal(toHex(encodeNeighParmsRequest({ family: 4, index: 9, proxyDelayMs: 0 })), toHex(hex(`
    02 00 0000                              # ndtmsg: AF_INET, pad
    0e00 0100 6172705f6361636865 00 0000    # NDTA_NAME "arp_cache\\0" (14) + 2 pad
    1800 0600                               # NDTA_PARMS (6), 24 bytes
      0800 0100 09000000                    #   NDTPA_IFINDEX 9
      0c00 0d00 0000000000000000            #   NDTPA_PROXY_DELAY (13), u64 ms 0
  `)), 'arp_cache proxy_delay 0');
  t.equal(toHex(encodeNeighParmsRequest({ family: 6, index: 3, proxyDelayMs: 0x100000001 })), toHex(hex(`
    0a 00 0000                              # ndtmsg: AF_INET6
    1000 0100 6e646973635f6361636865 00     # NDTA_NAME "ndisc_cache\\0" (16, no pad)
    1800 0600
      0800 0100 03000000                    #   NDTPA_IFINDEX 3
      0c00 0d00 0100000001000000            #   NDTPA_PROXY_DELAY, u64 LE 2^32+1
  `)), 'ndisc_cache, a u64 past 32 bits');
});

t.test('vxlan device', async (t) => {
  const want = hex(`
    00 00 0000 00000000 00000000 00000000   # ifinfomsg
    1100 0300 7678 6c61 6e2e 6361 6c69 636f 00 000000  # IFLA_IFNAME "vxlan.calico\\0" (17) + 3 pad
    3c00 1200                               # IFLA_LINKINFO, 60 bytes
      0a00 0100 7678 6c61 6e00 0000         #   IFLA_INFO_KIND "vxlan\\0"
      2c00 0200                             #   IFLA_INFO_DATA, 44 bytes
        0800 0100 00100000                  #     IFLA_VXLAN_ID 4096
        0800 0300 02000000                  #     IFLA_VXLAN_LINK 2
        0800 0400 c6120001                  #     IFLA_VXLAN_LOCAL 198.18.0.1
        0600 0f00 12b5 0000                 #     IFLA_VXLAN_PORT 4789, network order
        0500 0700 00 000000                 #     IFLA_VXLAN_LEARNING 0
  `);
  t.equal(toHex(encodeVxlanRequest({ name: 'vxlan.calico', vni: 4096, port: 4789, localIp: '198.18.0.1', dev: 2 })), toHex(want));
});

t.test('link reply', async (t) => {
  const reply = hex(`
    00 00 0100  # AF_UNSPEC, pad, ifi_type ARPHRD_ETHER (1)
    07000000    # ifi_index 7
    43100100    # ifi_flags UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP = 0x11043
    00000000    # ifi_change
    0a00 0300 6272 6931 3233 00 00  # IFLA_IFNAME "bri123\\0" + pad
    0800 0400 dc050000              # IFLA_MTU 1500
    0a00 0100 eeeeeeeeeeee 0000     # IFLA_ADDRESS
    0500 1000 06 000000             # IFLA_OPERSTATE IF_OPER_UP
    0800 0500 02000000              # IFLA_LINK 2 (the peer)
    0800 2500 00000000              # IFLA_LINK_NETNSID 0
    1000 1200                       # IFLA_LINKINFO
      0900 0100 76657468 00 000000  #   IFLA_INFO_KIND "veth"
  `);
  t.same(decodeLink(reply), {
    index: 7, name: 'bri123', mtu: 1500, mac: 'ee:ee:ee:ee:ee:ee', up: true, operUp: true, kind: 'veth',
    peerIndex: 2, linkNetnsId: 0, flags: 0x11043,
  });
});

t.test('address messages', async (t) => {
  const cases: { name: string; index: number; cidr: string; opts?: Parameters<typeof encodeAddrRequest>[2]; bytes: string; decoded: Addr }[] = [
    {
      name: 'ip addr add 10.244.1.5/32 dev 2',
      index: 2, cidr: '10.244.1.5/32',
      bytes: `
        02 20 00 00 # AF_INET, prefixlen 32, flags 0, scope universe
        02000000    # ifa_index 2
        0800 0200 0af40105 # IFA_LOCAL
        0800 0100 0af40105 # IFA_ADDRESS (same: not point-to-point)
      `,
      decoded: { index: 2, family: 4, address: '10.244.1.5', prefixLen: 32, scope: 0, flags: 0 },
    },
    {
      name: 'ip addr add fd00::1/128 dev 2 nodad noprefixroute scope link',
      index: 2, cidr: 'fd00::1/128', opts: { nodad: true, noprefixroute: true, scope: 'link' },
      bytes: `
        0a 80       # AF_INET6, prefixlen 128
        02          # ifa_flags: low 8 bits, IFA_F_NODAD
        fd          # RT_SCOPE_LINK
        02000000
        1400 0200 fd000000 00000000 00000000 00000001 # IFA_LOCAL
        1400 0100 fd000000 00000000 00000000 00000001 # IFA_ADDRESS
        0800 0800 02020000 # IFA_FLAGS NODAD|NOPREFIXROUTE (0x202: needs 32 bits)
      `,
      decoded: { index: 2, family: 6, address: 'fd00::1', prefixLen: 128, scope: 253, flags: 0x202 },
    },
  ];
  for (const c of cases) {
    const want = hex(c.bytes);
    t.equal(toHex(encodeAddrRequest(c.index, c.cidr, c.opts)), toHex(want), `${c.name}: encode`);
    t.same(decodeAddr(want), c.decoded, `${c.name}: decode`);
  }
});

t.test('neighbour messages', async (t) => {
  const cases: { name: string; n: Neigh; bytes: string; decoded: Neigh }[] = [
    {
      name: 'bridge fdb append 00:00:00:00:00:00 dev 3 dst 198.18.0.2',
      n: { index: 3, family: 'bridge', mac: '00:00:00:00:00:00', ip: '198.18.0.2' },
      bytes: `
        07 00 0000  # AF_BRIDGE, pads
        03000000    # ndm_ifindex 3
        c000        # ndm_state NUD_NOARP|NUD_PERMANENT (as bridge(8) sends)
        02          # ndm_flags NTF_SELF
        00          # ndm_type
        0800 0100 c6120002      # NDA_DST 198.18.0.2 (remote VTEP)
        0a00 0200 000000000000 0000 # NDA_LLADDR all-zeros + pad
      `,
      decoded: { index: 3, family: 'bridge', state: 0xc0, flags: 2, ip: '198.18.0.2', mac: '00:00:00:00:00:00' },
    },
    {
      name: 'ip neigh replace 10.244.2.0 lladdr 66:55:44:33:22:11 dev 3 nud permanent',
      n: { index: 3, family: 4, ip: '10.244.2.0', mac: '66:55:44:33:22:11' },
      bytes: `
        02 00 0000 03000000 # AF_INET, ifindex 3
        8000 00 00          # NUD_PERMANENT, flags 0, type 0
        0800 0100 0af40200  # NDA_DST
        0a00 0200 665544332211 0000 # NDA_LLADDR
      `,
      decoded: { index: 3, family: 4, state: 0x80, flags: 0, ip: '10.244.2.0', mac: '66:55:44:33:22:11' },
    },
  ];
  for (const c of cases) {
    const want = hex(c.bytes);
    t.equal(toHex(encodeNeighRequest(c.n)), toHex(want), `${c.name}: encode`);
    t.same(decodeNeigh(want), c.decoded, `${c.name}: decode`);
  }
});

t.test('NLMSG_ERROR with extended ACK', async (t) => {
  const msg = hex(`
    3c000000    # nlmsg_len 60 = 16 + 4 errno + 16 echoed header + 16 MSG + 8 OFFS
    0200        # NLMSG_ERROR
    0003        # flags NLM_F_CAPPED|NLM_F_ACK_TLVS
    01000000    # seq 1
    39300000    # pid 12345
    efffffff    # error -17 (EEXIST)
    2c000000 1800 0506 01000000 00000000 # the request's header only (capped)
    0f00 0100 626164207072656669 78 00 00 # NLMSGERR_ATTR_MSG "bad prefix\\0" + pad
    0800 0200 20000000 # NLMSGERR_ATTR_OFFS 32
  `);
  const [m] = decodeMessages(msg);
  t.equal(m.type, NLMSG_ERROR);
  t.same(decodeError(m.payload, m.flags), { errno: 17, seq: 1, extack: 'bad prefix', extackOffset: 32 });
  const w = new NlWriter();
  const start = w.beginMessage(NLMSG_ERROR, 0x300, 1, 12345);
  encodeError(w, { errno: 17, request: { len: 44, type: 24, flags: 0x605, seq: 1, pid: 0 }, extack: 'bad prefix' });
  w.attrU32(2, 32);
  w.endMessage(start);
  t.equal(toHex(w.view()), toHex(msg), 'encode equals bytes');

  const ack = hex(`
    24000000 0200 0001 05000000 39300000 # len 36, NLMSG_ERROR, CAPPED, seq 5
    00000000                             # error 0: an ACK
    2c000000 1800 0506 05000000 00000000 # request header
  `);
  const [a] = decodeMessages(ack);
  t.same(decodeError(a.payload, a.flags), { errno: 0, seq: 5 });

  // Not capped: the whole request is echoed before the TLVs.
  const uncapped = hex(`
    eaffffff    # -22 EINVAL
    18000000 1800 0506 09000000 00000000 # request header, len 24...
    aabbccdd eeff0011                     # ...and its 8 bytes of body
    0800 0100 78797a00                    # NLMSGERR_ATTR_MSG "xyz"
  `);
  t.same(decodeError(uncapped, 0x200), { errno: 22, seq: 9, extack: 'xyz' });
});

t.test('writeIp4 accepts what parseIp accepts', async (t) => {
  const b = new Uint8Array(4);
  for (const [s, ok] of [['0.0.0.0', true], ['255.255.255.255', true], ['10.244.1.0', true], ['256.0.0.0', false],
    ['01.2.3.4', false], ['1.2.3', false], ['1.2.3.4.5', false], ['1..2.3', false], ['1.2.3.4 ', false], ['a.b.c.d', false], ['::1', false]] as const) {
    t.equal(writeIp4(b, 0, s), ok, s);
  }
});

type Bad = { name: string; fn: () => unknown; code: string };
t.test('malformed input raises NetlinkDecodeError with its code', async (t) => {
  const cases: Bad[] = [
    { name: 'message shorter than nlmsghdr', fn: () => decodeMessages(hex('10000000 0200')), code: 'truncated-header' },
    { name: 'nlmsg_len below header size', fn: () => decodeMessages(hex('08000000 0200 0000 00000000 00000000')), code: 'bad-length' },
    { name: 'nlmsg_len past the buffer', fn: () => decodeMessages(hex('20000000 0200 0000 00000000 00000000')), code: 'bad-length' },
    { name: 'attribute header cut', fn: () => decodeAttrs(hex('0800 01')), code: 'truncated-header' },
    { name: 'nla_len below 4', fn: () => decodeAttrs(hex('0200 0100')), code: 'bad-length' },
    { name: 'nla_len past the end', fn: () => decodeAttrs(hex('0c00 0100 00000000')), code: 'bad-length' },
    { name: 'nlmsgerr too short', fn: () => decodeError(hex('efffffff 0000'), 0), code: 'truncated-body' },
    { name: 'nlmsgerr echoed length past the end', fn: () => decodeError(hex('eaffffff ff000000 1800 0000 01000000 00000000'), 0x200), code: 'bad-length' },
    { name: 'rtmsg cut', fn: () => decodeRoute(hex('02 1a 00 00 fe')), code: 'truncated-body' },
    { name: 'RTA_DST of 3 bytes', fn: () => decodeRoute(hex('02 18 00 00 fe 00 00 01 00000000 0700 0100 0a0000 00')), code: 'bad-attribute' },
    { name: 'RTA_OIF of 2 bytes', fn: () => decodeRoute(hex('02 18 00 00 fe 00 00 01 00000000 0600 0400 0200 0000')), code: 'bad-attribute' },
    { name: 'rtnexthop length past the end', fn: () => decodeNextHops(hex('2000 00 00 03000000')), code: 'bad-length' },
    { name: 'rtnexthop cut', fn: () => decodeNextHops(hex('1000 00')), code: 'truncated-header' },
    { name: 'ifinfomsg cut', fn: () => decodeLink(hex('00 00 0100 07000000')), code: 'truncated-body' },
    { name: 'ifaddrmsg cut', fn: () => decodeAddr(hex('02 20 00')), code: 'truncated-body' },
    { name: 'ndmsg cut', fn: () => decodeNeigh(hex('07 00 0000 03000000')), code: 'truncated-body' },
    { name: 'IFLA_MTU of 1 byte', fn: () => decodeLink(hex('00 00 0100 07000000 00000000 00000000 0500 0400 01 000000')), code: 'bad-attribute' },
  ];
  for (const c of cases) {
    try {
      c.fn();
      t.fail(`${c.name}: no error`);
    } catch (err) {
      t.ok(err instanceof NetlinkDecodeError, `${c.name}: NetlinkDecodeError`);
      t.equal((err as NetlinkDecodeError).code, c.code, `${c.name}: ${c.code}`);
    }
  }
});

t.test('random bytes never raise anything but NetlinkDecodeError', async (t) => {
  let seed = 0x2545f491;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const decoders = [decodeMessages, decodeRoute, decodeLink, decodeAddr, decodeNeigh, decodeNextHops, (b: Uint8Array) => decodeError(b, 0x200)];
  let others = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from({ length: rnd() % 64 }, rnd);
    // Make lengths plausible half the time so decoding goes deeper.
    if (i % 2 && b.length >= 16) { b[0] = b.length; b[1] = 0; b[12] = 8; b[13] = 0; }
    for (const d of decoders) {
      try { d(b); } catch (err) { if (!(err instanceof NetlinkDecodeError)) others++; }
    }
  }
  t.equal(others, 0);
});

t.test('encoders reject bad input with TypeError', async (t) => {
  t.throws(() => encodeRouteRequest({ family: 4, dst: '10.0.0.0' }), TypeError);
  t.throws(() => encodeRouteRequest({ family: 4, dst: '10.0.0.0/33' }), TypeError);
  t.throws(() => encodeRouteRequest({ family: 4, dst: '10.0.0.0/x' }), TypeError);
  t.throws(() => encodeRouteRequest({ family: 4, dst: 'nonsense/8' }), TypeError);
  t.throws(() => encodeAddrRequest(1, '10.0.0.1'), TypeError);
  t.throws(() => encodeAddrRequest(1, '10.0.0.1/40'), TypeError);
  t.throws(() => encodeNeighRequest({ index: 1, family: 4, ip: '10.0.0.1', mac: 'zz:00:00:00:00:00' }), TypeError);
});

t.test('string attributes: the ASCII fast path and UTF-8 give the bytes Buffer gives', async (t) => {
  for (const s of ['eth0', 'bria875574dc2e', '', 'a\u00e9b', '\u7f51\u53e31', 'x\u{1f600}', 'tab\tname']) {
    const w = new NlWriter(8);
    w.attrString(3, s);
    const bytes = Buffer.from(s, 'utf8');
    const want = Buffer.alloc(((4 + bytes.length + 1) + 3) & ~3);
    want.writeUInt16LE(4 + bytes.length + 1, 0);
    want.writeUInt16LE(3, 2);
    bytes.copy(want, 4);
    t.same(Buffer.from(w.view()), want, `encode ${JSON.stringify(s)}`);
    const attrs = decodeAttrs(w.view(), 0);
    t.equal(attrString(attrs[3]!), s, `decode ${JSON.stringify(s)}`);
  }
});
