// A small YAML subset for brindlectl's resource files (no YAML library: start-up cost):
// block maps and lists, plain/single/double-quoted scalars, single-line flow collections,
// literal/folded block scalars, comments, and `---` documents. Errors carry the line number.
// Scalars follow the YAML 1.2 core schema (so `off` and `yes` stay strings).

/** A malformed document: `line` is 1-based. */
export class YamlError extends Error {
  constructor(readonly line: number, readonly reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = 'YamlError';
  }
}

/** One document of a multi-document stream and the line it starts on. */
export interface YamlDocument { value: unknown; line: number }

interface Line { indent: number; text: string; no: number }

/** Parses every document in `text`; documents holding only comments are skipped. */
export function parseYamlDocuments(text: string): YamlDocument[] {
  const docs: YamlDocument[] = [];
  let cur: Line[] = [];
  const raw = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const flush = (): void => {
    const first = cur.find((l) => l.indent >= 0);
    if (first) docs.push({ value: new Parser(cur).document(), line: first.no });
    cur = [];
  };
  for (let i = 0; i < raw.length; i++) {
    const no = i + 1;
    const l = raw[i];
    if (/^---(\s|$)/.test(l)) {
      flush();
      const rest = stripComment(l.slice(3), no).trim();
      if (rest) cur.push({ indent: 3, text: rest, no });
      continue;
    }
    if (/^\.\.\.(\s|$)/.test(l)) { flush(); continue; }
    if (/^\s*%/.test(l) && !cur.length) continue; // directives
    const m = /^( *)(.*)$/.exec(l)!;
    if (m[2].startsWith('\t')) throw new YamlError(no, 'tab used for indentation');
    const body = stripComment(m[2], no);
    if (!body.trim()) { cur.push({ indent: -1, text: m[2], no }); continue; }
    cur.push({ indent: m[1].length, text: body.replace(/\s+$/, ''), no });
  }
  flush();
  return docs;
}

/** Parses a single-document stream (empty text is null). */
export function parseYaml(text: string): unknown {
  const docs = parseYamlDocuments(text);
  if (docs.length > 1) throw new YamlError(docs[1].line, 'expected one document, found several');
  return docs.length ? docs[0].value : null;
}

/** Removes a `#` comment that starts the line or follows whitespace, outside quotes. */
function stripComment(s: string, no: number): string {
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (q === '"' && c === '\\') { i++; continue; }
      if (c === q) {
        if (q === "'" && s[i + 1] === "'") { i++; continue; }
        q = undefined;
      }
      continue;
    }
    if ((c === '"' || c === "'") && (i === 0 || /[\s\[{,:-]/.test(s[i - 1]))) { q = c; continue; }
    if (c === '#' && (i === 0 || /\s/.test(s[i - 1]))) return s.slice(0, i);
  }
  void no;
  return s;
}

class Parser {
  private i = 0;
  constructor(private readonly lines: Line[]) {}

  document(): unknown {
    this.skipBlank();
    if (this.i >= this.lines.length) return null;
    const first = this.peek()!;
    const v = this.block(first.indent);
    this.skipBlank();
    const extra = this.peek();
    if (extra) throw new YamlError(extra.no, `unexpected content "${clip(extra.text)}" (check the indentation)`);
    return v;
  }

  private peek(): Line | undefined { return this.lines[this.i]; }
  private skipBlank(): void { while (this.i < this.lines.length && this.lines[this.i].indent < 0) this.i++; }

  /** A node whose first line is at exactly `indent`. */
  private block(indent: number): unknown {
    this.skipBlank();
    const l = this.peek()!;
    if (isSeqItem(l.text)) return this.seq(indent);
    if (findKeyColon(l.text, l.no) >= 0) return this.map(indent);
    this.i++;
    const v = scalarOrFlow(l.text, l.no);
    this.skipBlank();
    const next = this.peek();
    if (next && next.indent > indent) {
      throw new YamlError(next.no, 'multi-line plain scalars are not supported (quote the value or use |)');
    }
    return v;
  }

