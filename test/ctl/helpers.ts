// Runs brindlectl as users do: the built dist/brindlectl when present, else the sources
// through tsx with BRINDLE_ARGV0=brindlectl. Returns exit code and both streams.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');

export interface CtlResult { code: number; stdout: string; stderr: string }

function command(): { cmd: string; pre: string[]; env: Record<string, string> } {
  const bin = process.env.BRINDLECTL_BIN ?? path.join(REPO, 'dist', 'brindlectl');
  if (fs.existsSync(bin)) return { cmd: bin, pre: [], env: {} };
  return { cmd: path.join(REPO, 'node_modules', '.bin', 'tsx'), pre: [path.join(REPO, 'plugins', 'main.ts')], env: { BRINDLE_ARGV0: 'brindlectl' } };
}

/** Runs `brindlectl args...` with `env` added to a clean environment (no inherited datastore settings). */
export function brindlectl(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CtlResult> {
  const { cmd, pre, env } = command();
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, ...args], { env: { ...base, ...env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A command that does not read stdin (--help) may exit before the write: EPIPE is no failure.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

export const POOL_A = `apiVersion: brindle.dev/v1
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.244.0.0/16
  blockSize: 26
`;
