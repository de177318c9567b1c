// `brindlectl ipam show|check|release`: pool and block utilisation, who holds an address,
// the consistency report, and manual release (through lib/ipam's allocator, never raw writes).
import type { Datastore } from '../datastore/types';
import { cidrContains, formatIp, parseCidr, tryParseIp } from '../ip';
import { CtlError } from './errors';
import { bar, boxTable, percent } from './output';

type IpamMod = typeof import('../ipam/allocator');
function ipamOf(ds: Datastore): InstanceType<IpamMod['Ipam']> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Ipam } = require('../ipam/allocator') as IpamMod;
  return new Ipam(ds);
}

/** `ipam show [--show-blocks]`: per pool (and per block) size, in use, free, a bar. */
export async function ipamShow(ds: Datastore, showBlocks: boolean, json: boolean): Promise<string> {
  const usage = await ipamOf(ds).usage();
  usage.sort((a, b) => a.cidr.localeCompare(b.cidr, 'en', { numeric: true }));
  if (json) return JSON.stringify(usage, null, 2) + '\n';
  if (!usage.length) return 'No IP pools configured.\n';
  const rows: string[][] = [];
  for (const p of usage) {
    rows.push(['IP Pool', p.cidr, p.name + (p.disabled ? ' (disabled)' : ''), String(p.size),
      `${p.inUse} (${percent(p.inUse, p.size)})`, `${p.free} (${percent(p.free, p.size)})`, bar(p.inUse, p.size)]);
    if (!showBlocks) continue;
    for (const b of p.blockUsage) {
      rows.push(['Block', b.cidr, b.node ?? '(no affinity)', String(b.size),
        `${b.inUse}/${b.size} (${percent(b.inUse, b.size)})`, `${b.free} (${percent(b.free, b.size)})`, bar(b.inUse, b.size)]);
    }
  }
  return boxTable(['GROUPING', 'CIDR', showBlocks ? 'POOL / NODE' : 'POOL', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE', 'UTILISATION'], rows);
}

export interface IpHolder { ip: string; pool?: string; block?: string; blockNode?: string; handle?: string; attrs?: Record<string, string | undefined> }

/** Looks up who holds an address: its pool, block, handle and the pod's attributes. */
export async function ipamWho(ds: Datastore, addr: string): Promise<IpHolder> {
  const ip = tryParseIp(addr);
  if (!ip) throw new CtlError(`invalid IP address "${addr}"`);
  const text = formatIp(ip);
  const [{ items: pools }, { items: blocks }] = await Promise.all([ds.list('IPPool'), ds.list('IPAMBlock')]);
  const pool = pools.find((p) => cidrContains(parseCidr(p.spec.cidr, { loose: true }), ip));
  const block = blocks.find((b) => cidrContains(parseCidr(b.spec.cidr), ip));
  const res: IpHolder = { ip: text, pool: pool?.metadata.name };
  if (!block) return res;
  res.block = block.spec.cidr;
  res.blockNode = block.spec.affinity?.startsWith('host:') ? block.spec.affinity.slice(5) : undefined;
  const c = parseCidr(block.spec.cidr);
  const ordinal = String(ip.value - c.value);
  const a = block.spec.allocations?.[ordinal];
  if (a) {
    res.handle = a.handle;
    res.attrs = a.attrs;
  }
  return res;
}

/** Text for `ipam show --ip`. */
export function renderWho(h: IpHolder): string {
  if (!h.pool && !h.block) return `IP ${h.ip} is not in any IP pool.\n`;
  if (!h.handle) {
    return `IP ${h.ip} is not assigned${h.block ? ` (block ${h.block}${h.blockNode ? ` of node ${h.blockNode}` : ''})` : ''}${h.pool ? ` in pool ${h.pool}` : ''}.\n`;
  }
  const lines = [`IP ${h.ip} is in use`, `  pool:      ${h.pool ?? '(none)'}`, `  block:     ${h.block}${h.blockNode ? ` (affine to node ${h.blockNode})` : ''}`, `  handle:    ${h.handle}`];
  const a = h.attrs ?? {};
  if (a.pod) lines.push(`  pod:       ${a.pod}`);
  if (a.namespace) lines.push(`  namespace: ${a.namespace}`);
  if (a.node) lines.push(`  node:      ${a.node}`);
  for (const [k, v] of Object.entries(a)) if (!['pod', 'namespace', 'node'].includes(k) && v) lines.push(`  ${(k + ':').padEnd(11)}${v}`);
  return lines.join('\n') + '\n';
}

/** `ipam check`: the consistency report text and whether all is well. */
export async function ipamCheck(ds: Datastore, json: boolean): Promise<{ text: string; ok: boolean }> {
  const r = await ipamOf(ds).checkConsistency();
  if (json) return { text: JSON.stringify(r, null, 2) + '\n', ok: r.ok };
  const lines = [`Checked ${r.blocks} block${r.blocks === 1 ? '' : 's'}, ${r.handles} handle${r.handles === 1 ? '' : 's'}, ${r.allocations} allocation${r.allocations === 1 ? '' : 's'}.`];
  if (r.ok) lines.push('IPAM is consistent: no problems found.');
  else {
    lines.push(`Found ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:`);
    for (const p of r.problems) lines.push(`  [${p.kind}] ${p.message}`);
  }
  return { text: lines.join('\n') + '\n', ok: r.ok };
}

/** `ipam release --ip A... | --handle H...`: what was released, and what was not (with why). */
export async function ipamRelease(ds: Datastore, ips: string[], handles: string[]): Promise<{ text: string; failures: string[] }> {
  const ipam = ipamOf(ds);
  const lines: string[] = [];
  const failures: string[] = [];
  for (const a of ips) if (!tryParseIp(a)) throw new CtlError(`invalid IP address "${a}"`);
  if (ips.length) {
    const r = await ipam.releaseIps(ips);
    for (const x of r.released) lines.push(`released ${x}`);
    for (const s of r.skipped) failures.push(`address ${s.ip} not released: ${s.reason}`);
  }
  for (const h of handles) {
    const freed = await ipam.releaseByHandle(h);
    if (!freed.length) failures.push(`handle ${h} holds no address`); else lines.push(`released handle ${h}: ${freed.join(', ')}`);
  }
  return { text: lines.length ? lines.join('\n') + '\n' : '', failures };
}
