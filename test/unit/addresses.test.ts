import test from 'ava';
import { inetAton, parseCidr, parseEndpoint, parseHostAddress, parseIPv4, parseIPv6 } from '../../tasks/addresses.ts';

test('IPv4 is four decimal numbers 0-255 without leading zeros', (t) => {
  const cases: [string, string | undefined][] = [
    ['10.0.2.1', '10.0.2.1'], ['0.0.0.0', '0.0.0.0'], ['255.255.255.255', '255.255.255.255'], ['192.0.2.100', '192.0.2.100'],
    ['010.0.2.1', undefined], ['10.0.2.01', undefined], ['0xa.0.2.1', undefined], ['10.2', undefined], ['167772672', undefined],
    ['10.0.2.256', undefined], ['10.0.2', undefined], ['10.0.2.1.', undefined], ['1.2.3.4.5', undefined], [' 10.0.2.1', undefined],
    ['10.0.2.-1', undefined], ['10.0.2.1e0', undefined], ['', undefined],
  ];
  for (const [text, want] of cases) t.is(parseIPv4(text), want, text);
});

test('IPv6 is accepted when valid and written as RFC 5952 says: compressed, lowercase', (t) => {
  const cases: [string, string | undefined][] = [
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['::', '::'], ['::1', '::1'], ['1::', '1::'], ['fe80::', 'fe80::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['1:2:3:4:5:6:7:8:9', undefined], ['1:2:3:4:5:6:7', undefined], ['1:2:3:4:5:6:7:8::', undefined],
    ['1:::2', undefined], ['1::2::3', undefined], [':1:2:3:4:5:6:7', undefined], ['12345::1', undefined],
    ['::ffff:010.0.2.1', undefined], ['::192.0.2.1:1', undefined], ['fe80::1%eth0', undefined], ['[::1]', undefined], ['g::1', undefined],
  ];
  for (const [text, want] of cases) t.is(parseIPv6(text), want, text);
});

test('what inet_aton makes of the numeric forms Postgres would accept', (t) => {
  const cases: [string, string | undefined][] = [
    ['010.0.2.0', '8.0.2.0'], ['0xa.0.2.0', '10.0.2.0'], ['10.2', '10.0.0.2'], ['167772672', '10.0.2.0'],
    ['10.0.512', '10.0.2.0'], ['0x0A000201', '10.0.2.1'], ['09.0.0.1', undefined], ['1.2.3.4.5', undefined], ['256.0.0.1', undefined],
  ];
  for (const [text, want] of cases) t.is(inetAton(text), want, text);
});

test('a CIDR is canonical, in range, and has no host bits (the refusal says both ways to write it)', (t) => {
  const accepted: [string, string][] = [
    ['10.0.2.0/24', '10.0.2.0/24'], ['0.0.0.0/0', '0.0.0.0/0'], ['192.0.2.7/32', '192.0.2.7/32'], ['10.0.0.0/8', '10.0.0.0/8'],
    ['172.16.0.0/12', '172.16.0.0/12'], ['2001:DB8::/32', '2001:db8::/32'], ['fd00:0:0:0::/64', 'fd00::/64'], ['::/0', '::/0'],
    ['2001:db8::1/128', '2001:db8::1/128'],
  ];
  for (const [text, want] of accepted) t.deepEqual(parseCidr(text), { ok: true, value: want }, text);
  const refused: [string, RegExp][] = [
    ['010.0.2.0/24', /inet_aton, which Postgres and libpq use, would read it as 8\.0\.2\.0/],
    ['0xa.0.2.0/24', /would read it as 10\.0\.2\.0/],
    ['10.2/16', /would read it as 10\.0\.0\.2/],
    ['167772672/24', /would read it as 10\.0\.2\.0/],
    ['10.0.2.0/024', /prefix length must be a number from 0 to 32 without leading zeros/],
    ['10.0.2.0/33', /from 0 to 32/],
    ['2001:db8::/129', /from 0 to 128/],
    ['10.0.2.0/', /prefix length/],
    ['10.0.2.0/+24', /prefix length/],
    ['10.0.2.5/24', /host bits set; write 10\.0\.2\.0\/24 for the subnet, or 10\.0\.2\.5\/32 for that one host/],
    ['2001:db8::1/64', /write 2001:db8::\/64 for the subnet, or 2001:db8::1\/128/],
    ['10.0.2.0', /not a CIDR \(address\/prefix/],
    ['10.0.2.0/24/1', /not a CIDR/],
    ['webnet/24', /"webnet" is not an IPv4 or IPv6 address/],
    ['10.0.0.300/24', /looks like an IPv4 address/],
  ];
  for (const [text, reason] of refused) {
    const r = parseCidr(text);
    t.false(r.ok, text);
    if (!r.ok) t.regex(r.reason, reason, text);
  }
});

test('a host address is a canonical IP or a host name; numeric-looking text that is neither is refused', (t) => {
  const accepted: [string, string, string][] = [
    ['10.0.1.11', 'ipv4', '10.0.1.11'], ['pem-db1.example.com', 'name', 'pem-db1.example.com'], ['DB1', 'name', 'DB1'],
    ['2001:DB8::0:11', 'ipv6', '2001:db8::11'], ['1e100.net', 'name', '1e100.net'], ['0x1.example', 'name', '0x1.example'],
    ['deadbeef', 'name', 'deadbeef'], ['localhost', 'name', 'localhost'],
  ];
  for (const [text, kind, canonical] of accepted) t.deepEqual(parseHostAddress(text), { ok: true, value: { kind, text: canonical } }, text);
  const refused: [string, RegExp][] = [
    ['010.0.1.11', /would read it as 8\.0\.1\.11/], ['0xa.0.1.11', /as 10\.0\.1\.11/], ['167772672', /as 10\.0\.2\.0/],
    ['10.1', /as 10\.0\.0\.1/], ['10.0.1.256', /looks like an IPv4 address/], ['db.1', /looks like an IPv4 address/],
    ['fe80::1%eth0', /IPv6 zone/], ['2001:db8::g', /not a valid IPv6 address/], ['[::1]', /not a valid IPv6/],
    ['db_1.example', /not a host name/], ['-db.example', /not a host name/], ['db..example', /not a host name/],
    ['db.example.', /not a host name/], ['db example', /not a host name/], ['', /not a host name/], [`${'a'.repeat(64)}.example`, /not a host name/],
  ];
  for (const [text, reason] of refused) {
    const r = parseHostAddress(text);
    t.false(r.ok, text);
    if (!r.ok) t.regex(r.reason, reason, text);
  }
});

test('pem_db_endpoint is host:port, an IPv6 host in brackets', (t) => {
  const accepted: [string, { host: string; port: number }][] = [
    ['lb.example.com:6432', { host: 'lb.example.com', port: 6432 }],
    ['10.0.0.5:5432', { host: '10.0.0.5', port: 5432 }],
    ['[2001:DB8::5]:5432', { host: '2001:db8::5', port: 5432 }],
  ];
  for (const [text, want] of accepted) t.deepEqual(parseEndpoint(text), { ok: true, value: want }, text);
  const refused: [string, RegExp][] = [
    ['lb.example.com', /not host:port/], ['2001:db8::5:5432', /not host:port/], ['lb:0', /1 to 65535/], ['lb:65536', /1 to 65535/],
    ['lb:05432', /without leading zeros/], ['010.0.0.5:5432', /would read it as 8\.0\.0\.5/], ['[10.0.0.5]:5432', /not a valid IPv6/],
    ['lb:x', /port must be/],
  ];
  for (const [text, reason] of refused) {
    const r = parseEndpoint(text);
    t.false(r.ok, text);
    if (!r.ok) t.regex(r.reason, reason, text);
  }
});