  private seq(indent: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      this.skipBlank();
      const l = this.peek();
      if (!l || l.indent < indent) break;
      if (l.indent > indent) throw new YamlError(l.no, 'bad indentation of a list item');
      if (!isSeqItem(l.text)) break;
      const rest = l.text.slice(1).replace(/^ +/, '');
      if (!rest) {
        this.i++;
        out.push(this.nested(indent, true));
      } else {
        // "- key: v" or "- - x": the rest is a node at the column where it starts.
        const col = indent + (l.text.length - rest.length);
        this.lines[this.i] = { indent: col, text: rest, no: l.no };
        out.push(this.block(col));
      }
    }
    return out;
  }

  private map(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (;;) {
      this.skipBlank();
      const l = this.peek();
      if (!l || l.indent < indent) break;
      if (l.indent > indent) throw new YamlError(l.no, `bad indentation: "${clip(l.text)}"`);
      if (isSeqItem(l.text)) throw new YamlError(l.no, 'list item where a key was expected');
      const c = findKeyColon(l.text, l.no);
      if (c < 0) throw new YamlError(l.no, `expected "key: value", found "${clip(l.text)}"`);
      const key = keyText(l.text.slice(0, c).trim(), l.no);
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new YamlError(l.no, `duplicate key "${key}"`);
      const rest = l.text.slice(c + 1).trim();
      this.i++;
      if (!rest) out[key] = this.nested(indent, false);
      else if (/^[|>][-+]?$/.test(rest)) out[key] = this.blockScalar(indent, rest, l.no);
      else out[key] = scalarOrFlow(rest, l.no);
      if (key === '__proto__') throw new YamlError(l.no, 'key "__proto__" is not allowed');
    }
    return out;
  }

  /** The value after "key:" or "-" on its own line: a deeper block, a same-level list (maps only), or null. */
  private nested(indent: number, inSeq: boolean): unknown {
    this.skipBlank();
    const n = this.peek();
    if (!n) return null;
    if (n.indent > indent) return this.block(n.indent);
    if (!inSeq && n.indent === indent && isSeqItem(n.text)) return this.seq(indent);
    return null;
  }

  private blockScalar(indent: number, head: string, no: number): string {
    const parts: { indent: number; text: string }[] = [];
    let min = Infinity;
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      if (l.indent >= 0 && l.indent <= indent) break;
      // Block scalars keep '#' text: re-read the raw text for this line is not possible after
      // comment stripping, so comments inside block scalars are not supported.
      parts.push({ indent: l.indent, text: l.indent < 0 ? '' : l.text });
      if (l.indent >= 0) min = Math.min(min, l.indent);
      this.i++;
    }
    while (parts.length && parts[parts.length - 1].indent < 0) parts.pop();
    if (!parts.length) return '';
    if (min === Infinity) min = indent + 1;
    void no;
    const texts = parts.map((p) => (p.indent < 0 ? '' : ' '.repeat(p.indent - min) + p.text));
    let s = head[0] === '|' ? texts.join('\n') : texts.reduce((acc, t, k) => (k === 0 ? t : acc + (t === '' ? '\n' : texts[k - 1] === '' ? t : ' ' + t)), '');
    if (!head.endsWith('-')) s += '\n';
    return s;
  }
}

function isSeqItem(text: string): boolean { return text === '-' || text.startsWith('- '); }

function clip(s: string): string { return s.length > 40 ? `${s.slice(0, 37)}...` : s; }

/** Index of the ':' that ends a mapping key (followed by space or end), outside quotes/flow; -1 if none. */
function findKeyColon(text: string, no: number): number {
  if (text[0] === '[' || text[0] === '{') return -1;
  let i = 0;
  if (text[0] === '"' || text[0] === "'") {
    const end = quotedEnd(text, 0, no);
    i = end;
    if (text[i] === ':' && (i + 1 === text.length || text[i + 1] === ' ')) return i;
    return -1;
  }
  for (; i < text.length; i++) {
    if (text[i] === ':' && (i + 1 === text.length || text[i + 1] === ' ')) return i;
  }
  return -1;
}

