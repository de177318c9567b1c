// The `brindle` CNI plugin: ADD/DEL/CHECK/STATUS/GC over lib/cni (protocol), lib/dataplane
// (pod wiring) and IPAM (delegated to `ipam.type`, or lib/ipam in-process for brindle-ipam).
/* eslint-disable @typescript-eslint/no-var-requires */
import { fastExit, runPlugin } from '../../lib/cni/skel';
import { CniError, ERR_CHECK_FAILED, ERR_DATAPLANE, ERR_INVALID_CONFIG, ERR_IPAM, ERR_PLUGIN_NOT_AVAILABLE } from '../../lib/cni/errors';
import type { CniRequest, Result } from '../../lib/cni/types';
import { listAttachments, readAttachment, removeAttachment, writeAttachment, type Attachment } from '../../lib/cni/attachments';
import { hostVethName } from '../../lib/dataplane/naming';
import { configureLog, isoTime, log, mark } from '../../lib/log';
// The dataplane and netlink modules are imported statically (not required on first use): every
// ADD/DEL/CHECK needs them, and esbuild then hoists them into the bundle's scope, with no module
// wrapper or exports object to build at start-up.
import { NetlinkSocket, type NetlinkSocket as Nl } from '../../lib/netlink/socket';
import { getLink } from '../../lib/netlink/link';
import * as dp from '../../lib/dataplane/pod';
import { delegateIpam, findInPath, pluginSupports, startDelegateIpam } from '../../lib/cni/delegate';

const ABOUT = 'brindle CNI plugin: BGP-routed pod networking';
const OWN_IPAM = 'brindle-ipam';

interface IpamApi {
  ipamAdd(req: CniRequest): Promise<Result>;
  ipamDel(req: CniRequest): Promise<void>;
  ipamCheck(req: CniRequest): Promise<void>;
  ipamStatus(req: CniRequest): Promise<void>;
  ipamGc(req: CniRequest): Promise<void>;
}

let inGc = false;
function ownIpam(): IpamApi {
  const m = require('../../lib/ipam/cni') as IpamApi & { setExitAfterVerb?(on?: boolean): void };
  // One verb, then the process ends (fastExit): the embedded store is left for the exit
  // instead of closing with SQLite's checkpoint fsyncs. Not in GC, which opens the store once
  // per stale attachment and would pile up open connections.
  m.setExitAfterVerb?.(!inGc);
  return m;
}


function ipamType(req: CniRequest): string {
  const t = req.config.ipam?.type;
  if (typeof t !== 'string' || !t) throw new CniError(ERR_INVALID_CONFIG, 'ipam type missing from network config');
  return t;
}

async function ipamDel(req: CniRequest): Promise<void> {
  const type = ipamType(req);
  if (type === OWN_IPAM) return ownIpam().ipamDel(req);
  delegateIpam(req, 'DEL');
}

function setup(req: CniRequest): void {
  const c = req.config;
  configureLog({ path: c.log_file_path, level: c.log_level, context: req.containerId ? `${req.containerId.slice(0, 12)}/${req.ifname}` : '' });
}

function vethName(req: CniRequest): string {
  return hostVethName({ namespace: req.args.K8S_POD_NAMESPACE, pod: req.args.K8S_POD_NAME, containerId: req.containerId, ifname: req.ifname });
}

function plainIp(address: string): string { return address.split('/')[0]; }

