// `brindlectl` (or `brindle ctl`): wiring only; the commands live in lib/ctl.

/** Runs brindlectl with argv (without the program name) and exits with its code. */
export async function main(argv: string[]): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { run } = require('../../lib/ctl/main') as typeof import('../../lib/ctl/main');
  const code = await run(argv);
  process.exit(code);
}
