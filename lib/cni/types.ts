// CNI request and result types. Results are held internally in the spec 1.1.0 shape and
// converted to the version the runtime asked for only when written (lib/cni/version.ts).

export type Verb = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** The network configuration from stdin: the spec's keys plus any plugin keys. */
export interface NetConf {
  cniVersion: string;
  cniVersions?: string[];
  name: string;
  type: string;
  ipam?: { type?: string; [k: string]: unknown };
  dns?: Dns;
  prevResult?: Result;
  runtimeConfig?: Record<string, unknown>;
  capabilities?: Record<string, boolean>;
  'cni.dev/valid-attachments'?: { containerID: string; ifname: string }[];
  [k: string]: unknown;
}

export interface CniRequest {
  verb: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS parsed ("K=V;K=V"). */
  args: Record<string, string>;
  path: string[];
  config: NetConf;
  /** The exact stdin bytes (delegation passes them on unchanged). */
  stdin?: string;
}

export interface Interface { name: string; mac?: string; sandbox?: string; mtu?: number; socketPath?: string; pciID?: string }
export interface IpConfig { address: string; gateway?: string; interface?: number }
export interface Route { dst: string; gw?: string; mtu?: number; advmss?: number; priority?: number; table?: number; scope?: number }
export interface Dns { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] }

/** A result in the spec 1.1.0 shape. */
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}
