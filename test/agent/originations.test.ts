import t from 'tap';
import { computeOriginations } from '../../lib/agent/originations';
import { forwardingRoute, type ForwardingContext } from '../../lib/agent/forwarding';
import type { Resource, BlockAllocation } from '../../lib/datastore/types';
import { parseCidr } from '../../lib/ip';

function block(cidr: string, node: string | undefined, allocs: Record<string, BlockAllocation> = {}): Resource<'IPAMBlock'> {
  return { kind: 'IPAMBlock', metadata: { name: cidr }, spec: { cidr, ...(node ? { affinity: `host:${node}` } : {}), allocations: allocs, unallocated: [], sequence: {}, seqNumber: 1 } };
}
function aff(node: string, cidr: string, state: 'pending' | 'confirmed' = 'confirmed'): Resource<'BlockAffinity'> {
  return { kind: 'BlockAffinity', metadata: { name: `${node}-${cidr}` }, spec: { node, cidr, state } };
}

t.test('originations', async (t) => {
  const blocks = [
    block('10.244.0.0/26', 'n1'),
    block('10.244.0.64/26', 'n1'),               // pending affinity: not yet ours
    block('10.244.0.128/26', 'n2', {
      '3': { ordinal: 3, handle: 'h1', seq: 1, attrs: { node: 'n1' } },
      '4': { ordinal: 4, handle: 'h2', seq: 1, attrs: { node: 'n2' } },
    }),
    block('fd00:10:244::/122', 'n3', { '1': { ordinal: 1, handle: 'h3', seq: 1, attrs: { node: 'n1' } } }),
    block('10.244.1.0/26', undefined, { '0': { ordinal: 0, handle: 'h4', seq: 1, attrs: { node: 'n1' } } }),
  ];
  const affs = [aff('n1', '10.244.0.0/26'), aff('n1', '10.244.0.64/26', 'pending'), aff('n2', '10.244.0.128/26')];
  t.same(computeOriginations({ node: 'n1', blocks, affinities: affs }), {
    blocks: ['10.244.0.0/26'],
    borrowed: ['10.244.0.131/32', '10.244.1.0/32', 'fd00:10:244::1/128'],
  });
  t.same(computeOriginations({ node: 'n2', blocks, affinities: affs }), { blocks: ['10.244.0.128/26'], borrowed: [] });
  t.same(computeOriginations({ node: 'n9', blocks, affinities: affs }), { blocks: [], borrowed: [] });
});

const base = (): ForwardingContext => ({
  myAddrs: new Set(['198.18.0.11']),
  uplinkSubnets: [parseCidr('198.18.0.0/24')],
  uplinkIndex: 2,
  pools: [
    { cidr: parseCidr('10.244.0.0/16'), vxlanMode: 'Never', ipipMode: 'Never' },
    { cidr: parseCidr('10.250.0.0/16'), vxlanMode: 'Always', ipipMode: 'Never' },
    { cidr: parseCidr('10.251.0.0/16'), vxlanMode: 'CrossSubnet', ipipMode: 'Never' },
    { cidr: parseCidr('10.252.0.0/16'), vxlanMode: 'Never', ipipMode: 'Always' },
  ],
  nodesByIp: new Map([
    ['198.18.0.12', { name: 'n2', vxlanTunnelAddress: '10.250.0.1', vxlanTunnelMACAddr: '66:00:00:00:00:02' }],
    ['198.18.1.13', { name: 'n3', vxlanTunnelAddress: '10.251.0.65' }],
  ]),
  ownPrefixes: new Set(['10.244.0.0/26']),
  vxlanIndex: 7,
  resolve: (nh) => (nh.startsWith('198.18.1.') ? { gateway: '198.18.0.1', oif: 2 } : undefined),
});

