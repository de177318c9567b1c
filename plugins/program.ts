// The name a start of the single executable runs under (`brindle`, `brindle-ipam`,
// `brindlectl`; BRINDLE_ARGV0 overrides), which picks the program (plugins/main.ts, plugins/cni.ts).

/** The base name the executable was started under. */
export function programName(): string {
  const forced = process.env.BRINDLE_ARGV0;
  if (forced) return forced;
  // In a SEA, process.argv[0] is the executable; argv[1] repeats it. From sources, argv[1] is this file.
  const exe = process.argv0 || process.argv[0];
  return exe.slice(exe.lastIndexOf('/') + 1);
}

