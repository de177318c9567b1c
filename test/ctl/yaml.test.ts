// The YAML subset reader and writer: table-driven documents, malformed input with the line
// the error names, and write → read round trips of resources.
import t from 'tap';
import { YamlError, parseYaml, parseYamlDocuments, toYaml } from '../../lib/ctl/yaml';

t.test('parses', async (t) => {
  const cases: { name: string; input: string; want: unknown }[] = [
    { name: 'empty', input: '', want: null },
    { name: 'scalars by the 1.2 core schema', input: 'a: 1\nb: -2\nc: 1.5\nd: true\ne: False\nf: null\ng: ~\nh: off\ni: yes\nj: 0x1f\nk:\n', want: { a: 1, b: -2, c: 1.5, d: true, e: false, f: null, g: null, h: 'off', i: 'yes', j: 31, k: null } },
    { name: 'strings that look like other things', input: 'cidr: 10.244.0.0/16\nv6: fd00::1\nsel: all()\nrv: "1"\nq: \'it\'\'s\'\nurl: http://a:2379\n', want: { cidr: '10.244.0.0/16', v6: 'fd00::1', sel: 'all()', rv: '1', q: "it's", url: 'http://a:2379' } },
    { name: 'double-quoted escapes', input: 'a: "x\\ny\\t\\"z\\" \\u00e9"\n', want: { a: 'x\ny\t"z" é' } },
    { name: 'nested maps', input: 'metadata:\n  name: p\n  labels:\n    a: b\nspec:\n  cidr: 10.0.0.0/8\n', want: { metadata: { name: 'p', labels: { a: 'b' } }, spec: { cidr: '10.0.0.0/8' } } },
    { name: 'comments everywhere', input: '# head\na: 1 # trailing\n\n  # indented comment\nb: "x # not a comment"\nc: x#y\n', want: { a: 1, b: 'x # not a comment', c: 'x#y' } },
    { name: 'lists: indented and not', input: 'a:\n  - 1\n  - two\nb:\n- x\n- y\n', want: { a: [1, 'two'], b: ['x', 'y'] } },
    { name: 'list of maps', input: 'items:\n  - name: a\n    v: 1\n  - name: b\n    v: 2\n', want: { items: [{ name: 'a', v: 1 }, { name: 'b', v: 2 }] } },
    { name: 'nested lists', input: '- - 1\n  - 2\n- - 3\n', want: [[1, 2], [3]] },
    { name: 'flow collections', input: 'a: [1, "b", c]\nb: {x: 1, y: [2, 3]}\nc: []\nd: {}\n', want: { a: [1, 'b', 'c'], b: { x: 1, y: [2, 3] }, c: [], d: {} } },
    { name: 'literal block', input: 'a: |\n  line 1\n    indented\n  line 3\nb: 2\n', want: { a: 'line 1\n  indented\nline 3\n', b: 2 } },
    { name: 'folded block, stripped', input: 'a: >-\n  one\n  two\n\n  three\n', want: { a: 'one two\nthree' } },
    { name: 'quoted keys', input: '"a b": 1\n\'c\': 2\n', want: { 'a b': 1, c: 2 } },
    { name: 'CRLF and BOM', input: '\uFEFFa: 1\r\nb: 2\r\n', want: { a: 1, b: 2 } },
    { name: 'selector with quotes', input: "peerSelector: route-reflector == 'true'\n", want: { peerSelector: "route-reflector == 'true'" } },
  ];
  for (const c of cases) t.same(parseYaml(c.input), c.want, c.name);
});

t.test('multiple documents', async (t) => {
  const docs = parseYamlDocuments('# only a comment\n---\na: 1\n---\n# empty\n---\nb: 2\n...\n');
  t.same(docs.map((d) => d.value), [{ a: 1 }, { b: 2 }]);
  t.same(docs.map((d) => d.line), [3, 7]);
});

t.test('malformed input names the line', async (t) => {
  const cases: { name: string; input: string; line: number }[] = [
    { name: 'bad indentation', input: 'a:\n  b: 1\n   c: 2\n', line: 3 },
    { name: 'tab indentation', input: 'a:\n\tb: 1\n', line: 2 },
    { name: 'unterminated quote', input: 'a: 1\nb: "abc\n', line: 2 },
    { name: 'duplicate key', input: 'a: 1\nb: 2\na: 3\n', line: 3 },
    { name: 'not key: value', input: 'a: 1\njust text\n', line: 2 },
    { name: 'unterminated flow', input: 'a: [1, 2\n', line: 1 },
    { name: 'anchor', input: 'a: &x 1\n', line: 1 },
    { name: 'list item among keys', input: 'a: 1\n- b\n', line: 2 },
    { name: 'bad escape', input: 'a: "\\q"\n', line: 1 },
    { name: 'multi-line plain scalar', input: '- a\n  b\n', line: 2 },
  ];
  for (const c of cases) {
    try {
      parseYaml(c.input);
      t.fail(`${c.name}: no error`);
    } catch (err) {
      t.type(err, YamlError, c.name);
      t.equal((err as YamlError).line, c.line, `${c.name}: line`);
    }
  }
});

t.test('write then read gives the same value', async (t) => {
  const values: unknown[] = [
    { apiVersion: 'brindle.dev/v1', kind: 'IPPool', metadata: { name: 'p', labels: { 'a/b': 'true', n: '1' } }, spec: { cidr: '10.244.0.0/16', blockSize: 26, natOutgoing: false, nodeSelector: "k == 'v'" } },
    { s: ['- x', ': y', '#z', 'a # b', '', ' lead', 'null', '1', 'true', 'off', 'x: y', 'multi\nline', '"q"', "'s'", '{', '[a]', '*ref', '&a', '!t', '%d', '@a', 'fd00::', 'a:'] },
    { nested: [{ a: 1, b: [1, 2, { c: [] }] }, [1, [2]], {}], empty: {}, list: [] },
  ];
  for (const v of values) t.same(parseYaml(toYaml(v)), v, toYaml(v));
});
