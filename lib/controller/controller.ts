// One housekeeping pass of `brindle controller` (the leader runs it every interval):
//  - deleted nodes: a node that blocks, affinities or allocations still name but that has no
//    Node (and, on Kubernetes, no Kubernetes Node) for nodeGrace loses its allocations (by
//    handle and seq), its affinities and its empty blocks; blocks still holding other nodes'
//    borrowed addresses stay, unaffine;
//  - empty blocks: a block (or orphan affinity) unchanged and empty for blockGrace is deleted
//    with revision guards, so an allocation landing in between makes the delete fail;
//  - leaked addresses: allocations whose pod is gone (Kubernetes) or that have no handle record
//    (checkConsistency) are released by handle and seq after two sightings leakGrace apart;
//    handles counting addresses their blocks do not hold are corrected the same way.
// Every observation lives in memory: a new leader starts its grace periods afresh.
import {
  ConflictError, NotFoundError,
  type Datastore, type Resource, type WriteOp,
} from '../datastore/types';
import { Ipam, type Problem } from '../ipam/allocator';
import { blockName, blockNode, inUse, ordinalIp } from '../ipam/blocks';
import { parseCidr } from '../ip';
import type { AgentLog } from '../agent/log';
import { isLeaseHandle, type LeaseClock } from './lease';
import type { PodInfo, PodInventory } from './kube';

type Block = Resource<'IPAMBlock'>;
type Affinity = Resource<'BlockAffinity'>;
type Handle = Resource<'IPAMHandle'>;

export interface ControllerOptions {
  ds: Datastore;
  clock: LeaseClock;
  log: AgentLog;
  ipam?: Ipam;
  /** Kubernetes only: pods and Kubernetes Nodes (the pod-existence leak check). */
  pods?: PodInventory;
  /** A node must stay gone this long before its state is released (default 60 s). */
  nodeGraceMs?: number;
  /** A block must stay empty and unchanged this long before it is released (default 5 min). */
  blockGraceMs?: number;
  /** Two sightings of a leak must be at least this far apart (default 15 min, as Calico). */
  leakGraceMs?: number;
}

export interface LeakRelease { ip: string; handle: string; seq: number; reason: string }

export interface NodeCleanup { node: string; released: string[]; blocksDeleted: string[]; blocksUnaffined: string[]; affinitiesDeleted: string[] }

export interface PassSummary {
  at: string;
  nodes: { live: number; gone: { node: string; since: string; eligible: boolean }[]; cleaned: NodeCleanup[] };
  blocks: { empty: number; pending: number; released: string[]; raced: string[]; affinitiesReleased: string[] };
  leaks: { candidates: number; pending: number; released: LeakRelease[]; skipped: { ip: string; reason: string }[]; handlesRepaired: string[] };
  problems: Problem[];
  errors: string[];
}

/** Counters over the controller's lifetime (Prometheus-style totals). */
export interface ControllerStats {
  passes: number; errors: number; nodesCleaned: number; blocksReleased: number;
  addressesReleased: number; handlesRepaired: number; raced: number;
}

interface Sighting { first: number; count: number; last: number }

interface Snapshot { live: Set<string>; blocks: Block[]; affs: Affinity[]; handles: Handle[] }

interface LeakCandidate { key: string; ip: string; handle: string; seq: number; reason: string }

function allocNode(b: Block, a: Block['spec']['allocations'][string]): string | undefined {
  return a.attrs?.node ?? blockNode(b.spec);
}

export class Controller {
  readonly stats: ControllerStats = { passes: 0, errors: 0, nodesCleaned: 0, blocksReleased: 0, addressesReleased: 0, handlesRepaired: 0, raced: 0 };
  readonly nodeGraceMs: number;
  readonly blockGraceMs: number;
  readonly leakGraceMs: number;
  private readonly ipam: Ipam;
  private readonly goneSince = new Map<string, number>();
  private readonly emptySince = new Map<string, { at: number; revision?: string }>();
  private readonly leaks = new Map<string, Sighting>();
  private passNo = 0;

