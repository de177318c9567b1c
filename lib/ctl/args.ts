// Command-line parsing for brindlectl: positional words, flags with values (`-o yaml`,
// `--output=yaml`), boolean flags, and the global datastore flags accepted anywhere.
import { UsageError } from './errors';

export interface FlagSpec {
  /** Long name without dashes, e.g. "show-blocks". */
  name: string;
  short?: string;
  /** Takes a value (`--ip 10.0.0.1`); repeatable flags collect every value. */
  value?: boolean;
}

export interface Parsed {
  positional: string[];
  flags: Record<string, string[] | true | undefined>;
  help: boolean;
}

/** Global flags: the datastore settings (they override the environment). */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'datastore-type', value: true },
  { name: 'db', value: true },
  { name: 'etcd-endpoints', value: true },
  { name: 'run-dir', value: true },
];

/** Parses argv against the command's flags plus the global ones; `--` ends flags. */
export function parseArgs(argv: string[], specs: FlagSpec[]): Parsed {
  const all = [...specs, ...GLOBAL_FLAGS];
  const res: Parsed = { positional: [], flags: {}, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { res.positional.push(...argv.slice(i + 1)); break; }
    if (a === '-h' || a === '--help') { res.help = true; continue; }
    if (a === '-' || !a.startsWith('-')) { res.positional.push(a); continue; }
    let name: string, inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      name = a.slice(1, 2);
      inline = a.length > 2 ? a.slice(2).replace(/^=/, '') : undefined;
    }
    const spec = all.find((s) => (a.startsWith('--') ? s.name === name : s.short === name));
    if (!spec) throw new UsageError(`unknown flag "${a.startsWith('--') ? '--' + name : '-' + name}" (see --help)`);
    if (!spec.value) {
      if (inline !== undefined) throw new UsageError(`flag --${spec.name} takes no value`);
      res.flags[spec.name] = true;
      continue;
    }
    let v = inline;
    if (v === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag --${spec.name} needs a value`);
      v = argv[++i];
    }
    const prev = res.flags[spec.name];
    res.flags[spec.name] = Array.isArray(prev) ? [...prev, v] : [v];
  }
  return res;
}

/** The last value of a value flag, or undefined. */
export function flagValue(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return Array.isArray(v) ? v[v.length - 1] : undefined;
}
