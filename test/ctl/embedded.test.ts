// brindlectl against the embedded datastore (a fresh database file).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ctlSuite } from './suite';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindlectl-embedded-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const env = { DATASTORE_TYPE: 'embedded', BRINDLE_DB: path.join(dir, 'brindle.db') };
ctlSuite(t, () => env);
