// Datastore settings: which backend and how to reach it, from the conflist keys first, then
// the environment, then defaults (DESIGN.md "Conventions"). Tiny and dependency-free: this
// runs on every plugin start.
import fs = require('node:fs');
import type { DatastoreSettings } from './types';

type Env = Record<string, string | undefined>;
type Conf = Record<string, unknown> | undefined;

export const DEFAULT_EMBEDDED_PATH = '/var/lib/brindle/brindle.db';
export const DEFAULT_TIMEOUT_MS = 2000;

/**
 * Settings for openDatastore. `conf` is the plugin's config object (the conflist entry or its
 * ipam section; callers merge the two when both may carry keys). Keys: datastore_type,
 * embedded_path, etcd_endpoints (array or comma-separated), etcd_key_file, etcd_cert_file,
 * etcd_ca_cert_file, etcd_username, etcd_password, kubernetes.kubeconfig, datastore_timeout_ms.
 */
export function datastoreSettings(conf?: Conf, env: Env = process.env): DatastoreSettings {
  const c = conf ?? {};
  const type = (str(c.datastore_type) ?? nonEmpty(env.DATASTORE_TYPE) ?? 'embedded').toLowerCase();
  if (type !== 'embedded' && type !== 'etcd' && type !== 'kubernetes') {
    throw new TypeError(`datastore type ${JSON.stringify(type)}: not one of embedded, etcd, kubernetes`);
  }
  const s: DatastoreSettings = { type };
  const timeout = num(c.datastore_timeout_ms) ?? num(env.DATASTORE_TIMEOUT_MS);
  s.timeoutMs = timeout && timeout > 0 ? timeout : DEFAULT_TIMEOUT_MS;
  if (type === 'embedded') {
    s.embeddedPath = str(c.embedded_path) ?? nonEmpty(env.BRINDLE_DB) ?? DEFAULT_EMBEDDED_PATH;
  } else if (type === 'etcd') {
    const eps = c.etcd_endpoints ?? nonEmpty(env.ETCD_ENDPOINTS);
    s.etcdEndpoints = (Array.isArray(eps) ? eps.map(String) : typeof eps === 'string' ? eps.split(',') : [])
      .map((e) => e.trim()).filter(Boolean);
    if (s.etcdEndpoints.length === 0) throw new TypeError('datastore etcd: no endpoints (etcd_endpoints or ETCD_ENDPOINTS)');
    s.etcdKeyFile = str(c.etcd_key_file) ?? nonEmpty(env.ETCD_KEY_FILE);
    s.etcdCertFile = str(c.etcd_cert_file) ?? nonEmpty(env.ETCD_CERT_FILE);
    s.etcdCaCertFile = str(c.etcd_ca_cert_file) ?? nonEmpty(env.ETCD_CA_CERT_FILE);
    s.etcdUsername = str(c.etcd_username) ?? nonEmpty(env.ETCD_USERNAME);
    s.etcdPassword = str(c.etcd_password) ?? nonEmpty(env.ETCD_PASSWORD);
  } else {
    const k = c.kubernetes;
    const kc = k && typeof k === 'object' ? str((k as Record<string, unknown>).kubeconfig) : undefined;
    // KUBECONFIG may list several files (colon-separated); the first one is used.
    s.kubeconfig = kc ?? nonEmpty(env.KUBECONFIG)?.split(':').find(Boolean);
  }
  return s;
}

/** This node's name: conflist `nodename` > NODENAME > <state dir>/nodename > the hostname. */
export function nodeName(conf?: Conf, env: Env = process.env): string {
  const fromConf = str(conf?.nodename);
  if (fromConf) return fromConf;
  const fromEnv = nonEmpty(env.NODENAME);
  if (fromEnv) return fromEnv;
  try {
    const fromFile = fs.readFileSync(`${stateDir(env)}/nodename`, 'utf8').trim();
    if (fromFile) return fromFile;
  } catch { /* no file: fall through */ }
  // node:os is not in Node's start-up snapshot: loaded only when the hostname is the answer.
  return (require('node:os') as typeof import('node:os')).hostname();
}

/** Node-local state directory (BRINDLE_STATE_DIR, default /var/lib/brindle). */
export function stateDir(env: Env = process.env): string {
  return nonEmpty(env.BRINDLE_STATE_DIR) ?? '/var/lib/brindle';
}

/** Node-local runtime directory for sockets (BRINDLE_RUN_DIR, default /var/run/brindle). */
export function runDir(env: Env = process.env): string {
  return nonEmpty(env.BRINDLE_RUN_DIR) ?? '/var/run/brindle';
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== '' ? v.trim() : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? nonEmpty(v) : undefined;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}
