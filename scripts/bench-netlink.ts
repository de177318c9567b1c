// Installs 100,000 /26 routes in a throwaway namespace through lib/netlink's batched
// replaceRoutes and through `ip -batch`, and prints both times (medians of a few runs).
// Usage: npx tsx scripts/bench-netlink.ts [count=100000] [runs=3]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetlinkSocket } from '../lib/netlink/socket';
import { netnsPath, withNetns } from '../lib/netlink/netns';
import { addVeth, getLink, setLinkUp } from '../lib/netlink/link';
import { addAddr } from '../lib/netlink/addr';
import { delRoutes, replaceRoutes, type Route } from '../lib/netlink/route';
import { RTPROT_BRINDLE } from '../lib/netlink/constants';

const count = Number(process.argv[2] ?? 100000);
const runs = Number(process.argv[3] ?? 3);
const ns = `bnl${process.pid}`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'inherit'] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

ip('netns', 'add', ns);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-netlink-'));
try {
  const nl = withNetns(netnsPath(ns), () => NetlinkSocket.open());
  addVeth(nl, { name: 'up0', peerName: 'up0p' });
  const up = getLink(nl, 'up0')!.index;
  setLinkUp(nl, up);
  setLinkUp(nl, getLink(nl, 'up0p')!.index);
  addAddr(nl, up, '198.18.0.1/24');

  const routes: Route[] = [];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const v = 0x0a000000 + i * 64; // the i-th /26 of 10.0.0.0/8
    const dst = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/26`;
    const gw = `198.18.0.${2 + (i % 3)}`;
    routes.push({ family: 4, dst, gateway: gw, protocol: RTPROT_BRINDLE });
    lines.push(`route replace ${dst} via ${gw} proto ${RTPROT_BRINDLE}`);
  }
  if (new Set(routes.map((r) => r.dst)).size !== count) throw new Error('destinations collide');
  const batchFile = path.join(tmp, 'routes.batch');
  fs.writeFileSync(batchFile, lines.join('\n') + '\n');
  const delFile = path.join(tmp, 'routes.del');
  fs.writeFileSync(delFile, lines.map((l) => l.replace('route replace', 'route del')).join('\n') + '\n');

  const ours: number[] = [], oursDel: number[] = [], theirs: number[] = [], theirsDel: number[] = [];
  for (let r = 0; r < runs; r++) {
    let t0 = performance.now();
    const errs = replaceRoutes(nl, routes);
    ours.push(performance.now() - t0);
    const failed = errs.filter(Boolean).length;
    if (failed) throw new Error(`${failed} routes failed: ${errs.find(Boolean)!.message}`);
    t0 = performance.now();
    delRoutes(nl, routes);
    oursDel.push(performance.now() - t0);

    t0 = performance.now();
    ip('-n', ns, '-batch', batchFile);
    theirs.push(performance.now() - t0);
    t0 = performance.now();
    ip('-n', ns, '-batch', delFile);
    theirsDel.push(performance.now() - t0);
  }
  nl.close();
  const f = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`routes: ${count}, runs: ${runs} (medians)`);
  console.log(`lib/netlink replaceRoutes: ${f(median(ours))}   delRoutes: ${f(median(oursDel))}`);
  console.log(`ip -batch route replace:   ${f(median(theirs))}   route del: ${f(median(theirsDel))}`);
  console.log(`ratio (ours / ip): add ${(median(ours) / median(theirs)).toFixed(2)}, del ${(median(oursDel) / median(theirsDel)).toFixed(2)}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
  try { ip('netns', 'del', ns); } catch { /* gone */ }
}