function keyText(k: string, no: number): string {
  if (k[0] === '"' || k[0] === "'") return quoted(k, no);
  if (k[0] === '&' || k[0] === '*' || k[0] === '!') throw new YamlError(no, 'anchors, aliases and tags are not supported');
  if (k === '?' || k.startsWith('? ')) throw new YamlError(no, 'complex keys are not supported');
  return k;
}

/** Index just past the closing quote of the quoted scalar starting at `start`. */
function quotedEnd(s: string, start: number, no: number): number {
  const q = s[start];
  for (let i = start + 1; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') { i++; continue; }
    if (s[i] === q) {
      if (q === "'" && s[i + 1] === "'") { i++; continue; }
      return i + 1;
    }
  }
  throw new YamlError(no, 'unterminated quoted string');
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', '/': '/', '0': '\0', ' ': ' ', b: '\b', f: '\f', e: '\x1b', a: '\x07', v: '\v' };

function quoted(s: string, no: number): string {
  const end = quotedEnd(s, 0, no);
  if (end !== s.length) throw new YamlError(no, `unexpected text after quoted string: "${clip(s.slice(end))}"`);
  const body = s.slice(1, -1);
  if (s[0] === "'") return body.replace(/''/g, "'");
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') { out += c; continue; }
    const e = body[++i];
    if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) throw new YamlError(no, `bad escape "\\${e}${hex}"`);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += n;
    } else if (e in ESCAPES) out += ESCAPES[e];
    else throw new YamlError(no, `bad escape "\\${e ?? ''}"`);
  }
  return out;
}

function scalarOrFlow(text: string, no: number): unknown {
  if (text[0] === '[' || text[0] === '{') {
    const p = { s: text, i: 0, no };
    const v = flowValue(p);
    skipWs(p);
    if (p.i !== text.length) throw new YamlError(no, `unexpected text after flow collection: "${clip(text.slice(p.i))}"`);
    return v;
  }
  if (text[0] === '"' || text[0] === "'") return quoted(text, no);
  return plain(text, no);
}

/** Resolves a plain scalar by the YAML 1.2 core schema. */
function plain(t: string, no: number): unknown {
  if (t[0] === '&' || t[0] === '*' || t[0] === '!') throw new YamlError(no, 'anchors, aliases and tags are not supported');
  if (t[0] === '@' || t[0] === '`') throw new YamlError(no, `plain scalar cannot start with "${t[0]}"`);
  if (/^(null|Null|NULL|~)$/.test(t)) return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?[0-9]+$/.test(t)) return Number(t);
  if (/^0x[0-9a-fA-F]+$/.test(t)) return parseInt(t.slice(2), 16);
  if (/^0o[0-7]+$/.test(t)) return parseInt(t.slice(2), 8);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(t)) return Number(t);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(t)) return t[0] === '-' ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(t)) return NaN;
  return t;
}

interface FlowPos { s: string; i: number; no: number }

function skipWs(p: FlowPos): void { while (p.i < p.s.length && p.s[p.i] === ' ') p.i++; }