async function add(req: CniRequest): Promise<Result> {
  setup(req);
  const net = req.config.name;
  // A repeated ADD for the same attachment returns what the first one built (checked below).
  const prev = readAttachment(net, req.containerId, req.ifname);
  // A delegated IPAM plugin (a process of its own) starts first thing and runs while this
  // process loads the dataplane, opens netlink, checks the pod namespace and creates the veth
  // pair (which needs no address): the slowest steps of an ADD overlap. Every failure from
  // here on waits for it and releases what it allocated. Not for a repeated ADD: its address
  // is already held, and an IPAM DEL to undo a second ADD would release that one.
  const delegated = ipamType(req) !== OWN_IPAM;
  const early = delegated && !prev ? startDelegateIpam(req, 'ADD') : undefined;
  if (early) mark('add: ipam spawned');
  let nlHost: Nl;
  try {
    nlHost = NetlinkSocket.open();
  } catch (err) {
    if (early) await abandonIpam(req, early);
    throw err;
  }
  mark('add: netlink open');
  const hostIfname = vethName(req);
  let nlPod: Nl | undefined;
  try {
    if (prev) {
      const link = getLink(nlHost, prev.hostIfname);
      if (prev.netns === req.netns && link && link.index === prev.hostIndex) {
        log.info('repeated add: returning the existing attachment', { hostIfname: prev.hostIfname });
        return prev.result;
      }
      log.warn('stale attachment record: undoing it before a fresh add', { hostIfname: prev.hostIfname });
      await undo(req, nlHost, prev.hostIfname, prev.hostIndex, true);
    }

    const pending = early ?? (delegated ? startDelegateIpam(req, 'ADD') : undefined);
    if (pending && !early) mark('add: ipam spawned');
    const spec = { netns: req.netns, ifname: req.ifname, hostIfname, mtu: 0 };
    let links: dp.PodLinks;
    try {
      try {
        nlPod = dp.openNetlinkIn(req.netns);
      } catch (err) {
        throw new CniError(4, `netns ${req.netns}: cannot enter`, err instanceof Error ? err.message : undefined);
      }
      spec.mtu = dp.podMtu(nlHost, req.config as { mtu?: unknown; encapsulation?: unknown });
      // The veth pair needs no address, so it is made while a delegated IPAM plugin works.
      links = createLinks(nlHost, nlPod, spec);
      mark('add: veth made');
    } catch (err) {
      // No veth of ours is left here (createPodLinks removes a pair it could not finish, and a
      // name that is taken may not be ours); a started IPAM plugin is waited for and released.
      if (pending) {
        log.error('add failed, undoing', { err: String((err as Error)?.message ?? err) });
        await abandonIpam(req, pending);
      }
      throw err;
    }
    const mtu = spec.mtu;
    let ipamRes: Result;
    try {
      ipamRes = pending ? pending.finish()! : await ownIpam().ipamAdd(req);
      mark('add: ipam done');
    } catch (err) {
      log.error('ipam add failed, removing the veth', { err: String((err as Error)?.message ?? err) });
      try { dp.teardownPod(nlHost, hostIfname); } catch (e) { log.error('undo: delete veth failed', { hostIfname, err: String(e) }); }
      throw err;
    }
    const ips = (ipamRes.ips ?? []).map((i) => plainIp(i.address));
    try {
      if (ips.length === 0) throw new CniError(ERR_IPAM, `ipam ${ipamType(req)} returned no address`);
      const w = dp.configurePod(nlHost, nlPod, links, { ...spec, ips });
      const hasV4 = ips.some((ip) => !ip.includes(':'));
      const hasV6 = ips.some((ip) => ip.includes(':'));
      const result: Result = {
        cniVersion: '1.1.0',
        interfaces: [
          { name: hostIfname, mac: w.hostIf.mac, mtu },
          { name: req.ifname, mac: w.podIf.mac, mtu: w.podIf.mtu, sandbox: req.netns },
        ],
        ips: ips.map((ip) => ({ address: `${ip}/${ip.includes(':') ? 128 : 32}`, interface: 1 })),
        routes: [
          ...(hasV4 ? [{ dst: '0.0.0.0/0', gw: dp.GATEWAY4 }] : []),
          ...(hasV6 ? [{ dst: '::/0', gw: dp.GATEWAY6 }] : []),
        ],
      };
      const dns = ipamRes.dns && Object.keys(ipamRes.dns).length ? ipamRes.dns : req.config.dns;
      if (dns && Object.keys(dns).length) result.dns = dns;
      const rec: Attachment = {
        network: net, containerId: req.containerId, ifname: req.ifname, netns: req.netns, hostIfname,
        hostIndex: w.hostIf.index, podMac: w.podIf.mac, mtu, ips, ipamType: ipamType(req),
        podNamespace: req.args.K8S_POD_NAMESPACE, podName: req.args.K8S_POD_NAME, result, created: isoTime(),
      };
      mark('add: pod configured');
      writeAttachment(rec);
      mark('add: record written');
      // The SEA loader (scripts/build.mjs) keeps a V8 code cache per path taken: name ours.
      (globalThis as { [k: symbol]: { want(f: string): void } | undefined })[Symbol.for('brindle.codeCache')]?.want(ipamType(req));
      log.info('added', { hostIfname, ips });
      return result;
    } catch (err) {
      log.error('add failed, undoing', { err: String((err as Error)?.message ?? err) });
      await undo(req, nlHost, hostIfname, undefined, false);
      throw err;
    }
  } finally {
    nlPod?.close();
    nlHost.close();
  }
}

