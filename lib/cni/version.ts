// CNI spec versions: which we speak, and result conversion between the 0.3.x/0.4.0 shape
// (ips[].version), 1.0.0 and the canonical 1.1.0 shape (interfaces[].mtu, routes[].mtu…).
import { CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION } from './errors';
import type { Dns, Interface, IpConfig, Result, Route } from './types';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_VERSION = '1.1.0';

const RANK: Record<string, number> = { '0.1.0': 1, '0.2.0': 2, '0.3.0': 3, '0.3.1': 4, '0.4.0': 5, '1.0.0': 6, '1.1.0': 7 };

/** True when we can speak this version. */
export function isSupported(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two known versions (negative, zero, positive); unknown versions rank lowest. */
export function compareVersions(a: string, b: string): number { return (RANK[a] ?? 0) - (RANK[b] ?? 0); }

/**
 * The version to speak for a config: its cniVersion when supported; when absent, the
 * highest supported one of `cniVersions` (spec 1.1.0); else ERR_INCOMPATIBLE_VERSION.
 */
export function negotiateVersion(conf: { cniVersion?: unknown; cniVersions?: unknown }): string {
  const v = conf.cniVersion;
  if (v === undefined || v === '') {
    const list = Array.isArray(conf.cniVersions) ? conf.cniVersions.filter(isSupported) : [];
    if (list.length) return list.sort(compareVersions)[list.length - 1];
  }
  if (isSupported(v)) return v;
  throw new CniError(ERR_INCOMPATIBLE_VERSION, `incompatible cni version ${typeof v === 'string' && v ? JSON.stringify(v) : '(missing)'}`,
    `plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
}

const isObj = (x: unknown): x is Record<string, any> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A result's list `name`: each entry an object with the string `key`, mapped by `fn`. */
function parseList<T>(list: unknown, name: string, key: string, missing: string, fn: (o: Record<string, any>) => T): T[] {
  if (!Array.isArray(list)) throw new CniError(ERR_DECODE, `result ${name} is not a list`);
  return list.map((x: unknown) => {
    if (!isObj(x) || typeof x[key] !== 'string') throw new CniError(ERR_DECODE, `result ${missing}`);
    return fn(x);
  });
}

/** Parses a result of any supported version (a prevResult, an IPAM plugin's output) into the 1.1.0 shape. */
export function parseResult(raw: unknown, fallbackVersion: string): Result {
  if (!isObj(raw)) throw new CniError(ERR_DECODE, 'result is not an object');
  const version = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : fallbackVersion;
  if (!isSupported(version)) throw new CniError(ERR_INCOMPATIBLE_VERSION, `unsupported result version ${JSON.stringify(version)}`);
  const out: Result = { cniVersion: CURRENT_VERSION };
  if (raw.interfaces !== undefined) {
    out.interfaces = parseList(raw.interfaces, 'interfaces', 'name', 'interface without a name', (i): Interface => {
      const r: Interface = { name: i.name };
      if (typeof i.mac === 'string' && i.mac) r.mac = i.mac;
      if (typeof i.sandbox === 'string' && i.sandbox) r.sandbox = i.sandbox;
      if (typeof i.mtu === 'number' && i.mtu) r.mtu = i.mtu;
      if (typeof i.socketPath === 'string' && i.socketPath) r.socketPath = i.socketPath;
      if (typeof i.pciID === 'string' && i.pciID) r.pciID = i.pciID;
      return r;
    });
  }
  if (raw.ips !== undefined) {
    out.ips = parseList(raw.ips, 'ips', 'address', 'ip without an address', (ip): IpConfig => {
      const r: IpConfig = { address: ip.address };
      if (typeof ip.gateway === 'string' && ip.gateway) r.gateway = ip.gateway;
      if (typeof ip.interface === 'number') r.interface = ip.interface;
      return r;
    });
  }
  if (raw.routes !== undefined) {
    out.routes = parseList(raw.routes, 'routes', 'dst', 'route without a dst', (rt): Route => {
      const r: Route = { dst: rt.dst };
      if (typeof rt.gw === 'string' && rt.gw) r.gw = rt.gw;
      for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (typeof rt[k] === 'number') r[k] = rt[k];
      return r;
    });
  }
  if (isObj(raw.dns)) out.dns = raw.dns as Dns;
  return out;
}

/** The result as the runtime asked for it: 0.3.x/0.4.0 add ips[].version; pre-1.1.0 drop 1.1.0-only keys. */
export function resultForVersion(res: Result, version: string): Record<string, unknown> {
  const legacy = compareVersions(version, '1.0.0') < 0;
  const modern = compareVersions(version, '1.1.0') >= 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (res.interfaces) {
    out.interfaces = res.interfaces.map((i) => {
      const r: Record<string, unknown> = { name: i.name };
      if (i.mac) r.mac = i.mac;
      if (modern && i.mtu) r.mtu = i.mtu;
      if (i.sandbox) r.sandbox = i.sandbox;
      if (modern && i.socketPath) r.socketPath = i.socketPath;
      if (modern && i.pciID) r.pciID = i.pciID;
      return r;
    });
  }
  if (res.ips) {
    out.ips = res.ips.map((ip) => {
      const r: Record<string, unknown> = {};
      if (legacy) r.version = ip.address.includes(':') ? '6' : '4';
      if (ip.interface !== undefined) r.interface = ip.interface;
      r.address = ip.address;
      if (ip.gateway) r.gateway = ip.gateway;
      return r;
    });
  }
  if (res.routes) {
    out.routes = res.routes.map((rt) => {
      const r: Record<string, unknown> = { dst: rt.dst };
      if (rt.gw) r.gw = rt.gw;
      if (modern) for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (rt[k] !== undefined) r[k] = rt[k];
      return r;
    });
  }
  if (res.dns && Object.keys(res.dns).length) out.dns = res.dns;
  return out;
}
