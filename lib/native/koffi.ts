// The koffi FFI module, loaded straight from its .node file (process.dlopen costs ~1 ms where
// require('koffi') costs ~7 ms), and one shared handle on libc for every caller.
import type * as Koffi from 'koffi';
import { loadNativeAddon } from './addon';

let k: typeof Koffi | undefined;
let libcHandle: Koffi.LibraryHandle | undefined;

/** The koffi API (the native module's exports are the API). */
export function koffi(): typeof Koffi {
  return (k ??= loadNativeAddon<typeof Koffi>('koffi'));
}

/** One process-wide handle on libc.so.6 (each load costs 2–3 ms). */
export function libcLib(): Koffi.LibraryHandle {
  return (libcHandle ??= koffi().load('libc.so.6'));
}
