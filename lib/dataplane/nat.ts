// natOutgoing: masquerade traffic from pods of pools with natOutgoing that leaves all pools,
// in the nftables table `brindle` (families ip and ip6), replaced atomically on every change
// and deleted when no pool needs it.
//
// Why the `nft` binary's JSON mode (`nft -j -f <file>`) and not netlink: the nftables netlink API
// (nf_tables messages, expression bytecode, sets, batches with generation ids) is large, and
// `nft -j` is nftables' own supported, stable JSON interface to exactly that API. It is run
// in the agent's own network namespace, only when pools change; `ip` itself is never run.
import { execFile } from 'node:child_process';
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import { tryParseCidr, formatIp } from '../ip';

export const NAT_TABLE = 'brindle';

export interface NatPool { cidr: string; natOutgoing: boolean; disabled?: boolean }

type NftCmd = Record<string, unknown>;

function elems(cidrs: string[]): unknown[] {
  return cidrs.map((c) => {
    const p = tryParseCidr(c)!;
    return { prefix: { addr: formatIp(p), len: p.len } };
  });
}

/** The nft JSON commands that make table `brindle` hold exactly the rules for `pools`. */
export function natCommands(pools: NatPool[]): { nftables: NftCmd[] } {
  const cmds: NftCmd[] = [];
  for (const [family, fam, type, proto] of [['ip', 4, 'ipv4_addr', 'ip'], ['ip6', 6, 'ipv6_addr', 'ip6']] as const) {
    const all = pools.filter((p) => tryParseCidr(p.cidr)?.family === fam).map((p) => p.cidr);
    const nat = pools.filter((p) => p.natOutgoing && !p.disabled && tryParseCidr(p.cidr)?.family === fam).map((p) => p.cidr);
    const table = { family, name: NAT_TABLE };
    // add + delete: deleting a missing table would fail the whole transaction.
    cmds.push({ add: { table } }, { delete: { table } });
    if (nat.length === 0) continue;
    cmds.push({ add: { table } });
    cmds.push({ add: { set: { family, table: NAT_TABLE, name: 'all-pools', type, flags: ['interval'], elem: elems(all) } } });
    cmds.push({ add: { set: { family, table: NAT_TABLE, name: 'nat-pools', type, flags: ['interval'], elem: elems(nat) } } });
    cmds.push({ add: { chain: { family, table: NAT_TABLE, name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } } });
    cmds.push({ add: { rule: { family, table: NAT_TABLE, chain: 'postrouting', expr: [
      { match: { op: '==', left: { payload: { protocol: proto, field: 'saddr' } }, right: '@nat-pools' } },
      { match: { op: '!=', left: { payload: { protocol: proto, field: 'daddr' } }, right: '@all-pools' } },
      { masquerade: null },
    ] } } });
  }
  return { nftables: cmds };
}

/**
 * Applies natCommands(pools) with `nft -j -f <file>` in one transaction. A file, not stdin:
 * nft opens /dev/stdin, which fails on the socketpair Node gives a child for stdio.
 */
export function applyNat(pools: NatPool[], nft = process.env.BRINDLE_NFT ?? 'nft'): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brindle-nft-'));
  const file = path.join(dir, 'ruleset.json');
  fs.writeFileSync(file, JSON.stringify(natCommands(pools)));
  return new Promise<void>((resolve, reject) => {
    execFile(nft, ['-j', '-f', file], { timeout: 10000 }, (err, _out, stderr) => {
      if (err) reject(new NatError(`apply nftables table ${NAT_TABLE}: ${String(stderr).trim().toLowerCase() || err.message}`));
      else resolve();
    });
  }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

export class NatError extends Error { override name = 'NatError'; }
