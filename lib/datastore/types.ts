// The datastore contract: typed resources (the brindle.dev/v1 kinds) and the one interface
// every backend (embedded, etcd, kubernetes) implements with the same revision semantics.

/** Kinds stored by Brindle. Cluster-scoped; names unique per kind. */
export type Kind =
  | 'IPPool'
  | 'IPAMBlock'
  | 'BlockAffinity'
  | 'IPAMHandle'
  | 'IPAMConfig'
  | 'Node'
  | 'BGPConfiguration'
  | 'BGPPeer';

export const KINDS: readonly Kind[] = [
  'IPPool', 'IPAMBlock', 'BlockAffinity', 'IPAMHandle', 'IPAMConfig', 'Node',
  'BGPConfiguration', 'BGPPeer',
];

export interface Metadata {
  name: string;
  /** Opaque revision string: etcd mod_revision, Kubernetes resourceVersion, SQLite row rev. */
  revision?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

export type EncapMode = 'Always' | 'CrossSubnet' | 'Never';

export interface IPPoolSpec {
  cidr: string;
  /** Default 26 (IPv4) / 122 (IPv6); immutable once created. */
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  /** Label selector expression over Node labels: "all()", "" (= all), "k == 'v'", "k in {'a','b'}", "has(k)", "!has(k)", "k != 'v'", joined with "&&". */
  nodeSelector: string;
  disabled: boolean;
}

/** One address slot in a block. `null` allocation = free. */
export interface BlockAllocation {
  /** Offset of the address within the block. */
  ordinal: number;
  handle: string;
  /** Incremented every time this ordinal is allocated; a release names the seq it frees. */
  seq: number;
  attrs?: { pod?: string; namespace?: string; node?: string; [k: string]: string | undefined };
}

export interface IPAMBlockSpec {
  cidr: string;
  /** "host:<node>" when affine to a node; absent when not affine. */
  affinity?: string;
  /** Allocations keyed by ordinal (as decimal string). */
  allocations: Record<string, BlockAllocation>;
  /** Free ordinals, oldest freed first (allocation takes from the front). */
  unallocated: number[];
  /** Per-ordinal counters so a stale release cannot free a re-used address. */
  sequence: Record<string, number>;
  /** Whole-block write counter. */
  seqNumber: number;
  /** True while the owning node is releasing the block. */
  deleted?: boolean;
}

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

export interface BlockAffinitySpec {
  node: string;
  cidr: string;
  state: AffinityState;
  deleted?: boolean;
}

export interface IPAMHandleSpec {
  handleID: string;
  /** Block CIDR → number of addresses this handle holds there. */
  block: Record<string, number>;
}

export interface IPAMConfigSpec {
  strictAffinity: boolean;
  /** 0 = unlimited. */
  maxBlocksPerHost: number;
  autoAllocateBlocks: boolean;
}

export interface NodeSpec {
  bgp?: {
    /** "198.18.0.11/24" (address with the subnet's length). */
    ipv4Address?: string;
    ipv6Address?: string;
    /** Per-node AS; else BGPConfiguration.asNumber. */
    asNumber?: number;
    /** Set on route reflector nodes. */
    routeReflectorClusterID?: string;
  };
  /** VXLAN tunnel endpoint data published by the agent. */
  vxlanTunnelMACAddr?: string;
  vxlanTunnelAddress?: string;
  ipv4IPIPTunnelAddr?: string;
}

export interface BGPConfigurationSpec {
  asNumber?: number;
  nodeToNodeMeshEnabled?: boolean;
  listenPort?: number;
  logSeverityScreen?: string;
}

export interface BGPPeerSpec {
  /** Empty = global (all nodes, subject to nodeSelector). Otherwise the node it applies to. */
  node?: string;
  peerIP?: string;
  /** Default 179. */
  peerPort?: number;
  asNumber?: number;
  /** Selector over Node labels choosing which nodes peer. */
  nodeSelector?: string;
  /** Selector over Node labels choosing peers among the cluster's nodes (instead of peerIP). */
  peerSelector?: string;
  /** MD5 password, inline. */
  password?: string;
  keepOriginalNextHop?: boolean;
}

export interface SpecOf {
  IPPool: IPPoolSpec;
  IPAMBlock: IPAMBlockSpec;
  BlockAffinity: BlockAffinitySpec;
  IPAMHandle: IPAMHandleSpec;
  IPAMConfig: IPAMConfigSpec;
  Node: NodeSpec;
  BGPConfiguration: BGPConfigurationSpec;
  BGPPeer: BGPPeerSpec;
}

export interface Resource<K extends Kind = Kind> {
  kind: K;
  metadata: Metadata;
  spec: SpecOf[K];
}

export interface ListOptions {
  /**
   * Kubernetes label selector: comma-separated requirements, all of which must hold:
   * `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. LabelSelectorError when malformed.
   */
  labelSelector?: string;
  /** Name prefix (e.g. all handles of one network). */
  prefix?: string;
}

export interface ListResult<K extends Kind> {
  items: Resource<K>[];
  /** Store revision the list is consistent at; pass to watch() to continue from it. */
  revision: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent<K extends Kind = Kind> {
  type: WatchEventType;
  /** For DELETED: the last known object (revision may be the deletion revision). */
  object: Resource<K>;
}

export interface Watch {
  /** Stops the watch; no events after it returns. */
  close(): void;
}

export interface WatchHandlers<K extends Kind> {
  onEvent(ev: WatchEvent<K>): void;
  /** The watch ended with an error (e.g. revision compacted, store unreachable): relist. */
  onError(err: Error): void;
}

/** One write in an atomic batch (Datastore.apply). */
export type WriteOp =
  | { op: 'create'; res: Resource }
  | { op: 'update'; res: Resource }
  | { op: 'delete'; kind: Kind; name: string; revision?: string };

/** One read of a batch (Datastore.read): one object (absent = undefined) or a list's items. */
export type ReadOp =
  | { op: 'get'; kind: Kind; name: string }
  | { op: 'list'; kind: Kind; opts?: ListOptions };

/** The answer to a ReadOp: get → the resource or undefined when absent; list → the items. */
export type ReadResult = Resource | undefined | Resource[];

/** One interface over every backend. Every write is guarded by revision where asked. */
export interface Datastore {
  readonly type: 'embedded' | 'etcd' | 'kubernetes';
  get<K extends Kind>(kind: K, name: string): Promise<Resource<K>>;
  /** Fails with AlreadyExistsError if present. Returns the stored object with its revision. */
  create<K extends Kind>(res: Resource<K>): Promise<Resource<K>>;
  /**
   * Fails with ConflictError unless metadata.revision equals the stored revision; NotFoundError if gone.
   * Without metadata.revision the update is unconditional (still NotFoundError if absent).
   */
  update<K extends Kind>(res: Resource<K>): Promise<Resource<K>>;
  /** Deletes; with `revision`, only if unchanged (ConflictError otherwise). NotFoundError if absent. */
  delete(kind: Kind, name: string, revision?: string): Promise<void>;
  list<K extends Kind>(kind: K, opts?: ListOptions): Promise<ListResult<K>>;
  /**
   * Applies all ops with their revision guards as one unit: one SQLite transaction (embedded),
   * one etcd txn (etcd); the kubernetes backend applies them in order and stops at the first
   * failure. Throws the first op's typed error (ConflictError, AlreadyExistsError, NotFoundError).
   * Returns the stored resources (undefined for deletes), in op order.
   */
  apply(ops: WriteOp[]): Promise<(Resource | undefined)[]>;
  /**
   * Optional: several reads in one round trip, consistent at one revision (etcd: one read-only
   * txn; embedded: one read transaction). Callers use readBatch() (common.ts), which falls
   * back to parallel get/list for a backend without it.
   */
  read?(ops: ReadOp[]): Promise<ReadResult[]>;
  /** Events after `revision` (exclusive). */
  watch<K extends Kind>(kind: K, revision: string, handlers: WatchHandlers<K>): Watch;
  /** Cheap reachability probe (for CNI STATUS). Throws UnavailableError. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Base of datastore errors; branch on the subclass, never on message text. */
export class DatastoreError extends Error {
  override name = 'DatastoreError';
}
// Names spelled out: the plugin's bundle is minified, and callers in another script of the
// executable recognise an error by its name.
export class NotFoundError extends DatastoreError { override name = 'NotFoundError'; }
export class AlreadyExistsError extends DatastoreError { override name = 'AlreadyExistsError'; }
export class ConflictError extends DatastoreError { override name = 'ConflictError'; }
/** The store could not be reached or did not answer in time (CNI code 11). */
export class UnavailableError extends DatastoreError { override name = 'UnavailableError'; }
/**
 * A label selector (ListOptions.labelSelector) that does not parse; `position` is the 0-based
 * character offset of the problem. Thrown by every backend before anything is sent.
 */
export class LabelSelectorError extends DatastoreError {
  override name = 'LabelSelectorError';
  constructor(readonly selector: string, readonly position: number, readonly reason: string) {
    super(`label selector ${JSON.stringify(selector)}: ${reason} at position ${position}`);
  }
}
/**
 * The TLS handshake with `server` failed (unknown CA, name mismatch, expired or rejected
 * certificate): `code` is Node's/OpenSSL's code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * ERR_TLS_CERT_ALTNAME_INVALID. An UnavailableError, so the CNI answer is "try again later".
 */
export class TlsError extends UnavailableError {
  override name = 'TlsError';
  constructor(message: string, readonly server: string, readonly code: string) { super(message); }
}
/** A watch asked for a revision the store no longer keeps (etcd compaction, Kubernetes 410 Gone): relist. */
export class ExpiredError extends DatastoreError { override name = 'ExpiredError'; }

/** Settings that choose and reach a backend (conflist keys > environment > defaults). */
export interface DatastoreSettings {
  type: 'embedded' | 'etcd' | 'kubernetes';
  embeddedPath?: string;
  etcdEndpoints?: string[];
  etcdKeyFile?: string;
  etcdCertFile?: string;
  etcdCaCertFile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
  /** etcd values over this many JSON bytes are stored deflated (default 1024; Infinity = never). */
  etcdCompressOver?: number;
  kubeconfig?: string;
  /** In-cluster service account files (token, ca.crt) when no kubeconfig is set; default /var/run/secrets/kubernetes.io/serviceaccount. */
  kubeServiceAccountDir?: string;
  /** Per-request deadline in ms (default 2000 for plugins). */
  timeoutMs?: number;
}
