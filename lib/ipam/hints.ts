// Block hints: the blocks a node had at its last ADD, in a small file per node, so that the
// next plugin process reads them in the same round trip as the node's affinities instead of
// one round trip later. Only a hint: a missing, stale or garbled file costs one more read,
// never a wrong allocation (the affinities decide, and every write is revision-guarded).
import fs = require('node:fs');

export interface BlockHints {
  /** Block CIDRs last seen affine to the node ([] when unknown). */
  get(node: string): string[];
  /** Records the node's block CIDRs. Never throws. */
  set(node: string, cidrs: string[]): void;
}

/** Hints kept as `<dir>/ipam-blocks-<node>` (a JSON array of CIDRs), replaced by rename. */
export function fileBlockHints(dir: string): BlockHints {
  const file = (node: string) => `${dir}/ipam-blocks-${node.replace(/[/\0]/g, '_')}`;
  return {
    get(node) {
      try {
        const v: unknown = JSON.parse(fs.readFileSync(file(node), 'utf8'));
        return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
      } catch {
        return [];
      }
    },
    set(node, cidrs) {
      const f = file(node);
      const tmp = `${f}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, JSON.stringify(cidrs));
        fs.renameSync(tmp, f);
      } catch {
        try { fs.unlinkSync(tmp); } catch { /* not there */ }
      }
    },
  };
}
