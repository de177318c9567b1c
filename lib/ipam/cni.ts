// The CNI face of brindle-ipam: ADD/DEL/CHECK/STATUS/GC over the allocator, used by the
// standalone plugin and in-process by the `brindle` plugin. Opens the datastore from the
// config, serialises a node's claims with a file lock, and maps IPAM errors to CNI codes.
import fs = require('node:fs');
import {
  CniError, ERR_BLOCK_LIMIT, ERR_CAS_RETRIES, ERR_CHECK_FAILED, ERR_INVALID_CONFIG, ERR_IP_UNAVAILABLE,
  ERR_NO_POOL_FOR_NODE, ERR_PLUGIN_NOT_AVAILABLE, ERR_POOL_EXHAUSTED, ERR_TRY_AGAIN,
} from '../cni/errors';
import type { CniRequest, NetConf, Result } from '../cni/types';
import { datastoreSettings, nodeName, runDir } from '../datastore/settings';
import { openDatastore } from '../datastore/open';
import { UnavailableError, type Datastore } from '../datastore/types';
import type { Assignment, Ipam } from './allocator';
import { BlockLimitError, CasRetriesError, IpUnavailableError, NoPoolForNodeError, PoolExhaustedError, PoolValidationError } from './errors';

/** The `ipam` section keys brindle-ipam reads (Calico's names). */
export interface IpamConf {
  type?: string;
  assign_ipv4?: boolean | string;
  assign_ipv6?: boolean | string;
  ipv4_pools?: string[];
  ipv6_pools?: string[];
  default_ipv4_pool?: string;
  default_ipv6_pool?: string;
  [k: string]: unknown;
}

interface Opened {
  ds: Datastore; ipam: Ipam; node: string; ic: IpamConf; handle: string; deadlineMs: number;
  /** A local store (embedded): every call is synchronous and bounded (SQLite's busy timeout) but a contended per-node lock. */
  local: boolean;
  /** Starts the verb's deadline (run() sets it; the lock calls it before it may wait). */
  armDeadline?: () => void;
}

function flag(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  return v === true || v === 'true' || v === 'True' || v === '1';
}

function strList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new CniError(ERR_INVALID_CONFIG, `ipam ${what} must be a list of strings`);
  return v as string[];
}

/** The handle of an attachment: `<network name>.<container id>`. */
export function handleOf(config: NetConf, containerId: string): string { return `${config.name}.${containerId}`; }

function open(req: CniRequest): Opened {
  const ic = (req.config.ipam ?? {}) as IpamConf;
  // Datastore keys may sit at the top level of the plugin config or in its ipam section.
  const merged = { ...req.config, ...ic } as Record<string, unknown>;
  let settings;
  try { settings = datastoreSettings(merged); } catch (err) {
    throw new CniError(ERR_INVALID_CONFIG, (err as Error).message);
  }
  const node = nodeName(merged);
  const ds = openDatastore(settings);
  const deadlineMs = Math.max(4 * (settings.timeoutMs ?? 2000), 5000);
  const { Ipam } = require('./allocator') as typeof import('./allocator');
  const dir = runDir();
  // The lock's onWait reaches run()'s deadline through the object returned below.
  let opened: Opened | undefined;
  const ipam = new Ipam(ds, {
    defaultPools: { default_ipv4_pool: ic.default_ipv4_pool, default_ipv6_pool: ic.default_ipv6_pool },
    // Remote stores: the node's blocks are remembered in the run dir and read with its affinities, in one round trip.
    blockHints: settings.type === 'embedded' ? undefined : (require('./hints') as typeof import('./hints')).fileBlockHints(dir),
    // Concurrent plugin processes on one node would each claim a block: serialise claims per node.
    lock: async (n, fn) => {
      const { withFileLock } = require('../native/flock') as typeof import('../native/flock');
      if (!fs.existsSync(dir)) { try { fs.mkdirSync(dir, { recursive: true }); } catch { /* the lock open reports it */ } }
      // A blocking flock (woken at once on release) when another process holds it; run()'s
      // deadline bounds that wait (armed by it for a local store).
      const file = `${dir}/ipam-${n.replace(/[/\0]/g, '_')}.lock`;
      return withFileLock(file, fn, { onWait: () => opened?.armDeadline?.() });
    },
  });
  opened = { ds, ipam, node, ic, handle: handleOf(req.config, req.containerId), deadlineMs, local: settings.type === 'embedded' };
  return opened;
}

