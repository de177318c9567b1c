import t from 'tap';
import { parseSelector, selectorMatches, SelectorError } from '../../lib/ipam/selector';

const labels = { zone: 'a', rack: 'r1', 'kubernetes.io/os': 'linux' };

t.test('evaluation table', async (t) => {
  const cases: { sel: string; want: boolean }[] = [
    { sel: '', want: true },
    { sel: 'all()', want: true },
    { sel: "zone == 'a'", want: true },
    { sel: 'zone == "b"', want: false },
    { sel: "zone != 'b'", want: true },
    { sel: "missing != 'b'", want: true },
    { sel: 'has(zone)', want: true },
    { sel: '!has(zone)', want: false },
    { sel: '!has(missing)', want: true },
    { sel: "zone in {'a','b'}", want: true },
    { sel: "zone in {}", want: false },
    { sel: "missing in {'a'}", want: false },
    { sel: "zone not in {'a','b'}", want: false },
    { sel: "missing not in {'a'}", want: true },
    { sel: "zone == 'a' && rack == 'r1'", want: true },
    { sel: "zone == 'a' && rack == 'r2'", want: false },
    { sel: "zone == 'b' || rack == 'r1'", want: true },
    { sel: "(zone == 'b' || rack == 'r1') && has(kubernetes.io/os)", want: true },
    { sel: "!(zone == 'a')", want: false },
    { sel: "kubernetes.io/os == 'linux'", want: true },
    { sel: "zone == 'b' || zone == 'c' || (rack in {'r1'} && !has(x))", want: true },
  ];
  for (const c of cases) t.equal(selectorMatches(c.sel, labels), c.want, c.sel);
});

t.test('errors name the position', async (t) => {
  const cases: { sel: string; pos: number }[] = [
    { sel: "zone = 'a'", pos: 5 },
    { sel: "zone == a", pos: 8 },
    { sel: "zone == 'a' &&", pos: 14 },
    { sel: "(zone == 'a'", pos: 12 },
    { sel: "zone in {'a'", pos: 12 },
    { sel: "zone == 'a' extra", pos: 12 },
    { sel: "has(zone", pos: 8 },
    { sel: "zone == 'a", pos: 8 },
    { sel: 'all(', pos: 4 },
  ];
  for (const c of cases) {
    try {
      parseSelector(c.sel);
      t.fail(`${c.sel}: parsed`);
    } catch (err) {
      t.ok(err instanceof SelectorError, c.sel);
      t.equal((err as SelectorError).position, c.pos, `${c.sel}: position`);
    }
  }
});
