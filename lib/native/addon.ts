// Native addons (koffi, better-sqlite3) loaded with process.dlopen: from node_modules when
// running from sources, and from the single executable's SEA assets when built, extracted
// once into a root-owned directory named by the asset's content hash.
import fs = require('node:fs');

export type AddonName = 'koffi' | 'better_sqlite3';

const SOURCE_PATHS: Record<AddonName, string> = {
  koffi: '@koromix/koffi-linux-x64/linux_x64/koffi.node',
  better_sqlite3: 'better-sqlite3/build/Release/better_sqlite3.node',
};

const RTLD_NOW = 2;

// Process-wide, not per module instance: the executable runs two scripts (the early IPAM start
// and the plugin), and an addon is loaded (dlopen + its init, ~1.3 ms for koffi) once.
const loaded: Map<AddonName, unknown> = ((globalThis as { [k: symbol]: unknown })[Symbol.for('brindle.addons')] ??= new Map()) as Map<AddonName, unknown>;

/** True when the addon is loaded in this process already (by either script). */
export function isAddonLoaded(name: AddonName): boolean {
  return loaded.has(name);
}

/** Loads a native addon once per process and returns its exports. */
export function loadNativeAddon<T = any>(name: AddonName): T {
  const have = loaded.get(name);
  if (have) return have as T;
  const file = nativeAddonPath(name);
  const mod = { exports: {} as any };
  // RTLD_NOW (2 on Linux, as os.constants.dlopen says; node:os is not loaded for it: it is not
  // in Node's start-up snapshot). The addon's own symbols stay local.
  process.dlopen(mod, file, RTLD_NOW);
  loaded.set(name, mod.exports);
  return mod.exports as T;
}

/** True when running inside the single executable (Node SEA). */
export function isSea(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

/** Path of the addon's .node file, extracting the SEA asset when needed. */
export function nativeAddonPath(name: AddonName): string {
  if (!isSea()) return require.resolve(SOURCE_PATHS[name]);
  const sea = require('node:sea') as { getAsset(key: string): ArrayBuffer; getRawAsset(key: string): ArrayBuffer };
  const hash = readAssetHash(sea, name);
  // Plain concatenation (path.join/normalize are two more functions to compile on every start).
  const dir = `${process.env.BRINDLE_NATIVE_DIR || '/var/lib/brindle/native'}/${hash}`;
  const file = `${dir}/${name}.node`;
  if (trusted(file)) return file;
  const data = new Uint8Array(sea.getAsset(`${name}.node`));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Write to a private temp name then rename: concurrent plugin starts never see half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o500 });
  fs.renameSync(tmp, file);
  return file;
}

function readAssetHash(sea: { getRawAsset(key: string): ArrayBuffer }, name: AddonName): string {
  try {
    // Hex text: its first 16 bytes, read in place (no copy, no Buffer decoding).
    const b = new Uint8Array(sea.getRawAsset(`${name}.sha256`), 0, 16);
    const hash = String.fromCharCode(...b);
    return /^[0-9a-f]{16}$/.test(hash) ? hash : 'unversioned';
  } catch {
    return 'unversioned';
  }
}

const S_IFMT = 0o170000, S_IFREG = 0o100000;

/** An extracted file is used only when a regular file owned by us and not writable by others. */
export function trusted(file: string): boolean {
  try {
    const st = ownerAndMode(file);
    const uid = process.getuid?.() ?? 0;
    return (st.mode & S_IFMT) === S_IFREG && st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * stat(2)'s owner and mode. This runs before koffi is loaded, so not through libc; and
 * fs.statSync costs ~0.3 ms on its first call in a process (its argument checks and the Stats
 * object are JavaScript that V8 compiles then), so Node's fs binding is asked directly, as
 * statSync itself does in this Node (20: stat(path, bigint, undefined, throwIfNoEntry) → the
 * stat array: dev, mode, nlink, uid, …), ~50 µs. Any other shape falls back to fs.statSync.
 */
export function ownerAndMode(file: string): { uid: number; mode: number } {
  try {
    const b = (process as unknown as { binding(name: string): { stat?: (...a: unknown[]) => unknown } }).binding('fs');
    const v = typeof b.stat === 'function' ? b.stat(file, false, undefined, true) : undefined;
    if (v instanceof Float64Array && v.length >= 10) return { mode: v[1], uid: v[3] };
  } catch (err) {
    // The binding's own error for the path (ENOENT, EACCES, …) is the answer.
    if (typeof (err as { code?: unknown })?.code === 'string' && (err as { syscall?: unknown }).syscall === 'stat') throw err;
  }
  const st = fs.statSync(file);
  return { mode: st.mode, uid: st.uid };
}