/**
 * Makes the pod's veth pair without checking the names first (two lookups saved on every ADD);
 * when a name is taken, finds out which: the pod already has `ifname` → that error; the host
 * side is a previous sandbox's of the same pod (same name by design) → replaced.
 */
function createLinks(nlHost: Nl, nlPod: Nl, spec: { netns: string; ifname: string; hostIfname: string; mtu: number }): dp.PodLinks {
  try {
    return dp.createPodLinks(nlHost, nlPod, spec);
  } catch (err) {
    if (!(err instanceof dp.VethExistsError)) throw err;
    if (getLink(nlPod, spec.ifname)) throw new CniError(ERR_DATAPLANE, `interface ${spec.ifname} already exists in netns ${spec.netns}`);
    const stale = getLink(nlHost, spec.hostIfname);
    if (!stale) throw err;
    log.warn('deleting stale host veth', { hostIfname: spec.hostIfname, index: stale.index });
    dp.teardownPod(nlHost, spec.hostIfname);
    return dp.createPodLinks(nlHost, nlPod, spec);
  }
}

/** After a failed ADD: waits for the delegated IPAM plugin it started, then releases whatever it allocated. */
async function abandonIpam(req: CniRequest, pending: { finish(): unknown }): Promise<void> {
  try { pending.finish(); } catch { /* the first error is the one reported */ }
  try { await ipamDel(req); } catch (e) { log.error('undo: ipam del failed', { err: String(e) }); }
}

/** Undoes an attachment: its veth (when still ours), its addresses (IPAM DEL), its record. */
async function undo(req: CniRequest, nlHost: Nl, hostIfname: string,
  hostIndex: number | undefined, removeRecord: boolean): Promise<void> {
  try {
    if (hostIndex === undefined || ownsLink(nlHost, hostIfname, hostIndex)) dp.teardownPod(nlHost, hostIfname);
  } catch (err) {
    log.error('undo: delete veth failed', { hostIfname, err: String(err) });
  }
  try {
    await ipamDel(req);
  } catch (err) {
    log.error('undo: ipam del failed', { err: String(err) });
  }
  if (removeRecord) removeAttachment(req.config.name, req.containerId, req.ifname);
}

function ownsLink(nlHost: Nl, hostIfname: string, hostIndex: number): boolean {
  const link = getLink(nlHost, hostIfname);
  return !link || link.index === hostIndex;
}

async function del(req: CniRequest): Promise<void> {
  setup(req);
  const net = req.config.name;
  const rec = readAttachment(net, req.containerId, req.ifname);
  const hostIfname = rec?.hostIfname ?? vethName(req);
  // A delegated IPAM releases while the kernel removes the veth (a link deletion waits for the
  // kernel to let go of the device, the slowest step of a DEL); both are waited for.
  const type = ipamType(req);
  const pending = type === OWN_IPAM ? undefined : startDelegateIpam(req, 'DEL');
  const nlHost = NetlinkSocket.open();
  try {
    let mine: boolean;
    if (rec) mine = ownsLink(nlHost, hostIfname, rec.hostIndex);
    // Without a record, a veth of this name that another container's record claims is not ours.
    else mine = !listAttachments(net).some((a) => a.hostIfname === hostIfname && a.containerId !== req.containerId);
    if (mine) dp.teardownPod(nlHost, hostIfname, req.netns ? { netns: req.netns, ifname: req.ifname } : undefined);
    else log.info('host veth belongs to another attachment; left in place', { hostIfname });
  } catch (err) {
    if (pending) { try { pending.finish(); } catch { /* the dataplane error is the one reported */ } }
    throw err;
  } finally {
    nlHost.close();
  }
  if (pending) pending.finish();
  else await ownIpam().ipamDel(req);
  removeAttachment(net, req.containerId, req.ifname);
  log.info('deleted', { hostIfname });
}

