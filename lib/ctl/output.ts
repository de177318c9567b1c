// Terminal output for brindlectl: synchronous writes (no process.stdout: start-up cost)
// and the bordered tables calicoctl users know.
import { writeSync } from 'node:fs';

/** Writes all of `text` to a file descriptor, waiting out EAGAIN on non-blocking pipes. */
export function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

export const out = (text: string): void => writeAll(1, text);
export const err = (text: string): void => writeAll(2, text);

/** A bordered table (`+---+` rules, centred headers) as calicoctl prints it. */
export function boxTable(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const rule = '+' + w.map((n) => '-'.repeat(n + 2)).join('+') + '+';
  const centre = (s: string, n: number): string => {
    const gap = n - displayWidth(s);
    const left = Math.ceil(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const line = (cells: string[], head: boolean): string =>
    '| ' + cells.map((c, i) => (head ? centre(c, w[i]) : pad(c, w[i]))).join(' | ') + ' |';
  return [rule, line(headers, true), rule, ...rows.map((r) => line(r, false)), rule].join('\n') + '\n';
}

/** A plain aligned table (kubectl `get` style): upper-case headers, two-space gaps. */
export function plainTable(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : pad(c, w[i]))).join('   ').replace(/\s+$/, '');
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function pad(s: string, n: number): string { return s + ' '.repeat(Math.max(0, n - displayWidth(s))); }

/** Width on a terminal: code points (the bars and marks used here are one column each). */
export function displayWidth(s: string): number {
  // eslint-disable-next-line no-control-regex
  return [...s.replace(/\x1b\[[0-9;]*m/g, '')].length;
}

/** A utilisation bar: `[████░░░░░░]` for `used` of `total`. */
export function bar(used: bigint | number, total: bigint | number, width = 20): string {
  const u = Number(used), t = Number(total);
  const filled = t > 0 ? Math.min(width, Math.round((u / t) * width)) : 0;
  const shown = u > 0 && filled === 0 ? 1 : filled;
  return '[' + '█'.repeat(shown) + '░'.repeat(width - shown) + ']';
}

/** Percentage text with one decimal below 10%. */
export function percent(used: bigint | number, total: bigint | number): string {
  const t = Number(total);
  if (!t) return '0%';
  const p = (Number(used) / t) * 100;
  if (p > 0 && p < 0.1) return '<0.1%';
  if (p < 100 && p > 99.9) return '>99.9%';
  return p > 0 && p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}