/** Maps IPAM and datastore errors to CNI errors (codes 120–124, 11). */
export function toCniError(err: unknown): unknown {
  if (err instanceof CniError) return err;
  if (err instanceof PoolExhaustedError) return new CniError(ERR_POOL_EXHAUSTED, err.message);
  if (err instanceof BlockLimitError) return new CniError(ERR_BLOCK_LIMIT, err.message);
  if (err instanceof NoPoolForNodeError) return new CniError(ERR_NO_POOL_FOR_NODE, err.message);
  if (err instanceof CasRetriesError) return new CniError(ERR_CAS_RETRIES, err.message);
  if (err instanceof IpUnavailableError) return new CniError(ERR_IP_UNAVAILABLE, err.message);
  if (err instanceof PoolValidationError) return new CniError(ERR_INVALID_CONFIG, err.message);
  if (err instanceof UnavailableError) return new CniError(ERR_TRY_AGAIN, err.message);
  if (err instanceof (require('../native/flock') as typeof import('../native/flock')).LockTimeoutError) return new CniError(ERR_TRY_AGAIN, `ipam: ${err.message}`);
  if (err instanceof Error && err.name === 'SelectorError') return new CniError(ERR_INVALID_CONFIG, err.message);
  return err;
}

let exitAfterVerb = false;

/**
 * The caller ends the process after one verb (the plugin entry points): an embedded store is
 * then left for the exit to close, skipping SQLite's checkpoint-on-close fsyncs.
 */
export function setExitAfterVerb(on = true): void { exitAfterVerb = on; }

/** Runs fn with the datastore open, within the deadline, closing it after and translating errors. */
async function run<T>(req: CniRequest, fn: (o: Opened) => Promise<T>): Promise<T> {
  const o = open(req);
  let timer: NodeJS.Timeout | undefined;
  try {
    let expire: (err: Error) => void = () => undefined;
    const deadline = new Promise<never>((_, reject) => { expire = reject; });
    o.armDeadline = () => {
      if (timer) return;
      timer = setTimeout(() => expire(new CniError(ERR_TRY_AGAIN, `ipam: datastore did not answer within ${o.deadlineMs} ms`)), o.deadlineMs);
      timer.unref?.();
    };
    // A remote store's calls can each hang: the deadline runs from the start. A local one's
    // only wait is for the per-node lock while another process holds it, which arms it; the
    // rest is synchronous, so an uncontended ADD starts no timer (Node's timers are ~1.5 KB
    // of JavaScript to compile in every plugin process).
    if (!o.local) o.armDeadline();
    return await Promise.race([fn(o), deadline]);
  } catch (err) {
    throw toCniError(err);
  } finally {
    if (timer) clearTimeout(timer);
    const ds = o.ds as Datastore & { leaveForExit?(): void };
    if (exitAfterVerb && ds.leaveForExit) ds.leaveForExit(); else ds.close().catch(() => undefined);
  }
}

/** Addresses asked for explicitly: `IP=` in CNI_ARGS, the `ips` capability, else the pod annotation. */
function requestedIps(req: CniRequest, annotations: Record<string, string>): string[] {
  const out: string[] = [];
  const arg = req.args.IP;
  if (arg) out.push(...arg.split(',').map((s) => s.trim()).filter(Boolean));
  const rc = req.config.runtimeConfig?.ips;
  if (out.length === 0 && Array.isArray(rc)) out.push(...rc.filter((x): x is string => typeof x === 'string'));
  if (out.length === 0 && annotations['brindle.dev/ipAddrs']) out.push(...parseJsonList(annotations['brindle.dev/ipAddrs'], 'brindle.dev/ipAddrs'));
  return out.map((s) => s.split('/')[0]);
}

function parseJsonList(text: string, what: string): string[] {
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch { /* fall through */ }
  throw new CniError(ERR_INVALID_CONFIG, `annotation ${what} must be a JSON list of strings`, text);
}

/**
 * Pod and namespace annotations (kubernetes backend only): the backend may expose
 * `podAnnotations(namespace, pod)`; namespace annotations are the defaults the pod's override.
 */
async function annotationsOf(ds: Datastore, req: CniRequest): Promise<Record<string, string>> {
  const k = ds as Datastore & {
    podAnnotations?(namespace: string, pod: string): Promise<Record<string, string>>;
    namespaceAnnotations?(namespace: string): Promise<Record<string, string>>;
  };
  const ns = req.args.K8S_POD_NAMESPACE, pod = req.args.K8S_POD_NAME;
  if (ds.type !== 'kubernetes' || !ns || !pod) return {};
  const [nsA, podA] = await Promise.all([
    k.namespaceAnnotations ? k.namespaceAnnotations(ns) : Promise.resolve({}),
    k.podAnnotations ? k.podAnnotations(ns, pod) : Promise.resolve({}),
  ]);
  return { ...nsA, ...podA };
}

