// The agent's logger: one line per event on stderr (a DaemonSet's log), with a level filter.
export type AgentLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<AgentLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface AgentLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A stderr logger at `level` (unknown levels mean info). */
export function stderrLog(level = 'info', prefix = ''): AgentLog {
  const min = LEVELS[level.toLowerCase() as AgentLevel] ?? LEVELS.info;
  const fs = require('node:fs') as typeof import('node:fs');
  const w = (lv: AgentLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lv] < min) return;
    try { fs.writeSync(2, `${new Date().toISOString()} ${lv}${prefix ? ` ${prefix}` : ''} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`); } catch { /* stderr gone */ }
  };
  return { debug: w('debug'), info: w('info'), warn: w('warn'), error: w('error') };
}
