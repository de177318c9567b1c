// Command-line flags of the daemons (`brindle agent`, `brindle controller`): `--flag value` and
// `--flag=value`, one callback per argument, and the usage error both report with exit 2.

/** A bad command line; its message is the whole report (usage text included when asked). */
export class UsageError extends Error { override name = 'UsageError'; }

/**
 * Calls `on(flag, value)` for each argument in order. `value()` returns the flag's value, inline
 * (`--x=1`) or the next argument, and throws UsageError when there is none.
 */
export function eachFlag(argv: string[], on: (flag: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let inline: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) { inline = flag.slice(eq + 1); flag = flag.slice(0, eq); }
    on(flag, () => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`flag ${flag}: missing value`);
      return next;
    });
  }
}
