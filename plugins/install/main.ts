// `brindle install`: puts the single executable into the CNI bin directory (with the
// brindle-ipam link) and a conflist into the CNI config directory, as Calico's install
// container does. Atomic writes, so a kubelet exec never sees half a file.
import fs = require('node:fs');
import path = require('node:path');
import { NetlinkSocket } from '../../lib/netlink/socket';
import { podMtu } from '../../lib/dataplane/pod';

const USAGE = `usage: brindle install [--cni-bin-dir DIR] [--cni-conf-dir DIR] [--conflist FILE]
  --cni-bin-dir   where kubelet looks for plugins (default /opt/cni/bin)
  --cni-conf-dir  where kubelet reads network configs (default /etc/cni/net.d)
  --conflist      the conflist to install (default: the built-in one, datastore from the environment)
`;

const DEFAULT_CONFLIST = {
  cniVersion: '1.1.0',
  name: 'k8s-pod-network',
  plugins: [
    { type: 'brindle', log_level: 'info', log_file_path: '/var/log/brindle/cni.log', ipam: { type: 'brindle-ipam' } },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    { type: 'bandwidth', capabilities: { bandwidth: true } },
  ],
};

function parse(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { fs.writeSync(1, USAGE); process.exit(0); }
    const m = /^--(cni-bin-dir|cni-conf-dir|conflist)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument "${a}"`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    out[m[1]] = v;
  }
  return out;
}

function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

/** Installs the executable and conflist; returns what it wrote. */
/**
 * The pod MTU the installer writes into the conflist when CNI_MTU is not set, as Calico's
 * installer does: the uplink's (the default route's device) minus the encapsulation overhead.
 * The plugin then skips that lookup on every ADD.
 */
export function detectMtu(main: { mtu?: unknown; encapsulation?: unknown }): number {
  const nl = NetlinkSocket.open();
  try { return podMtu(nl, main); } finally { nl.close(); }
}

export function install(opts: { binDir: string; confDir: string; conflist?: string; exe?: string; env?: NodeJS.ProcessEnv;
  mtu?: (main: { mtu?: unknown; encapsulation?: unknown }) => number }): string[] {
  const env = opts.env ?? process.env;
  const exe = opts.exe ?? process.execPath;
  fs.mkdirSync(opts.binDir, { recursive: true });
  fs.mkdirSync(opts.confDir, { recursive: true });
  const bin = path.join(opts.binDir, 'brindle');
  writeAtomic(bin, fs.readFileSync(exe), 0o755);
  const link = path.join(opts.binDir, 'brindle-ipam');
  const tmpLink = `${link}.${process.pid}.tmp`;
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync('brindle', tmpLink);
  fs.renameSync(tmpLink, link);
  let conf: any;
  if (opts.conflist) {
    try { conf = JSON.parse(fs.readFileSync(opts.conflist, 'utf8')); } catch (err) {
      throw new Error(`conflist ${opts.conflist}: ${(err as Error).message}`);
    }
  } else {
    conf = structuredClone(DEFAULT_CONFLIST);
    const main = conf.plugins[0];
    if (env.DATASTORE_TYPE) main.datastore_type = env.DATASTORE_TYPE;
    if (env.ETCD_ENDPOINTS) main.etcd_endpoints = env.ETCD_ENDPOINTS;
    if (env.CNI_MTU) main.mtu = Number(env.CNI_MTU);
    else {
      try { main.mtu = (opts.mtu ?? detectMtu)(main); } catch { /* no netlink here: the plugin derives it per ADD */ }
    }
  }
  if (!conf || !Array.isArray(conf.plugins) || conf.plugins[0]?.type !== 'brindle') {
    throw new Error(`conflist ${opts.conflist ?? '(built-in)'}: plugins[0].type must be "brindle"`);
  }
  const confFile = path.join(opts.confDir, '10-brindle.conflist');
  writeAtomic(confFile, JSON.stringify(conf, null, 2) + '\n', 0o644);
  return [bin, link, confFile];
}

export async function main(argv: string[]): Promise<void> {
  try {
    const a = parse(argv);
    const wrote = install({
      binDir: a['cni-bin-dir'] ?? '/opt/cni/bin',
      confDir: a['cni-conf-dir'] ?? '/etc/cni/net.d',
      conflist: a.conflist,
    });
    fs.writeSync(1, wrote.map((w) => `installed ${w}\n`).join(''));
    process.exit(0);
  } catch (err) {
    fs.writeSync(2, `brindle install: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
