// The single executable's entry: picks the program by the name it runs under
// (`brindle`, `brindle-ipam`, `brindlectl`) or by its first argument (`brindle agent`,
// `brindle controller`, `brindle install`, `brindle ctl`, `brindle ipam`), then loads only that program.
/* eslint-disable @typescript-eslint/no-var-requires */
import { programName } from './program';
import { mark } from '../lib/log';

mark('entry');

type Main = { main(argv: string[]): Promise<void> };

function pick(): { mod: () => Main; argv: string[] } {
  const name = programName();
  const args = process.argv.slice(2);
  if (name === 'brindle-ipam') return { mod: () => require('./brindle-ipam/main'), argv: args };
  if (name === 'brindlectl') return { mod: () => require('./brindlectl/main'), argv: args };
  switch (args[0]) {
    case 'agent': return { mod: () => require('./agent/main'), argv: args.slice(1) };
    case 'controller': return { mod: () => require('./controller/main'), argv: args.slice(1) };
    case 'install': return { mod: () => require('./install/main'), argv: args.slice(1) };
    case 'ctl': return { mod: () => require('./brindlectl/main'), argv: args.slice(1) };
    case 'ipam': return { mod: () => require('./brindle-ipam/main'), argv: args.slice(1) };
    case '--version': case 'version':
      if (!process.env.CNI_COMMAND) {
        require('node:fs').writeSync(1, `brindle ${BRINDLE_VERSION}\n`);
        process.exit(0);
      }
  }
  return { mod: () => require('./brindle/main'), argv: args };
}

declare const BRINDLE_VERSION: string;
(globalThis as any).BRINDLE_VERSION ??= '0.0.0-dev';

const { mod, argv } = pick();
const program = mod();
mark('program loaded');
program.main(argv).catch((err: unknown) => {
  require('node:fs').writeSync(2, `brindle: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