  constructor(private readonly o: ControllerOptions) {
    this.ipam = o.ipam ?? new Ipam(o.ds);
    this.nodeGraceMs = o.nodeGraceMs ?? 60_000;
    this.blockGraceMs = o.blockGraceMs ?? 300_000;
    this.leakGraceMs = o.leakGraceMs ?? 900_000;
  }

  private async snapshot(): Promise<Snapshot> {
    const { ds, pods } = this.o;
    const [nodes, blocks, affs, handles, k8sNodes] = await Promise.all([
      ds.list('Node'), ds.list('IPAMBlock'), ds.list('BlockAffinity'), ds.list('IPAMHandle'),
      pods ? pods.nodes() : Promise.resolve(new Set<string>()),
    ]);
    // A node is live while either record exists: on Kubernetes the Kubernetes Node decides, so
    // a node whose agent has not (re)registered yet keeps its pods' addresses.
    const live = new Set([...nodes.items.map((n) => n.metadata.name), ...k8sNodes]);
    return { live, blocks: blocks.items, affs: affs.items, handles: handles.items.filter((h) => !isLeaseHandle(h)) };
  }

  /** Runs one pass. Never throws: errors are logged, counted and listed in the summary. */
  async pass(): Promise<PassSummary> {
    const now = this.o.clock.now();
    this.passNo++;
    this.stats.passes++;
    const sum: PassSummary = {
      at: new Date(now).toISOString(),
      nodes: { live: 0, gone: [], cleaned: [] },
      blocks: { empty: 0, pending: 0, released: [], raced: [], affinitiesReleased: [] },
      leaks: { candidates: 0, pending: 0, released: [], skipped: [], handlesRepaired: [] },
      problems: [],
      errors: [],
    };
    const fail = (what: string, err: unknown) => {
      const msg = `${what}: ${(err as Error)?.message ?? String(err)}`;
      this.stats.errors++;
      sum.errors.push(msg);
      this.o.log.warn(msg);
    };
    let snap: Snapshot;
    try { snap = await this.snapshot(); } catch (err) { fail('read cluster state', err); return sum; }
    sum.nodes.live = snap.live.size;
    const gone = this.deletedNodes(snap, now, sum);
    for (const node of gone) {
      try {
        const c = await this.cleanupNode(node);
        sum.nodes.cleaned.push(c);
        this.goneSince.delete(node);
        this.stats.nodesCleaned++;
        this.o.log.info(`node ${node}: released ${c.released.length} addresses, deleted blocks [${c.blocksDeleted.join(', ')}], unaffined blocks [${c.blocksUnaffined.join(', ')}]`);
      } catch (err) { fail(`clean up deleted node ${node}`, err); }
    }
    const skipNodes = new Set(this.goneSince.keys());
    try { await this.emptyBlocks(snap, skipNodes, now, sum); } catch (err) { fail('release empty blocks', err); }
    try { await this.leakPhase(skipNodes, now, sum); } catch (err) { fail('release leaked addresses', err); }
    return sum;
  }

  /** Updates the gone-node sightings; returns the nodes past their grace period. */
  private deletedNodes(snap: Snapshot, now: number, sum: PassSummary): string[] {
    const referenced = new Set<string>();
    for (const a of snap.affs) referenced.add(a.spec.node);
    for (const b of snap.blocks) {
      const n = blockNode(b.spec);
      if (n) referenced.add(n);
      for (const a of Object.values(b.spec.allocations)) { const an = allocNode(b, a); if (an) referenced.add(an); }
    }
    const gone = [...referenced].filter((n) => !snap.live.has(n)).sort();
    for (const n of [...this.goneSince.keys()]) if (!gone.includes(n)) this.goneSince.delete(n);
    const out: string[] = [];
    for (const n of gone) {
      if (!this.goneSince.has(n)) this.goneSince.set(n, now);
      const since = this.goneSince.get(n)!;
      const eligible = now - since >= this.nodeGraceMs;
      sum.nodes.gone.push({ node: n, since: new Date(since).toISOString(), eligible });
      if (eligible) out.push(n);
    }
    return out;
  }

