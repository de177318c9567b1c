// `brindlectl config set|get node-to-node-mesh|as`: edits the BGPConfiguration "default"
// (compare-and-swap); the agents watch it and apply the change live.
import type { Datastore, Resource } from '../datastore/types';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/types';
import { CtlError, UsageError } from './errors';
import { parseAsn } from './resources';

export const DEFAULT_ASN = 64512;
const NAME = 'default';

/** The settable keys, spelled exactly as the seed spells them. */
export const CONFIG_KEYS = ['node-to-node-mesh', 'as'] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

export function configKey(k: string | undefined): ConfigKey {
  if (k === undefined) throw new UsageError(`missing key (one of ${CONFIG_KEYS.join(', ')})`);
  const hit = CONFIG_KEYS.find((x) => x === k);
  if (!hit) throw new UsageError(`unknown config key "${k}" (one of ${CONFIG_KEYS.join(', ')})`);
  return hit;
}

async function read(ds: Datastore): Promise<Resource<'BGPConfiguration'> | undefined> {
  try {
    return await ds.get('BGPConfiguration', NAME);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** Current value as printed: "on"/"off" or the AS number (defaults when unset). */
export async function configGet(ds: Datastore, key: ConfigKey): Promise<string> {
  const c = await read(ds);
  if (key === 'as') return String(c?.spec.asNumber ?? DEFAULT_ASN);
  return c?.spec.nodeToNodeMeshEnabled === false ? 'off' : 'on';
}

/** Parses the value for a key; throws CtlError naming the bad value. */
export function parseConfigValue(key: ConfigKey, value: string | undefined): boolean | number {
  if (value === undefined) throw new UsageError(`missing value for ${key}`);
  if (key === 'node-to-node-mesh') {
    if (value === 'on') return true;
    if (value === 'off') return false;
    throw new CtlError(`invalid value "${value}" for node-to-node-mesh (on or off)`);
  }
  const n = parseAsn(value);
  if (n === undefined) throw new CtlError(`invalid AS number "${value}" (1 to 4294967295, or dotted 1.10)`);
  return n;
}

/** Sets the key in BGPConfiguration "default", creating it when absent; returns true if it changed. */
export async function configSet(ds: Datastore, key: ConfigKey, value: boolean | number): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const c = await read(ds);
    const spec = { ...(c?.spec ?? {}) };
    if (key === 'as') spec.asNumber = value as number;
    else spec.nodeToNodeMeshEnabled = value as boolean;
    const same = c && (key === 'as' ? c.spec.asNumber === value : (c.spec.nodeToNodeMeshEnabled ?? true) === value);
    if (same) return false;
    try {
      if (c) await ds.update({ kind: 'BGPConfiguration', metadata: { ...c.metadata }, spec });
      else await ds.create({ kind: 'BGPConfiguration', metadata: { name: NAME }, spec });
      return true;
    } catch (err) {
      if ((err instanceof ConflictError || err instanceof AlreadyExistsError || err instanceof NotFoundError) && attempt < 8) continue;
      throw err;
    }
  }
}
