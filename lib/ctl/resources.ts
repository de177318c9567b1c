// The resources brindlectl reads and writes: kind names (plurals, short names), the schema
// of each applicable kind (`apiVersion: brindle.dev/v1`), defaults, and the external shape
// (apiVersion/kind/metadata/spec) printed by `get -o yaml|json`.
import type { Kind, Resource } from '../datastore/types';
import { tryParseCidr, tryParseIp } from '../ip';
import { SchemaError, UsageError } from './errors';

export const API_VERSION = 'brindle.dev/v1';

/** Kinds `apply` accepts; the others are managed by Brindle and are read-only here. */
export const APPLICABLE: readonly Kind[] = ['IPPool', 'BGPPeer', 'BGPConfiguration', 'IPAMConfig', 'Node'];

const ALIASES: Record<string, Kind> = {};
function alias(kind: Kind, ...names: string[]): void {
  for (const n of [kind.toLowerCase(), ...names]) ALIASES[n] = kind;
}
alias('IPPool', 'ippools', 'pool', 'pools', 'ipp');
alias('BGPPeer', 'bgppeers', 'peer', 'peers', 'bgpp');
alias('BGPConfiguration', 'bgpconfigurations', 'bgpconfig', 'bgpconfigs', 'bgpc');
alias('IPAMConfig', 'ipamconfigs', 'ipamconfiguration', 'ipamconfigurations', 'ipamc');
alias('Node', 'nodes', 'no');
alias('IPAMBlock', 'ipamblocks', 'block', 'blocks');
alias('BlockAffinity', 'blockaffinities', 'affinity', 'affinities');
alias('IPAMHandle', 'ipamhandles', 'handle', 'handles');

/** Resolves a kind name as typed (case-insensitive, plural or short); throws UsageError. */
export function resolveKind(name: string): Kind {
  const k = ALIASES[name.toLowerCase().replace(/\.brindle\.dev$/, '')];
  if (!k) throw new UsageError(`unknown resource kind "${name}" (known: ippool, bgppeer, bgpconfiguration, ipamconfig, node, ipamblock, blockaffinity, ipamhandle)`);
  return k;
}

/** Label used in errors: `document 2 (IPPool pool-b)`. */
export function docLabel(index: number, raw: unknown): string {
  const o = isObj(raw) ? raw : {};
  const kind = typeof o.kind === 'string' ? o.kind : undefined;
  const name = isObj(o.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : undefined;
  const what = [kind, name].filter(Boolean).join(' ');
  return `document ${index}${what ? ` (${what})` : ''}`;
}

function isObj(v: unknown): v is Record<string, any> { return !!v && typeof v === 'object' && !Array.isArray(v); }

type Check = (v: unknown, path: string) => unknown;

class Ctx {
  constructor(readonly doc: string) {}
  fail(field: string, reason: string): never { throw new SchemaError(this.doc, field, reason); }
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function str(c: Ctx, v: unknown, path: string): string {
  if (typeof v !== 'string') c.fail(path, `must be a string, got ${typeName(v)}`);
  return v;
}
function bool(c: Ctx, v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') c.fail(path, `must be true or false, got ${typeName(v)}`);
  return v;
}
function int(c: Ctx, v: unknown, path: string, min: number, max: number): number {
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v)) c.fail(path, `must be an integer, got ${typeName(v)}`);
  if (v < min || v > max) c.fail(path, `must be between ${min} and ${max}`);
  return v;
}
function oneOf<T extends string>(c: Ctx, v: unknown, path: string, allowed: readonly T[]): T {
  const s = str(c, v, path);
  const hit = allowed.find((a) => a.toLowerCase() === s.toLowerCase());
  if (!hit) c.fail(path, `must be one of ${allowed.join(', ')}`);
  return hit;
}
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `"${v.length > 30 ? v.slice(0, 27) + '...' : v}"`;
  return String(v);
}

