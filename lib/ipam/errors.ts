// IPAM domain errors. Branch on the class and fields; lib/ipam/cni.ts maps them to CNI codes 120–124.

export class IpamError extends Error {
  constructor(message: string) { super(message); this.name = new.target.name; }
}

/** Every selected pool of the family is full (no free block to claim, nothing to borrow). */
export class PoolExhaustedError extends IpamError {
  constructor(readonly pools: string[], readonly node: string, readonly family: 4 | 6) {
    super(`ipv${family} pool${pools.length === 1 ? '' : 's'} ${pools.join(', ')} exhausted for node ${node}`);
  }
}

/** The node holds maxBlocksPerHost blocks and may not borrow (strictAffinity) or found nothing to borrow. */
export class BlockLimitError extends IpamError {
  constructor(readonly node: string, readonly blocks: number, readonly limit: number, readonly pools: string[] = []) {
    super(`node ${node} has ${blocks} blocks, the limit is ${limit}${pools.length ? ` (pools ${pools.join(', ')})` : ''}`);
  }
}

/** No enabled pool of the family (within the requested ones) selects the node. */
export class NoPoolForNodeError extends IpamError {
  constructor(readonly node: string, readonly family: 4 | 6, readonly requested: string[] = []) {
    super(`no enabled ipv${family} pool${requested.length ? ` among ${requested.join(', ')}` : ''} selects node ${node}`);
  }
}

/** Compare-and-swap writes kept conflicting past the retry bound. */
export class CasRetriesError extends IpamError {
  constructor(readonly what: string, readonly attempts: number) {
    super(`${what}: still conflicting after ${attempts} attempts`);
  }
}

/** A specific address cannot be assigned (taken, outside every pool, pool disabled...). */
export class IpUnavailableError extends IpamError {
  constructor(readonly ip: string, readonly reason: string) {
    super(`address ${ip} is unavailable: ${reason}`);
  }
}

/** An IPPool that fails validation. */
export class PoolValidationError extends IpamError {
  constructor(readonly pool: string, readonly reason: string) {
    super(`ippool ${pool}: ${reason}`);
  }
}
