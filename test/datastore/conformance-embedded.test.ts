// The conformance suite on the embedded (SQLite) backend: a new database file per subtest.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedDatastore } from '../../lib/datastore/embedded';
import { runConformance } from './conformance';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-ds-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
let file = '';

runConformance(t, {
  atomicApply: true,
  async fresh() {
    file = path.join(dir, `db${n++}`, 'brindle.db');
    return new EmbeddedDatastore({ embeddedPath: file });
  },
  async another() {
    return new EmbeddedDatastore({ embeddedPath: file });
  },
});