function toResult(req: CniRequest, got: Assignment[]): Result {
  return {
    cniVersion: req.config.cniVersion,
    ips: got.map((a) => ({ address: `${a.ip}/${a.family === 4 ? 32 : 128}` })),
  };
}

/** ADD: addresses for the attachment (repeated ADD returns the same ones). */
export async function ipamAdd(req: CniRequest): Promise<Result> {
  return run(req, async ({ ds, ipam, node, ic, handle }) => {
    const annotations = await annotationsOf(ds, req);
    const attrs = {
      node,
      ...(req.args.K8S_POD_NAME ? { pod: req.args.K8S_POD_NAME } : {}),
      ...(req.args.K8S_POD_NAMESPACE ? { namespace: req.args.K8S_POD_NAMESPACE } : {}),
      containerID: req.containerId,
    };
    const wanted = requestedIps(req, annotations);
    if (wanted.length > 0) {
      const done: Assignment[] = [];
      try {
        for (const ip of wanted) done.push(await ipam.assignIp({ ip, handle, node, attrs }));
      } catch (err) {
        if (done.length) await ipam.releaseIps(done.map((a) => ({ ip: a.ip, handle: a.handle, seq: a.seq }))).catch(() => undefined);
        throw err;
      }
      return toResult(req, done);
    }
    const pools4 = annotations['brindle.dev/ipv4pools'] ? parseJsonList(annotations['brindle.dev/ipv4pools'], 'brindle.dev/ipv4pools') : strList(ic.ipv4_pools, 'ipv4_pools');
    const pools6 = annotations['brindle.dev/ipv6pools'] ? parseJsonList(annotations['brindle.dev/ipv6pools'], 'brindle.dev/ipv6pools') : strList(ic.ipv6_pools, 'ipv6_pools');
    const num4 = flag(ic.assign_ipv4, true) ? 1 : 0;
    const num6 = flag(ic.assign_ipv6, false) ? 1 : 0;
    if (num4 + num6 === 0) throw new CniError(ERR_INVALID_CONFIG, 'ipam: assign_ipv4 and assign_ipv6 are both off');
    const r = await ipam.autoAssign({ handle, node, num4, num6, attrs, pools4, pools6 });
    return toResult(req, r.assignments);
  });
}

/** DEL: releases everything the attachment's handle holds; nothing held is success. */
export async function ipamDel(req: CniRequest): Promise<void> {
  await run(req, async ({ ipam, handle, node }) => { await ipam.releaseByHandle(handle, { node }); });
}

/** CHECK: the handle still holds every address of prevResult. */
export async function ipamCheck(req: CniRequest): Promise<void> {
  await run(req, async ({ ipam, handle }) => {
    const held = new Set((await ipam.handleAssignments(handle)).map((a) => a.ip));
    if (held.size === 0) throw new CniError(ERR_CHECK_FAILED, `ipam: handle ${handle} holds no address`);
    for (const ip of req.config.prevResult?.ips ?? []) {
      const plain = ip.address.split('/')[0];
      if (!held.has(plain)) throw new CniError(ERR_CHECK_FAILED, `ipam: address ${plain} is not held by handle ${handle}`);
    }
  });
}

/** STATUS: the datastore answers (else 50, plugin not available). */
export async function ipamStatus(req: CniRequest): Promise<void> {
  try {
    await run(req, async ({ ds }) => { await ds.ping(); });
  } catch (err) {
    if (err instanceof CniError && err.code === ERR_TRY_AGAIN) throw new CniError(ERR_PLUGIN_NOT_AVAILABLE, err.msg);
    throw err;
  }
}

/** GC: releases this network's handles whose container is not among the valid attachments. */
export async function ipamGc(req: CniRequest): Promise<void> {
  await run(req, async ({ ds, ipam }) => {
    const valid = new Set((req.config['cni.dev/valid-attachments'] ?? []).map((a) => handleOf(req.config, a.containerID)));
    const prefix = `${req.config.name}.`;
    const { items } = await ds.list('IPAMHandle', { prefix });
    for (const h of items) {
      const id = h.spec.handleID;
      if (!id.startsWith(prefix) || valid.has(id)) continue;
      await ipam.releaseByHandle(id);
    }
  });
}
