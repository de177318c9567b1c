// Pure helpers over IPAM blocks: resource names for blocks, affinities and handles, block
// CIDRs inside a pool, ordinal <-> address arithmetic, and in-memory block edits.
import { formatIp, nthIp, parseCidr, sizeOf, bits, maskOf, type Cidr, type Ip } from '../ip';
import type { IPAMBlockSpec, Resource, BlockAllocation } from '../datastore/types';

/** Resource name of the block with this CIDR: "10-244-0-0-26", "fd00-10-244----122". */
export function blockName(cidr: string): string {
  return cidr.replace(/[.:/]/g, '-');
}

/** Resource name of a node's affinity to a block: "<node>--<block name>". */
export function affinityName(node: string, cidr: string): string {
  return `${node}--${blockName(cidr)}`;
}

/** Name prefix of all affinities of a node (filter on spec.node too: prefixes may nest). */
export function affinityPrefix(node: string): string { return `${node}--`; }

/** Resource name of a handle. Handle ids are `<network>.<container id>`. */
export function handleName(handle: string): string { return handle; }

/** Number of addresses in a block of this prefix length. */
export function blockSizeOf(family: 4 | 6, blockLen: number): number {
  return Number(1n << BigInt(bits(family) - blockLen));
}

/** The `index`th block of `blockLen` inside `pool`, or undefined past the end. */
export function nthBlock(pool: Cidr, blockLen: number, index: bigint): Cidr | undefined {
  const count = 1n << BigInt(blockLen - pool.len);
  if (index < 0n || index >= count) return undefined;
  const step = 1n << BigInt(bits(pool.family) - blockLen);
  return { family: pool.family, value: (pool.value & maskOf(pool.family, pool.len)) + index * step, len: blockLen };
}

/** Number of blocks of `blockLen` in `pool`. */
export function blockCount(pool: Cidr, blockLen: number): bigint {
  return 1n << BigInt(blockLen - pool.len);
}

/** The block of `blockLen` containing `ip`. */
export function blockOf(ip: Ip, blockLen: number): Cidr {
  return { family: ip.family, value: ip.value & maskOf(ip.family, blockLen), len: blockLen };
}

/** Address text of an ordinal in a block. */
export function ordinalIp(block: Cidr, ordinal: number): string {
  return formatIp(nthIp(block, BigInt(ordinal)));
}

/** Ordinal of an address inside a block. */
export function ipOrdinal(block: Cidr, ip: Ip): number {
  return Number(ip.value - (block.value & maskOf(block.family, block.len)));
}

/** A fresh, empty block spec affine to `node` (or unaffine). */
export function newBlockSpec(cidr: string, node?: string): IPAMBlockSpec {
  const c = parseCidr(cidr);
  const n = Number(sizeOf(c));
  const unallocated: number[] = new Array(n);
  for (let i = 0; i < n; i++) unallocated[i] = i;
  return { cidr, ...(node ? { affinity: `host:${node}` } : {}), allocations: {}, unallocated, sequence: {}, seqNumber: 0 };
}

/** Node named by a block's affinity ("host:<node>"), if any. */
export function blockNode(spec: IPAMBlockSpec): string | undefined {
  return spec.affinity?.startsWith('host:') ? spec.affinity.slice(5) : undefined;
}

/** Deep copy of a block resource (blocks are edited before a compare-and-swap write). */
export function cloneBlock(b: Resource<'IPAMBlock'>): Resource<'IPAMBlock'> {
  return JSON.parse(JSON.stringify(b));
}

/**
 * Takes up to `n` free ordinals from the front of the free list (oldest freed first) for
 * `handle`; edits `spec` in place and returns the allocations made.
 */
export function allocateFrom(spec: IPAMBlockSpec, n: number, handle: string, attrs?: BlockAllocation['attrs']): BlockAllocation[] {
  const out: BlockAllocation[] = [];
  while (out.length < n && spec.unallocated.length > 0) {
    const ordinal = spec.unallocated.shift()!;
    out.push(allocateOrdinal(spec, ordinal, handle, attrs));
  }
  return out;
}

/** Allocates one specific free ordinal (caller checked it is free). */
export function allocateOrdinal(spec: IPAMBlockSpec, ordinal: number, handle: string, attrs?: BlockAllocation['attrs']): BlockAllocation {
  const at = spec.unallocated.indexOf(ordinal);
  if (at >= 0) spec.unallocated.splice(at, 1);
  const seq = (spec.sequence[ordinal] ?? 0) + 1;
  spec.sequence[ordinal] = seq;
  const a: BlockAllocation = { ordinal, handle, seq, ...(attrs ? { attrs } : {}) };
  spec.allocations[ordinal] = a;
  spec.seqNumber++;
  return a;
}

/** Frees one ordinal, appending it to the end of the free list (reused last). */
export function freeOrdinal(spec: IPAMBlockSpec, ordinal: number): void {
  delete spec.allocations[ordinal];
  if (!spec.unallocated.includes(ordinal)) spec.unallocated.push(ordinal);
  spec.seqNumber++;
}

/** Number of allocated addresses in a block. */
export function inUse(spec: IPAMBlockSpec): number { return Object.keys(spec.allocations).length; }