function flowValue(p: FlowPos): unknown {
  skipWs(p);
  const c = p.s[p.i];
  if (c === '[') {
    p.i++;
    const out: unknown[] = [];
    for (;;) {
      skipWs(p);
      if (p.s[p.i] === ']') { p.i++; return out; }
      out.push(flowValue(p));
      skipWs(p);
      if (p.s[p.i] === ',') { p.i++; continue; }
      if (p.s[p.i] === ']') { p.i++; return out; }
      throw new YamlError(p.no, p.i >= p.s.length ? 'unterminated flow list (multi-line flow collections are not supported)' : `expected "," or "]" in flow list at "${clip(p.s.slice(p.i))}"`);
    }
  }
  if (c === '{') {
    p.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      skipWs(p);
      if (p.s[p.i] === '}') { p.i++; return out; }
      const k = flowScalar(p, true);
      skipWs(p);
      if (p.s[p.i] !== ':') throw new YamlError(p.no, `expected ":" after key "${String(k)}" in flow map`);
      p.i++;
      const key = String(k);
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new YamlError(p.no, `duplicate key "${key}"`);
      out[key] = flowValue(p);
      skipWs(p);
      if (p.s[p.i] === ',') { p.i++; continue; }
      if (p.s[p.i] === '}') { p.i++; return out; }
      throw new YamlError(p.no, p.i >= p.s.length ? 'unterminated flow map (multi-line flow collections are not supported)' : `expected "," or "}" in flow map at "${clip(p.s.slice(p.i))}"`);
    }
  }
  return flowScalar(p, false);
}

function flowScalar(p: FlowPos, isKey: boolean): unknown {
  skipWs(p);
  const c = p.s[p.i];
  if (c === '"' || c === "'") {
    const end = quotedEnd(p.s, p.i, p.no);
    const v = quoted(p.s.slice(p.i, end), p.no);
    p.i = end;
    return v;
  }
  const start = p.i;
  while (p.i < p.s.length) {
    const ch = p.s[p.i];
    if (ch === ',' || ch === ']' || ch === '}') break;
    if (ch === ':' && (isKey || p.s[p.i + 1] === ' ' || p.s[p.i + 1] === undefined)) break;
    if (ch === '[' || ch === '{') throw new YamlError(p.no, `unexpected "${ch}" in flow collection`);
    p.i++;
  }
  const t = p.s.slice(start, p.i).trim();
  if (!t) throw new YamlError(p.no, 'empty value in flow collection');
  return plain(t, p.no);
}

// ---- writer ----

/** Serialises plain data (maps, lists, scalars) as block YAML that parseYaml reads back. */
export function toYaml(v: unknown): string {
  const out: string[] = [];
  emit(v, 0, out);
  return out.join('\n') + '\n';
}

function emit(v: unknown, indent: number, out: string[]): void {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (!v.length) { out.push(`${pad}[]`); return; }
    for (const item of v) {
      if (isComplex(item)) {
        const sub: string[] = [];
        emit(item, indent + 2, sub);
        out.push(`${pad}- ${sub[0].slice(indent + 2)}`, ...sub.slice(1));
      } else out.push(`${pad}- ${scalarText(item)}`);
    }
    return;
  }
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (!entries.length) { out.push(`${pad}{}`); return; }
    for (const [k, x] of entries) {
      const key = scalarText(k);
      if (isComplex(x)) {
        out.push(`${pad}${key}:`);
        emit(x, Array.isArray(x) ? indent : indent + 2, out);
      } else out.push(`${pad}${key}: ${scalarText(x)}`);
    }
    return;
  }
  out.push(pad + scalarText(v));
}

function isComplex(x: unknown): boolean {
  return Array.isArray(x) ? x.length > 0 : !!x && typeof x === 'object' && Object.keys(x).some((k) => (x as any)[k] !== undefined);
}

function scalarText(x: unknown): string {
  if (x === null || x === undefined) return 'null';
  if (Array.isArray(x)) return '[]';
  if (typeof x === 'object') return '{}';
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') return String(x);
  const s = String(x);
  let safe = s.length > 0 && !/^[\s\-?:,\[\]{}#&*!|>'"%@`]/.test(s) && !/\s$/.test(s) &&
    !s.includes(': ') && !s.includes(' #') && !s.endsWith(':') && !/[\n\t\\]/.test(s);
  if (safe) {
    try { safe = plain(s, 0) === s; } catch { safe = false; }
  }
  if (s.startsWith('- ') || s === '-') safe = false;
  return safe ? s : JSON.stringify(s);
}
