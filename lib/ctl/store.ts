// Opening the datastore for brindlectl with the plugins' settings (environment, then the
// global flags --datastore-type, --db, --etcd-endpoints on top), and translating its errors.
import type { Datastore } from '../datastore/types';
import { flagValue, type Parsed } from './args';

/** Conflist-style keys from the global flags (conflist keys outrank the environment). */
export function settingsConf(p: Parsed): Record<string, unknown> {
  const conf: Record<string, unknown> = {};
  const type = flagValue(p, 'datastore-type');
  if (type) conf.datastore_type = type;
  const db = flagValue(p, 'db');
  if (db) conf.embedded_path = db;
  const etcd = flagValue(p, 'etcd-endpoints');
  if (etcd) conf.etcd_endpoints = etcd;
  return conf;
}

/** Opens the configured datastore (only the chosen backend is loaded). */
export async function openStore(p: Parsed): Promise<Datastore> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { datastoreSettings } = require('../datastore/settings');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { openDatastore } = require('../datastore/open');
  const settings = datastoreSettings(settingsConf(p), process.env);
  if (settings.timeoutMs === undefined) settings.timeoutMs = 5000;
  return await openDatastore(settings);
}

/** Runs `fn` with an open store and closes it after. */
export async function withStore<T>(p: Parsed, fn: (ds: Datastore) => Promise<T>): Promise<T> {
  const ds = await openStore(p);
  try {
    return await fn(ds);
  } finally {
    await ds.close().catch(() => undefined);
  }
}
