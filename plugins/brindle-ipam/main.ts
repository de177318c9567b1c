// The `brindle-ipam` IPAM plugin: wiring only (lib/cni/skel + lib/ipam/cni).
import { runPlugin } from '../../lib/cni/skel';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus, setExitAfterVerb } from '../../lib/ipam/cni';

const ABOUT = 'brindle-ipam: per-node address blocks from the brindle datastore';

/** Entry point (plugins/main.ts dispatches here); ends the process itself. */
export async function main(): Promise<void> {
  const setup = (req: { config: Record<string, unknown>; containerId: string; ifname: string }): void => {
    const c = req.config;
    const ic = (c.ipam ?? {}) as Record<string, unknown>;
    if (c.log_file_path === undefined && ic.log_file_path === undefined && c.log_level === undefined) return;
    const { configureLog } = require('../../lib/log') as typeof import('../../lib/log');
    configureLog({ path: c.log_file_path ?? ic.log_file_path, level: c.log_level ?? ic.log_level, context: req.containerId ? `${req.containerId.slice(0, 12)}/${req.ifname}` : 'ipam' });
  };
  setExitAfterVerb();
  await runPlugin({
    add: async (req) => { setup(req); return ipamAdd(req); },
    del: async (req) => { setup(req); return ipamDel(req); },
    check: async (req) => { setup(req); return ipamCheck(req); },
    status: async (req) => { setup(req); return ipamStatus(req); },
    gc: async (req) => { setup(req); return ipamGc(req); },
  }, ABOUT);
}
