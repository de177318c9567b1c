// Leader election for `brindle controller` over the plain Datastore interface (no Lease kind):
// the lease is the IPAMHandle `lease.controller` (label brindle.dev/lease, empty block map,
// never holding addresses) whose annotations carry holder, renew time and duration. Acquire
// = create-if-absent; renew and take-over = compare-and-swap update on the revision. Like
// client-go, expiry is judged on the observer's own clock (time since the record last
// changed), so clock skew between replicas does not matter.
import {
  AlreadyExistsError, ConflictError, NotFoundError, type Datastore, type Resource,
} from '../datastore/types';

export const LEASE_NAME = 'lease.controller';
export const LEASE_LABEL = 'brindle.dev/lease';
export const ANN_HOLDER = 'brindle.dev/lease-holder';
export const ANN_RENEW = 'brindle.dev/lease-renew-time';
export const ANN_DURATION = 'brindle.dev/lease-duration-seconds';
export const ANN_TRANSITIONS = 'brindle.dev/lease-transitions';

export interface LeaseClock { now(): number }

export interface LeaseOptions {
  ds: Datastore;
  /** This replica's identity (pod name + random suffix in the Deployment). */
  identity: string;
  clock: LeaseClock;
  /** How long a lease that stops changing stays valid to others (default 15 s). */
  durationMs?: number;
  /** How often the holder renews (default 5 s); the runner ticks at this period. */
  renewMs?: number;
  /** The holder stops acting when it could not renew for this long (default 10 s, < duration). */
  renewDeadlineMs?: number;
  name?: string;
}

export interface LeaseState { leader: boolean; holder?: string; transitions: number }

/** True for the lease record (other code must never treat it as an address handle). */
export function isLeaseHandle(h: Resource<'IPAMHandle'>): boolean {
  return h.metadata.labels?.[LEASE_LABEL] === 'true' || h.metadata.name === LEASE_NAME;
}

export class LeaderElector {
  readonly durationMs: number;
  readonly renewMs: number;
  readonly renewDeadlineMs: number;
  private readonly name: string;
  /** Local time of our last successful acquire/renew. */
  private renewedAt: number | undefined;
  /** The record as last seen and the local time it was first seen with that revision. */
  private observed: { revision?: string; holder?: string; at: number } | undefined;
  private holderSeen: string | undefined;
  private transitions = 0;

  constructor(private readonly o: LeaseOptions) {
    this.durationMs = o.durationMs ?? 15_000;
    this.renewMs = o.renewMs ?? 5_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? Math.floor((this.durationMs * 2) / 3);
    this.name = o.name ?? LEASE_NAME;
  }

  /** Whether this replica may act now (held and renewed within the renew deadline). */
  isLeader(): boolean {
    return this.renewedAt !== undefined && this.o.clock.now() - this.renewedAt < this.renewDeadlineMs;
  }

  state(): LeaseState { return { leader: this.isLeader(), holder: this.holderSeen, transitions: this.transitions }; }

  private record(holder: string, prev?: Resource<'IPAMHandle'>): Resource<'IPAMHandle'> {
    const now = this.o.clock.now();
    const prevTransitions = Number(prev?.metadata.annotations?.[ANN_TRANSITIONS] ?? '0') || 0;
    const changed = prev?.metadata.annotations?.[ANN_HOLDER] !== holder;
    return {
      kind: 'IPAMHandle',
      metadata: {
        name: this.name,
        ...(prev?.metadata.revision !== undefined ? { revision: prev.metadata.revision } : {}),
        labels: { ...(prev?.metadata.labels ?? {}), [LEASE_LABEL]: 'true' },
        annotations: {
          ...(prev?.metadata.annotations ?? {}),
          [ANN_HOLDER]: holder,
          [ANN_RENEW]: new Date(now).toISOString(),
          [ANN_DURATION]: String(Math.round(this.durationMs / 1000)),
          [ANN_TRANSITIONS]: String(prev ? prevTransitions + (changed ? 1 : 0) : 0),
        },
      },
      spec: { handleID: this.name, block: {} },
    };
  }

  /**
   * One election step (call every renewMs): acquire when absent, renew when held, take over
   * when the holder's record has not changed for durationMs. Returns whether we lead.
   * Datastore errors propagate (the caller logs them); leadership then lapses on its own.
   */
  async tick(): Promise<boolean> {
    const { ds, identity, clock } = this.o;
    let cur: Resource<'IPAMHandle'> | undefined;
    try { cur = await ds.get('IPAMHandle', this.name); } catch (err) { if (!(err instanceof NotFoundError)) throw err; }
    const now = clock.now();
    if (!cur) {
      try {
        return this.won(now, identity, await ds.create(this.record(identity)));
      } catch (err) {
        if (err instanceof AlreadyExistsError) return this.lost();
        throw err;
      }
    }
    const holder = cur.metadata.annotations?.[ANN_HOLDER] ?? '';
    this.holderSeen = holder || undefined;
    this.transitions = Number(cur.metadata.annotations?.[ANN_TRANSITIONS] ?? '0') || 0;
    if (holder !== identity) {
      if (!this.observed || this.observed.revision !== cur.metadata.revision) {
        this.observed = { revision: cur.metadata.revision, holder, at: now };
      }
      // A released lease (empty holder) is free at once; otherwise wait out the duration
      // measured on our clock from when we first saw this revision.
      const expired = holder === '' || now - this.observed.at >= this.durationMs;
      if (!expired) return this.lost();
    }
    try {
      return this.won(now, identity, await ds.update(this.record(identity, cur)));
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) return this.lost();
      throw err;
    }
  }

  private won(now: number, identity: string, rec: Resource<'IPAMHandle'>): boolean {
    this.renewedAt = now;
    this.transitions = Number(rec.metadata.annotations?.[ANN_TRANSITIONS] ?? '0') || 0;
    this.holderSeen = identity;
    this.observed = undefined;
    return true;
  }

  private lost(): boolean {
    this.renewedAt = undefined;
    return false;
  }

  /** Gives the lease up (on shutdown) so another replica takes over without waiting. */
  async release(): Promise<void> {
    if (this.renewedAt === undefined) return;
    this.renewedAt = undefined;
    try {
      const cur = await this.o.ds.get('IPAMHandle', this.name);
      if (cur.metadata.annotations?.[ANN_HOLDER] !== this.o.identity) return;
      const rec = this.record('', cur);
      await this.o.ds.update(rec);
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
    }
  }
}
