// Where and how to reach the Kubernetes API server: a kubeconfig file (current-context →
// cluster server + CA, user token or client certificate) or the in-cluster service account.
// Includes a reader for the small YAML subset kubeconfig files use (block maps and sequences,
// plain and quoted scalars, empty flow collections); JSON kubeconfigs are read as JSON.
import fs = require('node:fs');
import path = require('node:path');

export interface KubeTarget {
  /** "https://host:port" (no trailing slash). */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  /** Re-read on 401 (projected service account tokens rotate). */
  tokenFile?: string;
  insecureSkipTlsVerify?: boolean;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Reads the kubeconfig at `file`, or the in-cluster service account when `file` is undefined
 * (its files in `saDir`, default SERVICE_ACCOUNT_DIR).
 */
export function kubeTarget(file: string | undefined, env: Record<string, string | undefined> = process.env, saDir = SERVICE_ACCOUNT_DIR): KubeTarget {
  return file ? fromKubeconfig(file) : inCluster(env, saDir);
}

/** The in-cluster service account: token and CA files, KUBERNETES_SERVICE_HOST/PORT. */
export function inCluster(env: Record<string, string | undefined> = process.env, dir = SERVICE_ACCOUNT_DIR): KubeTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new TypeError('kubernetes: no kubeconfig and not in a cluster (KUBERNETES_SERVICE_HOST unset)');
  const tokenFile = path.join(dir, 'token');
  let token: string;
  try { token = fs.readFileSync(tokenFile, 'utf8').trim(); } catch (err) {
    throw new TypeError(`kubernetes in-cluster: service account token ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    token,
    tokenFile,
    ca: readIf(path.join(dir, 'ca.crt')),
  };
}

function readIf(file: string): Buffer | undefined {
  try { return fs.readFileSync(file); } catch { return undefined; }
}

type Y = any;

/** Resolves current-context of a kubeconfig file into a KubeTarget. */
export function fromKubeconfig(file: string): KubeTarget {
  const doc = parseYaml(fs.readFileSync(file, 'utf8')) as Y;
  const dir = path.dirname(path.resolve(file));
  const what = `kubeconfig ${file}`;
  const named = (list: Y, name: string, field: string): Y => {
    const hit = (Array.isArray(list) ? list : []).find((e: Y) => e?.name === name);
    if (!hit?.[field]) throw new TypeError(`${what}: no ${field} named ${JSON.stringify(name)}`);
    return hit[field];
  };
  const ctxName = doc?.['current-context'];
  if (!ctxName) throw new TypeError(`${what}: no current-context`);
  const ctx = named(doc.contexts, ctxName, 'context');
  const cluster = named(doc.clusters, ctx.cluster, 'cluster');
  const user = ctx.user ? named(doc.users, ctx.user, 'user') : {};
  if (!cluster.server) throw new TypeError(`${what}: cluster ${ctx.cluster} has no server`);
  const data = (inline: unknown, ref: unknown): Buffer | undefined => {
    if (typeof inline === 'string' && inline) return Buffer.from(inline, 'base64');
    if (typeof ref === 'string' && ref) return fs.readFileSync(path.resolve(dir, ref));
    return undefined;
  };
  if (user.exec || user['auth-provider']) {
    throw new TypeError(`${what}: user ${ctx.user}: exec and auth-provider credentials are not supported (use a token or client certificate)`);
  }
  const t: KubeTarget = {
    server: String(cluster.server).replace(/\/+$/, ''),
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  if (typeof user.token === 'string' && user.token) t.token = user.token;
  else if (typeof user.tokenFile === 'string' && user.tokenFile) {
    t.tokenFile = path.resolve(dir, user.tokenFile);
    t.token = fs.readFileSync(t.tokenFile, 'utf8').trim();
  }
  return t;
}

interface Line { indent: number; text: string; n: number }

/** Parses the YAML subset used by kubeconfig files (or JSON). Throws SyntaxError. */
export function parseYaml(src: string): unknown {
  const trimmed = src.trim();
  if (trimmed.startsWith('{')) return JSON.parse(trimmed);
  const lines: Line[] = [];
  src.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw) || raw === '---' || raw === '...') return;
    if (/^\t/.test(raw)) throw new SyntaxError(`yaml line ${i + 1}: tab indentation`);
    const text = stripComment(raw);
    if (text.trim() === '') return;
    lines.push({ indent: raw.length - raw.trimStart().length, text: text.trim(), n: i + 1 });
  });
  if (lines.length === 0) return null;
  const p = { i: 0 };
  const v = parseBlock(lines, p, lines[0].indent);
  if (p.i < lines.length) throw new SyntaxError(`yaml line ${lines[p.i].n}: unexpected indentation`);
  return v;
}

function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) { if (c === q) q = null; continue; }
    if ((c === '"' || c === '\'') && (i === 0 || /[\s:\-[{,]/.test(s[i - 1]))) q = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]))) return s.slice(0, i);
  }
  return s;
}

function parseBlock(lines: Line[], p: { i: number }, indent: number): unknown {
  const first = lines[p.i];
  if (first.text === '-' || first.text.startsWith('- ')) return parseSeq(lines, p, indent);
  return parseMap(lines, p, indent);
}

function splitKey(text: string, n: number): [string, string] | null {
  let key: string;
  let rest: string;
  if (text[0] === '"' || text[0] === '\'') {
    const end = text.indexOf(text[0], 1);
    if (end < 0) throw new SyntaxError(`yaml line ${n}: unterminated key`);
    key = scalar(text.slice(0, end + 1), n) as string;
    rest = text.slice(end + 1);
    if (!rest.startsWith(':')) return null;
    rest = rest.slice(1);
  } else {
    const m = text.match(/^([^:]*?):(\s|$)/);
    if (!m) return null;
    key = m[1].trim();
    rest = text.slice(m[0].length - (m[2] ? 1 : 0));
  }
  return [key, rest.trim()];
}

function parseMap(lines: Line[], p: { i: number }, indent: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (p.i < lines.length && lines[p.i].indent === indent) {
    const line = lines[p.i];
    if (line.text.startsWith('- ') || line.text === '-') break;
    const kv = splitKey(line.text, line.n);
    if (!kv) throw new SyntaxError(`yaml line ${line.n}: expected "key: value"`);
    const [key, rest] = kv;
    p.i++;
    if (rest !== '') {
      out[key] = scalar(rest, line.n);
      continue;
    }
    const next = lines[p.i];
    if (next && next.indent > indent) out[key] = parseBlock(lines, p, next.indent);
    else if (next && next.indent === indent && (next.text.startsWith('- ') || next.text === '-')) out[key] = parseSeq(lines, p, indent);
    else out[key] = null;
  }
  return out;
}

function parseSeq(lines: Line[], p: { i: number }, indent: number): unknown[] {
  const out: unknown[] = [];
  while (p.i < lines.length && lines[p.i].indent === indent && (lines[p.i].text.startsWith('- ') || lines[p.i].text === '-')) {
    const line = lines[p.i];
    const rest = line.text === '-' ? '' : line.text.slice(2).trimStart();
    if (rest === '') {
      p.i++;
      const next = lines[p.i];
      out.push(next && next.indent > indent ? parseBlock(lines, p, next.indent) : null);
    } else if (rest.startsWith('- ') || splitKey(rest, line.n)) {
      // "- key: value" opens a map (or "- - x" a sequence) whose column is where the text starts.
      const col = line.indent + (line.text.length - rest.length);
      lines[p.i] = { indent: col, text: rest, n: line.n };
      out.push(parseBlock(lines, p, col));
    } else {
      p.i++;
      out.push(scalar(rest, line.n));
    }
  }
  return out;
}

function scalar(s: string, n: number): unknown {
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new SyntaxError(`yaml line ${n}: unterminated string`);
    return JSON.parse(s);
  }
  if (s.startsWith('\'')) {
    if (!s.endsWith('\'') || s.length < 2) throw new SyntaxError(`yaml line ${n}: unterminated string`);
    return s.slice(1, -1).replace(/''/g, '\'');
  }
  if (s === '{}') return {};
  if (s === '[]') return [];
  if (s.startsWith('[') && s.endsWith(']') && !/[[\]{}]/.test(s.slice(1, -1))) {
    return s.slice(1, -1).split(',').map((x) => scalar(x.trim(), n));
  }
  if (s.startsWith('{') && s.endsWith('}') && !/[[\]{}]/.test(s.slice(1, -1))) {
    // A flat flow map: {cluster: a, user: b}.
    const out: Record<string, unknown> = {};
    for (const part of s.slice(1, -1).split(',')) {
      const kv = splitKey(part.trim(), n);
      if (!kv) throw new SyntaxError(`yaml line ${n}: expected "key: value" in flow map`);
      out[kv[0]] = scalar(kv[1], n);
    }
    return out;
  }
  if (s.startsWith('{') || s.startsWith('|') || s.startsWith('>') || s.startsWith('&') || s.startsWith('*')) {
    throw new SyntaxError(`yaml line ${n}: unsupported syntax ${JSON.stringify(s.slice(0, 10))}`);
  }
  if (s === 'true' || s === 'True') return true;
  if (s === 'false' || s === 'False') return false;
  if (s === 'null' || s === '~') return null;
  if (/^-?\d+$/.test(s)) return Number(s);
  return s;
}
