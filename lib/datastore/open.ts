// Opens the configured backend. Only the chosen backend's module is loaded (lazy require),
// so a plugin using the embedded store never loads the HTTP clients and vice versa.
import type { Datastore, DatastoreSettings } from './types';

/** Opens a datastore for the given settings (see settings.ts). */
export function openDatastore(settings: DatastoreSettings): Datastore {
  switch (settings.type) {
    case 'embedded': {
      const { EmbeddedDatastore } = require('./embedded') as typeof import('./embedded');
      return new EmbeddedDatastore(settings);
    }
    case 'etcd': {
      const { EtcdDatastore } = require('./etcd') as typeof import('./etcd');
      return new EtcdDatastore(settings);
    }
    case 'kubernetes': {
      const { KubernetesDatastore } = require('./kubernetes') as typeof import('./kubernetes');
      return new KubernetesDatastore(settings);
    }
    default:
      throw new TypeError(`datastore type ${JSON.stringify((settings as { type: unknown }).type)}: unknown`);
  }
}
