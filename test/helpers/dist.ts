// Whether the built single executable is current: tests run dist/brindle only when it is not
// older than any TypeScript source in lib/ and plugins/ (a stale build tests old code).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Newest modification time (ms) of the .ts files under `dir`. */
export function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** True when `exe` exists and was built after the last change to lib/ and plugins/ of `root`. */
export function builtAfterSources(root: string, exe: string): boolean {
  if (!fs.existsSync(exe)) return false;
  return fs.statSync(exe).mtimeMs >= Math.max(newestSource(path.join(root, 'lib')), newestSource(path.join(root, 'plugins')));
}
