// Entry of the CNI-only bundle (scripts/build.mjs): what a runtime execs once per pod, `brindle`
// or `brindle-ipam` with CNI_COMMAND set, without the agent, controller and CLI in the script
// that every plugin start compiles. plugins/main.ts dispatches to the same mains.
/* eslint-disable @typescript-eslint/no-var-requires */
import { programName } from './program';
import { mark } from '../lib/log';

type Main = { main(argv: string[]): Promise<void> };
mark('entry');
const program: Main = programName() === 'brindle-ipam' ? require('./brindle-ipam/main') : require('./brindle/main');
mark('program loaded');
program.main([]).catch((err: unknown) => {
  require('node:fs').writeSync(2, `brindle: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
