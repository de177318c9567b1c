import t from 'tap';
import { parseIp, formatIp, parseCidr, formatCidr, tryParseCidr, cidrContains, cidrOverlaps, ipToBytes, ipFromBytes } from '../../lib/ip';

const roundTrip = [
  { name: 'v4', input: '10.244.1.7', want: '10.244.1.7' },
  { name: 'v6 compress', input: 'fd00:10:244:0:0:0:0:1', want: 'fd00:10:244::1' },
  { name: 'v6 upper', input: 'FE80::EE:EEFF:FEEE:EEEE', want: 'fe80::ee:eeff:feee:eeee' },
  { name: 'v6 embedded v4', input: '::ffff:10.0.0.1', want: '::ffff:a00:1' },
  { name: 'v6 all zero', input: '::', want: '::' },
  { name: 'v6 single zero not compressed', input: '1:0:2:3:4:5:6:7', want: '1:0:2:3:4:5:6:7' },
];
for (const c of roundTrip) t.equal(formatIp(parseIp(c.input)), c.want, c.name);

const bad = ['10.0.0', '10.0.0.256', '01.2.3.4', '1::2::3', 'x', '1:2:3:4:5:6:7:8:9', ''];
for (const b of bad) t.throws(() => parseIp(b), TypeError, `rejects ${JSON.stringify(b)}`);

t.equal(formatCidr(parseCidr('10.244.0.0/16')), '10.244.0.0/16');
t.equal(tryParseCidr('10.244.0.1/16'), undefined, 'host bits rejected');
t.ok(tryParseCidr('10.244.0.1/16', { loose: true }), 'host bits kept when loose');
t.equal(tryParseCidr('10.0.0.0/33'), undefined, 'length past 32');
t.ok(cidrContains(parseCidr('10.244.0.0/16'), parseIp('10.244.3.4')));
t.notOk(cidrContains(parseCidr('10.244.0.0/16'), parseIp('10.245.0.1')));
t.ok(cidrOverlaps(parseCidr('10.0.0.0/8'), parseCidr('10.244.0.0/16')));
t.notOk(cidrOverlaps(parseCidr('10.0.0.0/16'), parseCidr('10.1.0.0/16')));
t.same([...ipToBytes(parseIp('1.2.3.4'))], [1, 2, 3, 4]);
t.equal(formatIp(ipFromBytes(ipToBytes(parseIp('fd00::1')))), 'fd00::1');
