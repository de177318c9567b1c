// Calico-style label selectors over a label map: parsing to a small AST and evaluation.
// Grammar: "" | "all()" | expr; expr := or; or := and ("||" and)*; and := unary ("&&" unary)*;
// unary := "!" unary | "(" expr ")" | "has(" key ")" | key ("=="|"!=") str | key ["not"] "in" "{" str,* "}".
// Used by IPPool.nodeSelector (IPAM) and BGPPeer node/peer selectors (agent).

export type Labels = Record<string, string>;

export type Selector =
  | { op: 'all' }
  | { op: 'has'; key: string }
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'not'; arg: Selector }
  | { op: 'and' | 'or'; args: Selector[] };

/** A selector that does not parse; `position` is the 0-based character offset of the problem. */
export class SelectorError extends Error {
  constructor(readonly selector: string, readonly position: number, reason: string) {
    super(`selector "${selector}": ${reason} at position ${position}`);
    this.name = 'SelectorError';
  }
}

const KEY_RE = /[A-Za-z0-9_./-]/;

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): Selector {
    this.ws();
    if (this.i >= this.s.length) return { op: 'all' };
    const e = this.or();
    this.ws();
    if (this.i < this.s.length) this.fail(`unexpected "${this.s[this.i]}"`);
    return e;
  }

  private fail(reason: string, at = this.i): never { throw new SelectorError(this.s, at, reason); }
  private ws(): void { while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++; }
  private peek(t: string): boolean { this.ws(); return this.s.startsWith(t, this.i); }
  private eat(t: string): boolean { if (this.peek(t)) { this.i += t.length; return true; } return false; }
  private expect(t: string): void { if (!this.eat(t)) this.fail(`expected "${t}"`); }

  private or(): Selector {
    const args = [this.and()];
    while (this.eat('||')) args.push(this.and());
    return args.length === 1 ? args[0] : { op: 'or', args };
  }

  private and(): Selector {
    const args = [this.unary()];
    while (this.eat('&&')) args.push(this.unary());
    return args.length === 1 ? args[0] : { op: 'and', args };
  }

  private unary(): Selector {
    this.ws();
    if (this.eat('!') ) {
      if (this.peek('=')) this.fail('unexpected "="', this.i);
      return { op: 'not', arg: this.unary() };
    }
    if (this.eat('(')) {
      const e = this.or();
      this.expect(')');
      return e;
    }
    const at = this.i;
    const word = this.key();
    if ((word === 'all' || word === 'has') && this.peek('(')) {
      this.expect('(');
      if (word === 'all') { this.expect(')'); return { op: 'all' }; }
      const key = this.key();
      this.expect(')');
      return { op: 'has', key };
    }
    if (this.eat('==')) return { op: 'eq', key: word, value: this.str() };
    if (this.eat('!=')) return { op: 'ne', key: word, value: this.str() };
    this.ws();
    const kwAt = this.i;
    if (this.eat('not')) {
      this.ws();
      if (!this.eat('in')) this.fail('expected "in"');
      return { op: 'notin', key: word, values: this.set() };
    }
    if (this.eat('in')) return { op: 'in', key: word, values: this.set() };
    if (kwAt >= this.s.length) this.fail(`expected an operator after "${word}"`, kwAt);
    return this.fail(`expected "==", "!=", "in" or "not in" after "${word}"`, kwAt === at ? at : kwAt);
  }

  private key(): string {
    this.ws();
    const start = this.i;
    while (this.i < this.s.length && KEY_RE.test(this.s[this.i])) this.i++;
    if (this.i === start) this.fail(this.i >= this.s.length ? 'unexpected end' : `unexpected "${this.s[this.i]}"`);
    return this.s.slice(start, this.i);
  }

  private str(): string {
    this.ws();
    const q = this.s[this.i];
    if (q !== "'" && q !== '"') this.fail('expected a quoted string');
    const end = this.s.indexOf(q, this.i + 1);
    if (end < 0) this.fail('unterminated string');
    const v = this.s.slice(this.i + 1, end);
    this.i = end + 1;
    return v;
  }

  private set(): string[] {
    this.expect('{');
    const out: string[] = [];
    if (this.eat('}')) return out;
    do out.push(this.str()); while (this.eat(','));
    this.expect('}');
    return out;
  }
}

const cache = new Map<string, Selector>();

/** Parses a selector expression; throws SelectorError naming the position. */
export function parseSelector(text: string): Selector {
  const hit = cache.get(text);
  if (hit) return hit;
  const sel = new Parser(text ?? '').parse();
  if (cache.size > 256) cache.clear();
  cache.set(text, sel);
  return sel;
}

/** Evaluates a parsed selector against labels. */
export function evaluate(sel: Selector, labels: Labels): boolean {
  switch (sel.op) {
    case 'all': return true;
    case 'has': return Object.prototype.hasOwnProperty.call(labels, sel.key);
    case 'eq': return labels[sel.key] === sel.value;
    case 'ne': return labels[sel.key] !== sel.value;
    case 'in': return Object.prototype.hasOwnProperty.call(labels, sel.key) && sel.values.includes(labels[sel.key]);
    case 'notin': return !Object.prototype.hasOwnProperty.call(labels, sel.key) || !sel.values.includes(labels[sel.key]);
    case 'not': return !evaluate(sel.arg, labels);
    case 'and': return sel.args.every((a) => evaluate(a, labels));
    case 'or': return sel.args.some((a) => evaluate(a, labels));
  }
}

/** True when `selector` (text) selects `labels`; throws SelectorError if it does not parse. */
export function selectorMatches(selector: string | undefined, labels: Labels): boolean {
  return evaluate(parseSelector(selector ?? ''), labels);
}
