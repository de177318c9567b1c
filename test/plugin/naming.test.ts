// Host-side veth names: the JS SHA-1 (kept off node:crypto for start-up) must equal the real
// one for ASCII (its fast path) and for any other UTF-8 input.
import t from 'tap';
import { createHash } from 'node:crypto';
import { hostVethName, sha1Hex } from '../../lib/dataplane/naming';

t.test('sha1Hex equals node:crypto SHA-1', async (t) => {
  const inputs = ['', 'a', 'abc', 'default.nginx-7d9f', 'x'.repeat(55), 'y'.repeat(56), 'z'.repeat(64), 'w'.repeat(1000),
    'caf\u00e9.pod', '\u7f51\u7edc.\u5bb9\u5668', 'emoji.\u{1f600}', 'ctl\u0000\u007f'];
  for (const s of inputs) t.equal(sha1Hex(s), createHash('sha1').update(s, 'utf8').digest('hex'), JSON.stringify(s).slice(0, 40));
});

t.test('host veth names', async (t) => {
  const n = hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c1' });
  t.equal(n, 'bri' + createHash('sha1').update('default.web-0').digest('hex').slice(0, 11));
  t.equal(n.length, 14);
  t.equal(hostVethName({ containerId: 'abc' }), 'bri' + createHash('sha1').update('abc').digest('hex').slice(0, 11), 'no pod: container id');
  t.not(hostVethName({ namespace: 'default', pod: 'web-0', containerId: 'c1', ifname: 'net1' }), n, 'second interface differs');
});
