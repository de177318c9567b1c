// brindlectl's command dispatch and help. Each command module is required only when its
// command runs, so `brindlectl --help` and `node status` never load the datastore.
/* eslint-disable @typescript-eslint/no-var-requires */
import { GLOBAL_FLAGS, flagValue, parseArgs, type FlagSpec, type Parsed } from './args';
import { CtlError, UsageError } from './errors';
import { err, out } from './output';

const GLOBAL_HELP = `
Global flags (override the environment; same settings as the plugins):
  --datastore-type TYPE    embedded | etcd | kubernetes   (env DATASTORE_TYPE, default embedded)
  --db PATH                embedded database file         (env BRINDLE_DB, default /var/lib/brindle/brindle.db)
  --etcd-endpoints URLS    comma-separated etcd URLs      (env ETCD_ENDPOINTS)
  -h, --help               help for the command
`;

const TOP_HELP = `brindlectl: the Brindle operator's CLI

Usage:
  brindlectl <command> [arguments] [flags]

Commands:
  apply -f FILE|-                       create or update resources from YAML or JSON
  get KIND [NAME...] [-o wide|yaml|json] show resources
  delete KIND NAME... | delete -f FILE  delete resources
  config set node-to-node-mesh on|off   turn the BGP full mesh on or off
  config set as <AS number>             set the cluster's default AS number
  config get node-to-node-mesh|as       show a setting
  node status                           BGP sessions of this node (from the local agent)
  ipam show [--show-blocks] [--ip ADDR] pool and block utilisation; who holds an address
  ipam check                            cross-check blocks, affinities and handles
  ipam release --ip ADDR | --handle H   release addresses by hand
  version                               print the version

Kinds: ippool (pool), bgppeer (peer), bgpconfiguration (bgpconfig), ipamconfig, node,
and read-only: ipamblock (block), blockaffinity, ipamhandle (handle).
${GLOBAL_HELP}`;

