// `brindlectl get KIND [NAME...] [-o wide|yaml|json]`: tables in calicoctl's columns, or
// the resources in the shape `apply` reads back.
import type { Datastore, Kind, Resource } from '../datastore/types';
import { NotFoundError } from '../datastore/types';
import { CtlError, UsageError } from './errors';
import { plainTable } from './output';
import { toExternal } from './resources';
import { toYaml } from './yaml';

export type Format = 'table' | 'wide' | 'yaml' | 'json';

/** Parses `-o`; throws UsageError for anything else. */
export function parseFormat(v: string | undefined): Format {
  if (v === undefined) return 'table';
  if (v === 'wide' || v === 'yaml' || v === 'json') return v;
  throw new UsageError(`unknown output format "${v}" (wide, yaml, json)`);
}

/** Fetches the named resources (all of the kind when no names are given), sorted by name. */
export async function fetch(ds: Datastore, kind: Kind, names: string[]): Promise<Resource[]> {
  if (!names.length) {
    const items = (await ds.list(kind)).items;
    return items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name, 'en', { numeric: true }));
  }
  const out: Resource[] = [];
  for (const n of names) {
    try {
      out.push(await ds.get(kind, n));
    } catch (err) {
      if (err instanceof NotFoundError) throw new CtlError(`${kind} "${n}" not found`);
      throw err;
    }
  }
  return out;
}

/** Renders resources in the chosen format. */
export function render(kind: Kind, items: Resource[], format: Format, single: boolean): string {
  if (format === 'json') {
    const ext = items.map(toExternal);
    return JSON.stringify(single && ext.length === 1 ? ext[0] : { apiVersion: 'brindle.dev/v1', kind: 'List', items: ext }, null, 2) + '\n';
  }
  if (format === 'yaml') return items.map((r) => toYaml(toExternal(r))).join('---\n');
  const { headers, rows } = columns(kind, items, format === 'wide');
  if (!items.length) return '';
  return plainTable(headers, rows);
}

function s(v: unknown): string { return v === undefined || v === null || v === '' ? '' : String(v); }

function columns(kind: Kind, items: Resource[], wide: boolean): { headers: string[]; rows: string[][] } {
  switch (kind) {
    case 'IPPool': {
      const rs = items as Resource<'IPPool'>[];
      return wide
        ? { headers: ['NAME', 'CIDR', 'BLOCKSIZE', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'SELECTOR'],
          rows: rs.map((r) => [r.metadata.name, r.spec.cidr, s(r.spec.blockSize), s(r.spec.natOutgoing), s(r.spec.ipipMode), s(r.spec.vxlanMode), s(r.spec.disabled), s(r.spec.nodeSelector)]) }
        : { headers: ['NAME', 'CIDR', 'SELECTOR'], rows: rs.map((r) => [r.metadata.name, r.spec.cidr, s(r.spec.nodeSelector)]) };
    }
    case 'BGPPeer': {
      const rs = items as Resource<'BGPPeer'>[];
      const node = (r: Resource<'BGPPeer'>): string => r.spec.node || (r.spec.nodeSelector ? '(selector)' : '(global)');
      const peer = (r: Resource<'BGPPeer'>): string => r.spec.peerIP ?? '(selector)';
      return wide
        ? { headers: ['NAME', 'PEERIP', 'NODE', 'ASN', 'NODESELECTOR', 'PEERSELECTOR', 'PASSWORD'],
          rows: rs.map((r) => [r.metadata.name, peer(r), node(r), s(r.spec.asNumber), s(r.spec.nodeSelector), s(r.spec.peerSelector), r.spec.password ? 'set' : '']) }
        : { headers: ['NAME', 'PEERIP', 'NODE', 'ASN'], rows: rs.map((r) => [r.metadata.name, peer(r), node(r), s(r.spec.asNumber)]) };
    }
    case 'BGPConfiguration': {
      const rs = items as Resource<'BGPConfiguration'>[];
      return { headers: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER', ...(wide ? ['LISTENPORT'] : [])],
        rows: rs.map((r) => [r.metadata.name, s(r.spec.logSeverityScreen ?? 'Info'), s(r.spec.nodeToNodeMeshEnabled ?? true), s(r.spec.asNumber ?? 64512), ...(wide ? [s(r.spec.listenPort ?? 179)] : [])]) };
    }
    case 'IPAMConfig': {
      const rs = items as Resource<'IPAMConfig'>[];
      return { headers: ['NAME', 'STRICTAFFINITY', 'MAXBLOCKSPERHOST', 'AUTOALLOCATEBLOCKS'],
        rows: rs.map((r) => [r.metadata.name, s(r.spec.strictAffinity), s(r.spec.maxBlocksPerHost), s(r.spec.autoAllocateBlocks)]) };
    }
    case 'Node': {
      const rs = items as Resource<'Node'>[];
      return wide
        ? { headers: ['NAME', 'ASN', 'IPV4', 'IPV6', 'RRCLUSTERID', 'LABELS'],
          rows: rs.map((r) => [r.metadata.name, r.spec.bgp?.asNumber ? String(r.spec.bgp.asNumber) : '(64512)', s(r.spec.bgp?.ipv4Address), s(r.spec.bgp?.ipv6Address), s(r.spec.bgp?.routeReflectorClusterID), labels(r)]) }
        : { headers: ['NAME'], rows: rs.map((r) => [r.metadata.name]) };
    }
    case 'IPAMBlock': {
      const rs = items as Resource<'IPAMBlock'>[];
      return { headers: ['NAME', 'CIDR', 'AFFINITY', 'IN USE', ...(wide ? ['FREE', 'SEQ'] : [])],
        rows: rs.map((r) => [r.metadata.name, r.spec.cidr, s(r.spec.affinity), String(Object.values(r.spec.allocations ?? {}).filter(Boolean).length),
          ...(wide ? [String(r.spec.unallocated?.length ?? ''), s(r.spec.seqNumber)] : [])]) };
    }
    case 'BlockAffinity': {
      const rs = items as Resource<'BlockAffinity'>[];
      return { headers: ['NAME', 'NODE', 'CIDR', 'STATE'], rows: rs.map((r) => [r.metadata.name, r.spec.node, r.spec.cidr, r.spec.state]) };
    }
    case 'IPAMHandle': {
      const rs = items as Resource<'IPAMHandle'>[];
      return { headers: ['NAME', 'BLOCKS'], rows: rs.map((r) => [r.metadata.name, Object.entries(r.spec.block ?? {}).map(([b, n]) => `${b}(${n})`).join(',')]) };
    }
  }
}

function labels(r: Resource): string {
  return Object.entries(r.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
}