async function check(req: CniRequest): Promise<void> {
  setup(req);
  const prev = req.config.prevResult;
  if (!prev) throw new CniError(ERR_INVALID_CONFIG, 'check needs prevResult');
  const ifaces = prev.interfaces ?? [];
  const podIdx = ifaces.findIndex((i) => i.name === req.ifname && (!i.sandbox || i.sandbox === req.netns));
  if (podIdx < 0) throw new CniError(ERR_CHECK_FAILED, `interface ${req.ifname} missing from prevResult`);
  const podIf = ifaces[podIdx];
  const ips = (prev.ips ?? []).filter((i) => i.interface === undefined || i.interface === podIdx).map((i) => plainIp(i.address));
  if (ips.length === 0) throw new CniError(ERR_CHECK_FAILED, `no address for interface ${req.ifname} in prevResult`);
  const rec = readAttachment(req.config.name, req.containerId, req.ifname);
  const hostIfname = rec?.hostIfname ?? ifaces.find((i) => !i.sandbox && i.name.startsWith('bri'))?.name ?? vethName(req);
  dp.withPodSockets(req.netns, (nlHost, nlPod) => dp.checkPod(nlHost, nlPod, {
    netns: req.netns, ifname: req.ifname, hostIfname, ips, mtu: rec?.mtu ?? podIf.mtu ?? 0, podMac: podIf.mac,
  }));
  const type = ipamType(req);
  if (type === OWN_IPAM) await ownIpam().ipamCheck(req);
  else delegateIpam(req, 'CHECK');
}

const DATASTORE_KEYS = ['datastore_type', 'etcd_endpoints', 'embedded_path', 'kubernetes'];

async function status(req: CniRequest): Promise<void> {
  setup(req);
  const type = ipamType(req);
  if (type === OWN_IPAM) {
    try {
      await ownIpam().ipamStatus(req);
    } catch (err) {
      if (err instanceof CniError && err.code >= 50 && err.code <= 99) throw err;
      throw new CniError(ERR_PLUGIN_NOT_AVAILABLE, `ipam ${type} not available: ${(err as Error)?.message ?? err}`);
    }
    return;
  }
  if (DATASTORE_KEYS.some((k) => req.config[k] !== undefined)) {
    try {
      const { datastoreSettings } = require('../../lib/datastore/settings') as typeof import('../../lib/datastore/settings');
      const { openDatastore } = require('../../lib/datastore/open') as typeof import('../../lib/datastore/open');
      const ds = openDatastore(datastoreSettings(req.config));
      try { await ds.ping(); } finally { await ds.close(); }
    } catch (err) {
      throw new CniError(ERR_PLUGIN_NOT_AVAILABLE, `datastore not available: ${(err as Error)?.message ?? err}`);
    }
  }
  const file = findInPath(type, req.path);
  if (!file) throw new CniError(ERR_PLUGIN_NOT_AVAILABLE, `ipam plugin ${type} not found in CNI_PATH`);
  if (pluginSupports(file, '1.1.0')) {
    try {
      delegateIpam(req, 'STATUS');
    } catch (err) {
      if (err instanceof CniError && err.code >= 50 && err.code <= 99) throw err;
      throw new CniError(ERR_PLUGIN_NOT_AVAILABLE, `ipam ${type} status: ${(err as Error)?.message ?? err}`);
    }
  }
}

async function gc(req: CniRequest): Promise<void> {
  setup(req);
  inGc = true;
  const raw = req.config['cni.dev/valid-attachments'];
  const valid = new Set((Array.isArray(raw) ? raw : []).map((a) => `${a?.containerID}\u0000${a?.ifname}`));
  const net = req.config.name;
  const nlHost = NetlinkSocket.open();
  const errors: string[] = [];
  try {
    for (const a of listAttachments(net)) {
      if (valid.has(`${a.containerId}\u0000${a.ifname}`)) continue;
      const sub: CniRequest = { ...req, verb: 'DEL', containerId: a.containerId, ifname: a.ifname, netns: '' };
      try {
        if (ownsLink(nlHost, a.hostIfname, a.hostIndex)) dp.teardownPod(nlHost, a.hostIfname);
        await ipamDel(sub);
        removeAttachment(net, a.containerId, a.ifname);
        log.info('gc: released attachment', { containerId: a.containerId, ifname: a.ifname, hostIfname: a.hostIfname });
      } catch (err) {
        errors.push(`${a.containerId}/${a.ifname}: ${(err as Error)?.message ?? err}`);
      }
    }
  } finally {
    nlHost.close();
  }
  if (ipamType(req) === OWN_IPAM) await ownIpam().ipamGc(req);
  if (errors.length) throw new CniError(ERR_IPAM, 'gc failed for some attachments', errors.join('; '));
}

/** Entry point (called by plugins/main.ts). */
export async function main(_argv?: string[]): Promise<void> {
  // Every verb handler opens a netlink socket or spawns the IPAM plugin through koffi, so by
  // the time it returns koffi is loaded and the cheap exit applies.
  await runPlugin({ add, del, check, status, gc, exit: (code, ran) => (ran ? fastExit(code) : process.exit(code)) }, ABOUT);
}