const fcases: { name: string; prefix: string; nh: string[]; ctx?: Partial<ForwardingContext>; want: any; problems?: number }[] = [
  { name: 'plain on-link', prefix: '10.244.1.0/26', nh: ['198.18.0.12'], want: { family: 4, dst: '10.244.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true } },
  { name: 'plain without uplink index', prefix: '10.244.1.0/26', nh: ['198.18.0.12'], ctx: { uplinkIndex: undefined }, want: { family: 4, dst: '10.244.1.0/26', gateway: '198.18.0.12' } },
  { name: 'plain other subnet resolves recursively', prefix: '10.244.2.0/26', nh: ['198.18.1.13'], want: { family: 4, dst: '10.244.2.0/26', gateway: '198.18.0.1', oif: 2 } },
  { name: 'own prefix skipped', prefix: '10.244.0.0/26', nh: ['198.18.0.12'], want: undefined },
  { name: 'own next hop skipped', prefix: '10.244.3.0/26', nh: ['198.18.0.11'], want: undefined },
  { name: 'vxlan always', prefix: '10.250.1.0/26', nh: ['198.18.0.12'], want: { family: 4, dst: '10.250.1.0/26', gateway: '10.250.0.1', oif: 7, onlink: true } },
  { name: 'vxlan cross-subnet same subnet is plain', prefix: '10.251.1.0/26', nh: ['198.18.0.12'], want: { family: 4, dst: '10.251.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true } },
  { name: 'vxlan cross-subnet other subnet', prefix: '10.251.2.0/26', nh: ['198.18.1.13'], want: { family: 4, dst: '10.251.2.0/26', gateway: '10.251.0.65', oif: 7, onlink: true } },
  { name: 'vxlan without tunnel data falls back with a problem', prefix: '10.250.1.0/26', nh: ['198.18.0.12'], ctx: { vxlanIndex: undefined }, problems: 1,
    want: { family: 4, dst: '10.250.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true } },
  { name: 'ipip via tunl0 onlink', prefix: '10.252.1.0/26', nh: ['198.18.0.12'], ctx: { tunlIndex: 9 }, want: { family: 4, dst: '10.252.1.0/26', gateway: '198.18.0.12', oif: 9, onlink: true } },
  { name: 'ipip without tunl0 is a problem', prefix: '10.252.1.0/26', nh: ['198.18.0.12'], problems: 1, want: { family: 4, dst: '10.252.1.0/26', gateway: '198.18.0.12', oif: 2, onlink: true } },
  { name: 'ecmp', prefix: '10.244.9.0/26', nh: ['198.18.0.12', '198.18.0.14'], want: { family: 4, dst: '10.244.9.0/26', multipath: [
    { gateway: '198.18.0.12', oif: 2, onlink: true }, { gateway: '198.18.0.14', oif: 2, onlink: true }] } },
  { name: 'unreachable next hop', prefix: '10.244.9.0/26', nh: ['203.0.113.1'], problems: 1, want: undefined },
];
for (const c of fcases) {
  t.test(`forwarding: ${c.name}`, async (t) => {
    const r = forwardingRoute(c.prefix, c.nh, { ...base(), ...c.ctx });
    t.same(r.route, c.want);
    t.equal(r.problems.length, c.problems ?? 0);
  });
}

import { Forwarder } from '../../lib/agent/forwarding';
t.test('Forwarder gives the same routes as forwardingRoute', async (t) => {
  const ctx = base();
  ctx.tunlIndex = 9;
  const f = new Forwarder(ctx);
  for (const c of fcases) {
    if (c.ctx) continue;
    t.same(f.route(c.prefix, c.nh).route, forwardingRoute(c.prefix, c.nh, ctx).route, c.name);
    t.same(f.route(c.prefix, c.nh).route, forwardingRoute(c.prefix, c.nh, ctx).route, `${c.name} (cached)`);
  }
  t.same(f.route('10.250.7.0/26', ['198.18.0.12']).route, { family: 4, dst: '10.250.7.0/26', gateway: '10.250.0.1', oif: 7, onlink: true });
});