interface Command {
  help: string;
  flags: FlagSpec[];
  run(p: Parsed): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  apply: {
    help: `Usage: brindlectl apply -f FILE|- [-f FILE...]

Creates or updates resources (kinds IPPool, BGPPeer, BGPConfiguration, IPAMConfig, Node;
apiVersion brindle.dev/v1) from YAML or JSON, one or many documents separated by '---'.
Every document is validated before anything is written. A Node document is merged into the
stored node (the agent's addresses stay); other kinds are replaced.

Flags:
  -f, --filename FILE   file to read ('-' reads stdin); repeatable
${GLOBAL_HELP}`,
    flags: [{ name: 'filename', short: 'f', value: true }],
    async run(p) {
      const files = p.flags.filename;
      if (!Array.isArray(files)) throw new UsageError('apply needs -f FILE (or -f - for stdin)');
      if (p.positional.length) throw new UsageError(`unexpected argument "${p.positional[0]}"`);
      const { readSources, validateDocuments, applyResources } = require('./apply') as typeof import('./apply');
      const docs = readSources(files);
      const resources = validateDocuments(docs.map((d) => d.value));
      const { withStore } = require('./store') as typeof import('./store');
      const outcomes = await withStore(p, (ds) => applyResources(ds, resources, docs.map((d) => d.value)));
      out(outcomes.map((o) => `${o.kind.toLowerCase()}/${o.name} ${o.action}\n`).join(''));
      return 0;
    },
  },
  get: {
    help: `Usage: brindlectl get KIND [NAME...] [-o wide|yaml|json]

Shows resources. KIND is case-insensitive and may be plural or short (ippools, pool, bgppeer,
peer, bgpconfig, ipamconfig, nodes, blocks, blockaffinities, handles).

Flags:
  -o, --output FORMAT   wide, yaml or json (default: a table)
${GLOBAL_HELP}`,
    flags: [{ name: 'output', short: 'o', value: true }],
    async run(p) {
      const [kindName, ...names] = p.positional;
      if (!kindName) throw new UsageError('get needs a KIND (ippool, bgppeer, bgpconfiguration, ipamconfig, node ...)');
      const { resolveKind } = require('./resources') as typeof import('./resources');
      const { parseFormat, fetch, render } = require('./get') as typeof import('./get');
      const kind = resolveKind(kindName);
      const format = parseFormat(flagValue(p, 'output'));
      const { withStore } = require('./store') as typeof import('./store');
      const items = await withStore(p, (ds) => fetch(ds, kind, names));
      if (!items.length && (format === 'table' || format === 'wide')) {
        err(`No ${kind} resources found.\n`);
        return 0;
      }
      out(render(kind, items, format, names.length === 1));
      return 0;
    },
  },
  delete: {
    help: `Usage: brindlectl delete KIND NAME... | brindlectl delete -f FILE

Deletes resources. A pool that still has addresses in use is refused (disable it first).

Flags:
  -f, --filename FILE   delete the resources named in a file ('-' reads stdin)
${GLOBAL_HELP}`,
    flags: [{ name: 'filename', short: 'f', value: true }],
    async run(p) {
      const { deleteResources } = require('./apply') as typeof import('./apply');
      const { resolveKind } = require('./resources') as typeof import('./resources');
      let targets: { kind: import('../datastore/types').Kind; name: string }[];
      const files = p.flags.filename;
      if (Array.isArray(files)) {
        if (p.positional.length) throw new UsageError('delete takes either -f FILE or KIND NAME, not both');
        const { readSources, validateDocuments } = require('./apply') as typeof import('./apply');
        targets = validateDocuments(readSources(files).map((d) => d.value)).map((r) => ({ kind: r.kind, name: r.metadata.name }));
      } else {
        const [kindName, ...names] = p.positional;
        if (!kindName) throw new UsageError('delete needs KIND NAME (or -f FILE)');
        const kind = resolveKind(kindName);
        if (!names.length) throw new UsageError(`delete ${kindName} needs a NAME`);
        targets = names.map((name) => ({ kind, name }));
      }
      const { withStore } = require('./store') as typeof import('./store');
      await withStore(p, (ds) => deleteResources(ds, targets));
      out(targets.map((t) => `${t.kind.toLowerCase()}/${t.name} deleted\n`).join(''));
      return 0;
    },
  },
  config: {
    help: `Usage:
  brindlectl config set node-to-node-mesh on|off
  brindlectl config set as <AS number>
  brindlectl config get node-to-node-mesh|as

Changes the cluster's BGP configuration (BGPConfiguration "default"). Every agent applies
the change live, without a restart. AS numbers are 1 to 4294967295 (or dotted, 1.10).
${GLOBAL_HELP}`,
    flags: [],
    async run(p) {
      const [verb, key, value, extra] = p.positional;
      const { configKey, configGet, configSet, parseConfigValue } = require('./config') as typeof import('./config');
      const { withStore } = require('./store') as typeof import('./store');
      if (verb === 'get') {
        if (value !== undefined) throw new UsageError(`unexpected argument "${value}"`);
        const k = configKey(key);
        out(`${await withStore(p, (ds) => configGet(ds, k))}\n`);
        return 0;
      }
      if (verb === 'set') {
        if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
        const k = configKey(key);
        const v = parseConfigValue(k, value);
        const changed = await withStore(p, (ds) => configSet(ds, k, v));
        out(`${k} ${changed ? 'set to' : 'is already'} ${value}\n`);
        return 0;
      }
      throw new UsageError(verb === undefined ? 'config needs set or get' : `unknown config verb "${verb}" (set, get)`);
    },
  },
  node: {
    help: `Usage: brindlectl node status [-o json]

Shows the BGP sessions of the node it runs on, from the local brindle agent's status socket
(<BRINDLE_RUN_DIR>/agent.sock, default /var/run/brindle/agent.sock). Exits 1 when the agent
is not running.

Flags:
  -o, --output json     the agent's status as JSON
  --run-dir DIR         the agent's run directory (env BRINDLE_RUN_DIR)
${GLOBAL_HELP}`,
    flags: [{ name: 'output', short: 'o', value: true }],
    async run(p) {
      const [verb, extra] = p.positional;
      if (verb !== 'status') throw new UsageError(verb === undefined ? 'node needs a subcommand: status' : `unknown node subcommand "${verb}" (status)`);
      if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
      const fmt = flagValue(p, 'output');
      if (fmt !== undefined && fmt !== 'json') throw new UsageError(`unknown output format "${fmt}" (json)`);
      const { runDir } = require('../datastore/settings') as typeof import('../datastore/settings');
      const dir = flagValue(p, 'run-dir') ?? runDir(process.env);
      const { queryAgent, renderStatus } = require('./node-status') as typeof import('./node-status');
      const s = await queryAgent(`${dir}/agent.sock`);
      out(fmt === 'json' ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
      return 0;
    },
  },
  ipam: {
    help: `Usage:
  brindlectl ipam show [--show-blocks] [-o json]   utilisation per pool (and per block with its node)
  brindlectl ipam show --ip ADDR                   who holds an address (handle, pod, namespace, node)
  brindlectl ipam check [-o json]                  consistency report; exits 1 when something is wrong
  brindlectl ipam release --ip ADDR | --handle H   release addresses (repeatable)

Flags:
  --show-blocks     list every block under its pool
  --ip ADDR         (show) the address to look up; (release) an address to release
  --handle H        (release) release every address of this handle
  -o, --output json machine-readable output
${GLOBAL_HELP}`,
    flags: [{ name: 'show-blocks' }, { name: 'ip', value: true }, { name: 'handle', value: true }, { name: 'output', short: 'o', value: true }],
    async run(p) {
      const [verb, extra] = p.positional;
      if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
      const fmt = flagValue(p, 'output');
      if (fmt !== undefined && fmt !== 'json') throw new UsageError(`unknown output format "${fmt}" (json)`);
      const json = fmt === 'json';
      const ips = Array.isArray(p.flags.ip) ? p.flags.ip : [];
      const handles = Array.isArray(p.flags.handle) ? p.flags.handle : [];
      const ipam = require('./ipam') as typeof import('./ipam');
      const { withStore } = require('./store') as typeof import('./store');
      switch (verb) {
        case 'show': {
          if (handles.length) throw new UsageError('--handle is for ipam release');
          if (ips.length) {
            const who = await withStore(p, (ds) => Promise.all(ips.map((a) => ipam.ipamWho(ds, a))));
            out(json ? JSON.stringify(who.length === 1 ? who[0] : who, null, 2) + '\n' : who.map(ipam.renderWho).join(''));
            return 0;
          }
          out(await withStore(p, (ds) => ipam.ipamShow(ds, p.flags['show-blocks'] === true, json)));
          return 0;
        }
        case 'check': {
          const r = await withStore(p, (ds) => ipam.ipamCheck(ds, json));
          out(r.text);
          return r.ok ? 0 : 1;
        }
        case 'release': {
          if (!ips.length && !handles.length) throw new UsageError('ipam release needs --ip ADDR or --handle H');
          const r = await withStore(p, (ds) => ipam.ipamRelease(ds, ips, handles));
          out(r.text);
          if (r.failures.length) throw new CtlError(r.failures.join('; '));
          return 0;
        }
        default:
          throw new UsageError(verb === undefined ? 'ipam needs a subcommand: show, check, release' : `unknown ipam subcommand "${verb}" (show, check, release)`);
      }
    },
  },
  version: {
    help: 'Usage: brindlectl version\n',
    flags: [],
    async run() {
      out(`brindlectl ${(globalThis as { BRINDLE_VERSION?: string }).BRINDLE_VERSION ?? '0.0.0-dev'}\n`);
      return 0;
    },
  },
};

/** Runs brindlectl with `argv` (without the program name); returns the exit code. Never throws. */
export async function run(argv: string[]): Promise<number> {
  let idx = -1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) { idx = i; break; }
    if (GLOBAL_FLAGS.some((f) => f.value && a === `--${f.name}`)) i++;
  }
  const name = idx < 0 ? undefined : argv[idx];
  try {
    if (name === undefined || name === 'help') {
      const topic = name === 'help' ? argv[idx + 1] : undefined;
      if (topic && COMMANDS[topic]) { out(COMMANDS[topic].help); return 0; }
      if (argv.includes('--version')) return await COMMANDS.version.run(parseArgs([], []));
      out(TOP_HELP);
      return argv.length === 0 || argv.includes('-h') || argv.includes('--help') || name === 'help' ? 0 : 2;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw new UsageError(`unknown command "${name}" (see brindlectl --help)`);
    const rest = [...argv.slice(0, idx), ...argv.slice(idx + 1)];
    if (rest.includes('-h') || rest.includes('--help')) { out(cmd.help); return 0; }
    const p = parseArgs(rest, cmd.flags);
    return await cmd.run(p);
  } catch (e) {
    return reportError(e);
  }
}

/** One line on stderr; the exit code from the error's class. */
function reportError(e: unknown): number {
  let msg: string;
  let code = 1;
  if (e instanceof CtlError) {
    msg = e.message;
    code = e.exitCode;
  } else {
    const x = e as Error;
    const n = x?.name;
    if (n === 'UnavailableError') msg = `datastore unavailable: ${x.message}`;
    else if (n === 'SelectorError' || n === 'PoolValidationError' || n === 'TypeError' || n === 'ConflictError' || n === 'NotFoundError' || n === 'AlreadyExistsError' || n?.endsWith('Error')) msg = x.message;
    else msg = String(e);
    if (process.env.BRINDLECTL_DEBUG && x?.stack) err(x.stack + '\n');
  }
  err(`error: ${msg.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  return code;
}
