// What one node originates into BGP: each block affine to it (confirmed affinity), and a host
// route (/32, /128) for every address it borrowed from a block affine to another node.
// Pure; the agent advertises `prefixes` and installs a blackhole for each of `blocks`.
import type { Resource } from '../datastore/types';
import { formatIp, nthIp, tryParseCidr } from '../ip';

export interface Originations {
  /** Blocks affine to this node, sorted. Each gets a local blackhole route. */
  blocks: string[];
  /** Host routes of borrowed addresses, sorted. */
  borrowed: string[];
}

export interface OriginationInputs {
  node: string;
  blocks: Resource<'IPAMBlock'>[];
  affinities: Resource<'BlockAffinity'>[];
}

/** Computes the originations of `node`. */
export function computeOriginations(inp: OriginationInputs): Originations {
  const confirmed = new Set<string>();
  for (const a of inp.affinities) {
    if (a.spec.node === inp.node && a.spec.state === 'confirmed' && !a.spec.deleted) confirmed.add(a.spec.cidr);
  }
  const blocks: string[] = [];
  const borrowed: string[] = [];
  for (const b of inp.blocks) {
    const cidr = tryParseCidr(b.spec.cidr);
    if (!cidr) continue;
    const mine = b.spec.affinity === `host:${inp.node}`;
    if (mine) {
      if (confirmed.has(b.spec.cidr) && !b.spec.deleted) blocks.push(b.spec.cidr);
      continue;
    }
    for (const [ord, alloc] of Object.entries(b.spec.allocations ?? {})) {
      if (alloc?.attrs?.node !== inp.node) continue;
      const ordinal = Number(alloc.ordinal ?? ord);
      if (!Number.isInteger(ordinal) || ordinal < 0) continue;
      borrowed.push(`${formatIp(nthIp(cidr, BigInt(ordinal)))}/${cidr.family === 4 ? 32 : 128}`);
    }
  }
  blocks.sort();
  borrowed.sort();
  return { blocks, borrowed };
}