  /** Releases a deleted node's allocations (by handle and seq), affinities and blocks. */
  async cleanupNode(node: string): Promise<NodeCleanup> {
    const { ds } = this.o;
    const out: NodeCleanup = { node, released: [], blocksDeleted: [], blocksUnaffined: [], affinitiesDeleted: [] };
    const { items: blocks } = await ds.list('IPAMBlock');
    const items: { ip: string; handle: string; seq: number }[] = [];
    for (const b of blocks) {
      const c = parseCidr(b.spec.cidr);
      for (const a of Object.values(b.spec.allocations)) {
        if (allocNode(b, a) === node) items.push({ ip: ordinalIp(c, a.ordinal), handle: a.handle, seq: a.seq });
      }
    }
    if (items.length) {
      const r = await this.ipam.releaseIps(items);
      out.released = r.released;
      this.stats.addressesReleased += r.released.length;
      for (const s of r.skipped) this.o.log.debug(`node ${node}: release ${s.ip} skipped: ${s.reason}`);
    }
    // Blocks it owns, by its affinities and by the blocks' own affinity field.
    const { items: affs } = await ds.list('BlockAffinity');
    const cidrs = new Set<string>();
    for (const a of affs) if (a.spec.node === node) cidrs.add(a.spec.cidr);
    for (const b of blocks) if (blockNode(b.spec) === node) cidrs.add(b.spec.cidr);
    for (const cidr of [...cidrs].sort()) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.releaseNodeBlock(node, cidr, out);
          break;
        } catch (err) {
          if (!(err instanceof ConflictError) || attempt >= 4) throw err;
        }
      }
    }
    return out;
  }

  /** Deletes (empty) or unaffines (borrowed addresses left) one block of a deleted node, and its affinity. */
  private async releaseNodeBlock(node: string, cidr: string, out: NodeCleanup): Promise<void> {
    const { ds } = this.o;
    const b = await getOr(ds, 'IPAMBlock', blockName(cidr));
    const { items } = await ds.list('BlockAffinity');
    const aff = items.find((a) => a.spec.node === node && a.spec.cidr === cidr);
    const ops: WriteOp[] = [];
    let action: 'deleted' | 'unaffined' | undefined;
    if (b && blockNode(b.spec) === node) {
      if (inUse(b.spec) === 0) {
        ops.push({ op: 'delete', kind: 'IPAMBlock', name: b.metadata.name, revision: b.metadata.revision });
        action = 'deleted';
      } else {
        const spec = JSON.parse(JSON.stringify(b.spec)) as Block['spec'];
        delete spec.affinity;
        spec.seqNumber++;
        ops.push({ op: 'update', res: { ...b, spec } });
        action = 'unaffined';
      }
    }
    // Block first (the allocator reads blocks to decide ownership), then the affinity.
    if (aff) ops.push({ op: 'delete', kind: 'BlockAffinity', name: aff.metadata.name, revision: aff.metadata.revision });
    if (!ops.length) return;
    try {
      await ds.apply(ops);
    } catch (err) {
      if (err instanceof NotFoundError) throw new ConflictError(`block ${cidr}: changed while releasing it`);
      throw err;
    }
    if (action === 'deleted') { out.blocksDeleted.push(cidr); this.stats.blocksReleased++; }
    if (action === 'unaffined') out.blocksUnaffined.push(cidr);
    if (aff) out.affinitiesDeleted.push(aff.metadata.name);
  }

  /** Empty blocks and orphan affinities of live nodes (and unaffine empty blocks). */
  private async emptyBlocks(snap: Snapshot, skipNodes: Set<string>, now: number, sum: PassSummary): Promise<void> {
    const { ds, log } = this.o;
    const seen = new Set<string>();
    const track = (key: string, revision: string | undefined): boolean => {
      seen.add(key);
      const e = this.emptySince.get(key);
      if (!e || e.revision !== revision) { this.emptySince.set(key, { at: now, revision }); return this.blockGraceMs <= 0; }
      return now - e.at >= this.blockGraceMs;
    };
    const blockByCidr = new Map(snap.blocks.map((b) => [b.spec.cidr, b]));
    for (const b of snap.blocks) {
      const node = blockNode(b.spec);
      if (node && skipNodes.has(node)) continue;
      if (inUse(b.spec) > 0) continue;
      sum.blocks.empty++;
      const aff = node ? snap.affs.find((a) => a.spec.node === node && a.spec.cidr === b.spec.cidr) : undefined;
      const key = `block/${b.spec.cidr}`;
      // Both revisions: an allocation or a re-confirmation since the first sighting restarts the wait.
      if (!track(key, `${b.metadata.revision}/${aff?.metadata.revision ?? ''}`)) { sum.blocks.pending++; continue; }
      const ops: WriteOp[] = [{ op: 'delete', kind: 'IPAMBlock', name: b.metadata.name, revision: b.metadata.revision }];
      if (aff) ops.push({ op: 'delete', kind: 'BlockAffinity', name: aff.metadata.name, revision: aff.metadata.revision });
      try {
        await ds.apply(ops);
        this.emptySince.delete(key);
        sum.blocks.released.push(b.spec.cidr);
        this.stats.blocksReleased++;
        log.info(`block ${b.spec.cidr}${node ? ` of node ${node}` : ''}: empty for ${Math.round(this.blockGraceMs / 1000)} s, released`);
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
        // Someone wrote the block (an allocation) after we looked: it stays.
        this.emptySince.delete(key);
        sum.blocks.raced.push(b.spec.cidr);
        this.stats.raced++;
        log.info(`block ${b.spec.cidr}: changed while releasing it, kept`);
      }
    }
    for (const a of snap.affs) {
      if (skipNodes.has(a.spec.node)) continue;
      const b = blockByCidr.get(a.spec.cidr);
      if (b && blockNode(b.spec) === a.spec.node) continue;
      // A pending claim that never completed, or an affinity to a block that is gone or another node's.
      const key = `affinity/${a.metadata.name}`;
      if (!track(key, a.metadata.revision)) { sum.blocks.pending++; continue; }
      try {
        await ds.delete('BlockAffinity', a.metadata.name, a.metadata.revision);
        sum.blocks.affinitiesReleased.push(a.metadata.name);
        log.info(`affinity ${a.metadata.name}: its block is ${b ? `node ${blockNode(b.spec) ?? '(none)'}'s` : 'missing'}, released`);
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      }
      this.emptySince.delete(key);
    }
    for (const k of [...this.emptySince.keys()]) if (!seen.has(k)) this.emptySince.delete(k);
  }

  /** Leak candidates from a fresh read: pods gone (Kubernetes), allocations without a handle. */
  private async findLeaks(skipNodes: Set<string>, sum: PassSummary): Promise<{ leaks: LeakCandidate[]; handles: Handle[]; blocks: Block[]; checked: Set<string> }> {
    const { ds, pods } = this.o;
    const report = await this.ipam.checkConsistency();
    sum.problems = report.problems;
    const [{ items: blocks }, { items: handles }] = await Promise.all([ds.list('IPAMBlock'), ds.list('IPAMHandle')]);
    const leaks: LeakCandidate[] = [];
    // Which key prefixes this evaluation could judge (failures leave older sightings alone).
    const checked = new Set<string>(['nohandle']);
    const byIp = new Map<string, { b: Block; a: Block['spec']['allocations'][string] }>();
    for (const b of blocks) {
      const c = parseCidr(b.spec.cidr);
      for (const a of Object.values(b.spec.allocations)) byIp.set(ordinalIp(c, a.ordinal), { b, a });
    }
    for (const p of report.problems) {
      if (p.kind !== 'allocationWithoutHandle' || !p.ip || !p.handle) continue;
      const hit = byIp.get(p.ip);
      if (!hit || hit.a.handle !== p.handle) continue;
      const node = allocNode(hit.b, hit.a);
      if (node && skipNodes.has(node)) continue;
      leaks.push({ key: `nohandle/${p.ip}/${p.handle}/${hit.a.seq}`, ip: p.ip, handle: p.handle, seq: hit.a.seq, reason: 'no handle record' });
    }
    if (pods) {
      const byNs = new Map<string, { ip: string; b: Block; a: Block['spec']['allocations'][string] }[]>();
      for (const [ip, { b, a }] of byIp) {
        const pod = a.attrs?.pod, ns = a.attrs?.namespace;
        if (!pod || !ns) continue;
        const node = allocNode(b, a);
        if (node && skipNodes.has(node)) continue;
        byNs.set(ns, [...(byNs.get(ns) ?? []), { ip, b, a }]);
      }
      for (const [ns, list] of byNs) {
        let inv: Map<string, PodInfo>;
        try { inv = await pods.pods(ns); } catch (err) {
          this.o.log.warn(`list pods of namespace ${ns}: ${(err as Error).message}`);
          sum.errors.push(`list pods of namespace ${ns}: ${(err as Error).message}`);
          this.stats.errors++;
          continue;
        }
        checked.add(`pod/${ns}/`);
        for (const { ip, b, a } of list) {
          const pod = inv.get(a.attrs!.pod!);
          const node = allocNode(b, a);
          let reason: string | undefined;
          if (!pod) reason = `pod ${ns}/${a.attrs!.pod} does not exist`;
          else if (pod.nodeName && node && pod.nodeName !== node) reason = `pod ${ns}/${pod.name} runs on node ${pod.nodeName}, not ${node}`;
          else if (pod.ips.length && !pod.ips.includes(ip)) reason = `pod ${ns}/${pod.name} has addresses ${pod.ips.join(', ')}, not ${ip}`;
          if (reason) leaks.push({ key: `pod/${ns}/${a.attrs!.pod}/${ip}/${a.handle}/${a.seq}`, ip, handle: a.handle, seq: a.seq, reason });
        }
      }
    }
    return { leaks, handles, blocks, checked };
  }

  /** Records one evaluation's sightings; forgets judged keys that were not seen again. */
  private sight(keys: string[], checked: Set<string>, now: number): void {
    const seen = new Set(keys);
    for (const k of seen) {
      const s = this.leaks.get(k);
      if (!s) this.leaks.set(k, { first: now, count: 1, last: now });
      else { s.count++; s.last = now; }
    }
    const forget = Math.max(2 * this.leakGraceMs, 3_600_000);
    for (const [k, s] of [...this.leaks]) {
      if (seen.has(k)) continue;
      if ([...checked].some((p) => k.startsWith(p)) || now - s.last > forget) this.leaks.delete(k);
    }
  }

  private ripe(key: string, now: number): boolean {
    const s = this.leaks.get(key);
    return !!s && s.count >= 2 && now - s.first >= this.leakGraceMs;
  }

  private async leakPhase(skipNodes: Set<string>, now: number, sum: PassSummary): Promise<void> {
    let found = await this.findLeaks(skipNodes, sum);
    const keysOf = (f: typeof found) => [
      ...f.leaks.map((l) => l.key),
      ...this.staleHandles(f).map((h) => `handle/${h.metadata.name}/${h.metadata.revision}`),
    ];
    this.sight(keysOf(found), new Set([...found.checked, 'handle/']), now);
    // With no grace period the second look is a fresh read right away (`--once`).
    if (this.leakGraceMs <= 0 && keysOf(found).some((k) => this.leaks.get(k)?.count === 1)) {
      found = await this.findLeaks(skipNodes, sum);
      this.sight(keysOf(found), new Set([...found.checked, 'handle/']), now);
    }
    sum.leaks.candidates = found.leaks.length;
    const items = found.leaks.filter((l) => this.ripe(l.key, now));
    sum.leaks.pending = found.leaks.length - items.length;
    if (items.length) {
      // releaseIps frees an address only while it is held by that handle at that seq.
      const r = await this.ipam.releaseIps(items.map((l) => ({ ip: l.ip, handle: l.handle, seq: l.seq })));
      const freed = new Set(r.released);
      for (const l of items) {
        this.leaks.delete(l.key);
        if (freed.has(l.ip)) {
          sum.leaks.released.push({ ip: l.ip, handle: l.handle, seq: l.seq, reason: l.reason });
          this.o.log.info(`address ${l.ip} (handle ${l.handle}, seq ${l.seq}): ${l.reason}, released`);
        }
      }
      sum.leaks.skipped.push(...r.skipped);
      this.stats.addressesReleased += r.released.length;
    }
    for (const h of this.staleHandles(found)) {
      const key = `handle/${h.metadata.name}/${h.metadata.revision}`;
      if (!this.ripe(key, now)) { sum.leaks.pending++; continue; }
      this.leaks.delete(key);
      try {
        if (await this.repairHandle(h)) { sum.leaks.handlesRepaired.push(h.spec.handleID); this.stats.handlesRepaired++; }
      } catch (err) {
        if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      }
    }
  }

  /** Handles that count more addresses in a block than the block holds for them. */
  private staleHandles(f: { handles: Handle[]; blocks: Block[] }): Handle[] {
    const held = new Map<string, number>();
    for (const b of f.blocks) for (const a of Object.values(b.spec.allocations)) {
      const k = `${a.handle}\n${b.spec.cidr}`;
      held.set(k, (held.get(k) ?? 0) + 1);
    }
    return f.handles.filter((h) => !isLeaseHandle(h)
      && Object.entries(h.spec.block).some(([cidr, n]) => (held.get(`${h.spec.handleID}\n${cidr}`) ?? 0) < n));
  }

  /**
   * Sets a handle's counts to what its blocks hold (deletes it when they hold nothing), in one
   * write with the blocks rewritten unchanged as guards: an allocation racing in fails it.
   */
  private async repairHandle(stale: Handle): Promise<boolean> {
    const { ds } = this.o;
    const h = await ds.get('IPAMHandle', stale.metadata.name);
    if (h.metadata.revision !== stale.metadata.revision) return false;
    const ops: WriteOp[] = [];
    const block: Record<string, number> = {};
    for (const cidr of Object.keys(h.spec.block)) {
      const b = await getOr(ds, 'IPAMBlock', blockName(cidr));
      if (!b) continue;
      const n = Object.values(b.spec.allocations).filter((a) => a.handle === h.spec.handleID).length;
      if (n > 0) block[cidr] = n;
      ops.push({ op: 'update', res: b });
    }
    const same = Object.keys(block).length === Object.keys(h.spec.block).length
      && Object.entries(block).every(([c, n]) => h.spec.block[c] === n);
    if (same) return false;
    ops.push(Object.keys(block).length
      ? { op: 'update', res: { ...h, spec: { ...h.spec, block } } }
      : { op: 'delete', kind: 'IPAMHandle', name: h.metadata.name, revision: h.metadata.revision });
    await ds.apply(ops);
    this.o.log.info(`handle ${h.spec.handleID}: counted addresses its blocks do not hold, corrected`);
    return true;
  }
}

async function getOr<K extends 'IPAMBlock' | 'IPAMHandle'>(ds: Datastore, kind: K, name: string): Promise<Resource<K> | undefined> {
  try { return await ds.get(kind, name); } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}