/** Valid AS number: 1..4294967295 (4-octet, RFC 6793); dotted "1.10" notation accepted. */
export function parseAsn(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const m = /^([0-9]+)\.([0-9]+)$/.exec(v);
    if (m) {
      const hi = Number(m[1]), lo = Number(m[2]);
      return hi <= 65535 && lo <= 65535 && (hi || lo) ? hi * 65536 + lo : undefined;
    }
    if (!/^[0-9]+$/.test(v)) return undefined;
    v = Number(v);
  }
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4294967295 ? v : undefined;
}
function asn(c: Ctx, v: unknown, path: string): number {
  const n = parseAsn(v);
  if (n === undefined) c.fail(path, `invalid AS number ${typeName(v)} (1 to 4294967295)`);
  return n;
}

function selector(c: Ctx, v: unknown, path: string): string {
  const s = str(c, v, path);
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const sel = require('../ipam/selector');
    const parse = sel.parseSelector ?? sel.compileSelector ?? sel.parse;
    if (typeof parse === 'function') parse(s);
  } catch (err) {
    if ((err as { code?: string }).code === 'MODULE_NOT_FOUND') return s;
    c.fail(path, `invalid selector: ${(err as Error).message}`);
  }
  return s;
}

function fields(c: Ctx, o: unknown, path: string, known: Record<string, (v: unknown, p: string) => unknown>): Record<string, unknown> {
  if (o === undefined || o === null) o = {};
  if (!isObj(o)) c.fail(path, `must be a map, got ${typeName(o)}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const p = path ? `${path}.${k}` : k;
    const check = known[k];
    if (!check) c.fail(p, `unknown field (known: ${Object.keys(known).join(', ')})`);
    if (v === null || v === undefined) continue;
    out[k] = check(v, p);
  }
  return out;
}

const MODES = ['Always', 'CrossSubnet', 'Never'] as const;

const SPECS: Record<string, (c: Ctx, spec: unknown, name: string) => Record<string, unknown>> = {
  IPPool(c, spec) {
    const s = fields(c, spec, 'spec', {
      cidr: (v, p) => {
        const t = str(c, v, p);
        const cidr = tryParseCidr(t, { loose: true });
        if (!cidr) c.fail(p, `invalid CIDR "${t}"`);
        if (!tryParseCidr(t)) c.fail(p, `"${t}" has host bits set`);
        return t;
      },
      blockSize: (v, p) => v,
      ipipMode: (v, p) => oneOf(c, v, p, MODES),
      vxlanMode: (v, p) => oneOf(c, v, p, MODES),
      natOutgoing: (v, p) => bool(c, v, p),
      nodeSelector: (v, p) => selector(c, v, p),
      disabled: (v, p) => bool(c, v, p),
    });
    if (s.cidr === undefined) c.fail('spec.cidr', 'required');
    const cidr = tryParseCidr(s.cidr as string)!;
    const v6 = cidr.family === 6;
    const blockSize = s.blockSize === undefined ? (v6 ? 122 : 26)
      : v6 ? int(c, s.blockSize, 'spec.blockSize', 116, 128) : int(c, s.blockSize, 'spec.blockSize', 16, 32);
    if (blockSize < cidr.len) c.fail('spec.blockSize', `must not be shorter than the pool's prefix length /${cidr.len}`);
    const ipipMode = (s.ipipMode ?? 'Never') as string;
    const vxlanMode = (s.vxlanMode ?? 'Never') as string;
    if (ipipMode !== 'Never' && vxlanMode !== 'Never') c.fail('spec.vxlanMode', 'ipipMode and vxlanMode cannot both be enabled');
    if (v6 && ipipMode !== 'Never') c.fail('spec.ipipMode', 'IPIP is IPv4 only');
    return {
      cidr: s.cidr, blockSize, ipipMode, vxlanMode,
      natOutgoing: s.natOutgoing ?? false, nodeSelector: s.nodeSelector ?? 'all()', disabled: s.disabled ?? false,
    };
  },
  BGPPeer(c, spec) {
    const s = fields(c, spec, 'spec', {
      node: (v, p) => str(c, v, p),
      peerIP: (v, p) => {
        const t = str(c, v, p);
        // "addr", "addr:port" (IPv4) or "[addr]:port" (IPv6), as calicoctl accepts.
        const m = /^\[(.+)\]:([0-9]+)$/.exec(t) ?? /^([0-9.]+):([0-9]+)$/.exec(t);
        if (!tryParseIp(m ? m[1] : t)) c.fail(p, `invalid IP address "${t}"`);
        if (m) int(c, Number(m[2]), p, 1, 65535);
        return t;
      },
      peerPort: (v, p) => int(c, v, p, 1, 65535),
      asNumber: (v, p) => asn(c, v, p),
      nodeSelector: (v, p) => selector(c, v, p),
      peerSelector: (v, p) => selector(c, v, p),
      password: (v, p) => {
        const t = str(c, v, p);
        if (t.length > 80) c.fail(p, 'TCP MD5 keys are at most 80 bytes (RFC 2385)');
        return t;
      },
      keepOriginalNextHop: (v, p) => bool(c, v, p),
    });
    if (s.peerIP === undefined && s.peerSelector === undefined) c.fail('spec', 'one of peerIP or peerSelector is required');
    if (s.peerIP !== undefined && s.peerSelector !== undefined) c.fail('spec.peerSelector', 'cannot be set together with peerIP');
    if (s.peerIP !== undefined && s.asNumber === undefined) c.fail('spec.asNumber', 'required with peerIP');
    if (s.node !== undefined && s.nodeSelector !== undefined) c.fail('spec.nodeSelector', 'cannot be set together with node');
    return s;
  },
  BGPConfiguration(c, spec) {
    return fields(c, spec, 'spec', {
      asNumber: (v, p) => asn(c, v, p),
      nodeToNodeMeshEnabled: (v, p) => bool(c, v, p),
      listenPort: (v, p) => int(c, v, p, 1, 65535),
      logSeverityScreen: (v, p) => oneOf(c, v, p, ['Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const),
    });
  },
  IPAMConfig(c, spec, name) {
    if (name !== 'default') c.fail('metadata.name', 'the IPAMConfig must be named "default"');
    const s = fields(c, spec, 'spec', {
      strictAffinity: (v, p) => bool(c, v, p),
      maxBlocksPerHost: (v, p) => int(c, v, p, 0, 2 ** 31 - 1),
      autoAllocateBlocks: (v, p) => bool(c, v, p),
    });
    return { strictAffinity: s.strictAffinity ?? false, maxBlocksPerHost: s.maxBlocksPerHost ?? 0, autoAllocateBlocks: s.autoAllocateBlocks ?? true };
  },
  Node(c, spec) {
    const s = fields(c, spec, 'spec', {
      bgp: (v, p) => fields(c, v, p, {
        ipv4Address: (x, q) => {
          const t = str(c, x, q);
          const cidr = tryParseCidr(t, { loose: true });
          if (!cidr || cidr.family !== 4) c.fail(q, `invalid IPv4 address/length "${t}"`);
          return t;
        },
        ipv6Address: (x, q) => {
          const t = str(c, x, q);
          const cidr = tryParseCidr(t, { loose: true });
          if (!cidr || cidr.family !== 6) c.fail(q, `invalid IPv6 address/length "${t}"`);
          return t;
        },
        asNumber: (x, q) => asn(c, x, q),
        routeReflectorClusterID: (x, q) => {
          const t = str(c, x, q);
          const ip = tryParseIp(t);
          if (!ip || ip.family !== 4) c.fail(q, `must be a dotted-quad cluster ID (RFC 4456), got "${t}"`);
          return t;
        },
      }),
      vxlanTunnelMACAddr: (v, p) => str(c, v, p),
      vxlanTunnelAddress: (v, p) => str(c, v, p),
      ipv4IPIPTunnelAddr: (v, p) => str(c, v, p),
    });
    return s;
  },
};

function stringMap(c: Ctx, v: unknown, path: string): Record<string, string> {
  if (!isObj(v)) c.fail(path, `must be a map, got ${typeName(v)}`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(k)) c.fail(`${path}.${k}`, 'invalid key');
    if (typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
    else out[k] = str(c, x, `${path}.${k}`);
  }
  return out;
}

/**
 * Checks one parsed document and returns it as a Resource with defaults filled in.
 * `index` is 1-based, for messages. Throws SchemaError naming the document and field.
 */
export function toResource(raw: unknown, index: number): Resource {
  const c: Ctx = new Ctx(docLabel(index, raw));
  if (!isObj(raw)) c.fail('', `must be a map, got ${typeName(raw)}`);
  for (const k of Object.keys(raw)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(k)) c.fail(k, 'unknown top-level field (apiVersion, kind, metadata, spec)');
  }
  if (raw.apiVersion === undefined) c.fail('apiVersion', `required (${API_VERSION})`);
  if (raw.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}, got ${typeName(raw.apiVersion)}`);
  if (typeof raw.kind !== 'string') c.fail('kind', raw.kind === undefined ? 'required' : `must be a string, got ${typeName(raw.kind)}`);
  const kind = APPLICABLE.find((k) => k === raw.kind);
  if (!kind) {
    const managed = ['IPAMBlock', 'BlockAffinity', 'IPAMHandle'].includes(raw.kind);
    c.fail('kind', managed ? `${raw.kind} is managed by brindle and cannot be applied` : `unknown kind "${raw.kind}" (one of ${APPLICABLE.join(', ')})`);
  }
  const md = raw.metadata;
  if (!isObj(md)) c.fail('metadata', md === undefined ? 'required' : `must be a map, got ${typeName(md)}`);
  for (const k of Object.keys(md)) {
    if (!['name', 'labels', 'annotations', 'resourceVersion', 'revision', 'creationTimestamp', 'uid'].includes(k)) c.fail(`metadata.${k}`, 'unknown field');
  }
  if (md.name === undefined) c.fail('metadata.name', 'required');
  const name = str(c, md.name, 'metadata.name');
  if (!NAME_RE.test(name)) c.fail('metadata.name', `"${name}" is not a valid name (lowercase letters, digits, '-' and '.')`);
  const metadata: Resource['metadata'] = { name };
  if (md.labels !== undefined && md.labels !== null) metadata.labels = stringMap(c, md.labels, 'metadata.labels');
  if (md.annotations !== undefined && md.annotations !== null) metadata.annotations = stringMap(c, md.annotations, 'metadata.annotations');
  const spec = SPECS[kind](c, raw.spec, name);
  return { kind, metadata, spec } as Resource;
}

/** The external shape of a stored resource (for -o yaml/json). */
export function toExternal(r: Resource): Record<string, unknown> {
  const md: Record<string, unknown> = { name: r.metadata.name };
  if (r.metadata.labels && Object.keys(r.metadata.labels).length) md.labels = r.metadata.labels;
  if (r.metadata.annotations && Object.keys(r.metadata.annotations).length) md.annotations = r.metadata.annotations;
  if (r.metadata.creationTimestamp) md.creationTimestamp = r.metadata.creationTimestamp;
  if (r.metadata.revision) md.resourceVersion = r.metadata.revision;
  return { apiVersion: API_VERSION, kind: r.kind, metadata: md, spec: r.spec };
}

/** Splits parsed input into resource documents: a `List` (kind List / *List with items) expands. */
export function expandLists(values: { value: unknown; line: number }[]): { value: unknown; line: number }[] {
  const out: { value: unknown; line: number }[] = [];
  for (const d of values) {
    const v = d.value;
    if (Array.isArray(v)) { for (const x of v) out.push({ value: x, line: d.line }); continue; }
    if (isObj(v) && typeof v.kind === 'string' && /List$/.test(v.kind) && Array.isArray(v.items)) {
      for (const x of v.items) out.push({ value: x, line: d.line });
      continue;
    }
    if (v === null) continue;
    out.push(d);
  }
  return out;
}

export type { Check };
