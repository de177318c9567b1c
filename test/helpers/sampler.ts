// Samples a condition in the background while a test disturbs the system (a peer or agent
// restarting): what was ever reported missing, and how often it really sampled.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Samples `fn` every `everyMs` (start to start) until stopped; returns what it reported missing, once each. */
export function sampler(everyMs: number, fn: () => string[] | Promise<string[]>) {
  const missing = new Set<string>();
  let samples = 0;
  let on = true;
  const started = Date.now();
  const done = (async () => {
    while (on) {
      const t0 = Date.now();
      try { for (const m of await fn()) missing.add(m); samples++; } catch (err) { missing.add(`sample failed: ${(err as Error).message.split('\n')[0]}`); }
      await sleep(Math.max(10, everyMs - (Date.now() - t0)));
    }
  })();
  return {
    async stop() {
      on = false; await done;
      return { missing: [...missing], samples, every: `${samples} samples, one per ${Math.round((Date.now() - started) / Math.max(1, samples))} ms` };
    },
  };
}
