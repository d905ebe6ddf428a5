import test from 'ava';
import { readFileSync } from 'node:fs';
import { HbaParseError, parseHba, type HbaEntry, type HbaRule } from '../../tasks/pg-hba/parse.ts';
import { tokenizeLine } from '../../tasks/pg-hba/tokenize.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/pg-hba/${name}`, import.meta.url), 'utf8');

const onlyRule = (text: string): HbaRule => {
  const entries = parseHba(text);
  if (entries.length !== 1 || entries[0]!.kind !== 'rule') throw new Error(`expected one rule, got ${JSON.stringify(entries)}`);
  return entries[0]!;
};

const names = (tokens: { value: string; quoted: boolean; file: boolean }[]): string[] =>
  tokens.map((t) => (t.file ? '@' : '') + (t.quoted ? `"${t.value}"` : t.value));

// Each line as Postgres reads it: fields, quoting (an initial quote makes a keyword literal),
// address and mask as bytes.
const rules: { line: string; want: Partial<Record<keyof HbaRule, unknown>> & { dbs?: string[]; roles?: string[] } }[] = [
  { line: 'local all all peer', want: { type: 'local', dbs: ['all'], roles: ['all'], addr: undefined, method: 'peer' } },
  {
    line: 'host "all",x a"ll" 10.1.2.5 255.255.0.0 md5',
    want: { dbs: ['"all"', 'x'], roles: ['all'], mask: '255.255.0.0', addr: { kind: 'ip', family: 'ipv4', bytes: [10, 1, 2, 5], mask: [255, 255, 0, 0] } },
  },
  {
    line: 'hostssl db u 10.1.2.5/20 scram-sha-256 clientcert=verify-full',
    want: { type: 'hostssl', addr: { kind: 'ip', family: 'ipv4', bytes: [10, 1, 2, 5], mask: [255, 255, 240, 0] }, options: ['clientcert=verify-full'] },
  },
  { line: 'host db @users.txt ::1/128 md5', want: { roles: ['@users.txt'] } },
  { line: 'host db "@users.txt" ::1/128 md5', want: { roles: ['"@users.txt"'] } },
  { line: 'host db u "all" md5', want: { addr: { kind: 'hostname', name: 'all' } } },
  { line: 'host db u all md5', want: { addr: { kind: 'all' } } },
  { line: 'host db u samehost md5', want: { addr: { kind: 'samehost' } } },
  { line: 'host db u samenet md5', want: { addr: { kind: 'samenet' } } },
  { line: 'host db u .example.com md5', want: { addr: { kind: 'hostname', name: '.example.com' } } },
  { line: 'host db u 10.1.2.300 md5', want: { addr: { kind: 'hostname', name: '10.1.2.300' }, method: 'md5' } },
  { line: 'host db u @hosts md5', want: { addr: { kind: 'file' }, method: 'md5' } },
  { line: 'host "my db" "we""ird" 10.0.0.0/8 md5', want: { dbs: ['"my db"'], roles: ['"we"ird"'] } },
  { line: 'host\tdb\tu\t10.0.0.0/8\tmd5\t# comment, "with quotes', want: { method: 'md5', options: [] } },
  { line: 'host db u 10.0.0.0/8 md5#comment', want: { method: 'md5', options: [] } },
  { line: 'host db u 10.1 255.255.0.0 md5', want: { addr: { kind: 'ip', family: 'ipv4', bytes: [10, 0, 0, 1], mask: [255, 255, 0, 0] } } },
  {
    line: 'host db u fe80::1%eth0/64 md5',
    want: { addr: { kind: 'ip', family: 'ipv6', bytes: [254, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], mask: [255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0] } },
  },
  { line: 'host db u ::/0 reject', want: { addr: { kind: 'ip', family: 'ipv6', bytes: Array(16).fill(0), mask: Array(16).fill(0) } } },
  { line: 'host db u 10.0.0.0/8 some-future-method', want: { method: 'some-future-method' } },
  { line: 'hostnogssenc db,"db 2" u,+grp 10.0.0.0/8 md5', want: { type: 'hostnogssenc', dbs: ['db', '"db 2"'], roles: ['u', '+grp'] } },
];

for (const { line, want } of rules) {
  test(`reads ${JSON.stringify(line)} as Postgres does`, (t) => {
    const rule = onlyRule(line + '\n');
    const { dbs, roles, ...fields } = want;
    if (dbs) t.deepEqual(names(rule.databases), dbs);
    if (roles) t.deepEqual(names(rule.users), roles);
    for (const [key, value] of Object.entries(fields)) t.deepEqual(rule[key as keyof HbaRule], value, key);
  });
}

// hba.c: "a, b" is one field of two tokens; "a ,b" is two fields.
const tokenizations: [string, string[][]][] = [
  ['a, b c', [['a', 'b'], ['c']]],
  ['a ,b c', [['a'], ['b'], ['c']]],
  ['a,,b', [['a', 'b']]],
  ['"x,y" "a b"', [['x,y'], ['a b']]],
  ['"" x', [[''], ['x']]],
  ['"#not a comment" # a comment', [['#not a comment']]],
];
for (const [line, fields] of tokenizations) {
  test(`splits ${JSON.stringify(line)} into fields and comma lists like Postgres`, (t) => {
    t.deepEqual(tokenizeLine(line).fields.map((f) => f.map((tok) => tok.value)), fields);
  });
}

test('keeps line numbers, offsets and the raw text of each record, comments and blank lines skipped', (t) => {
  const text = '# header\n\nlocal all all peer\r\n  host all all 0.0.0.0/0 reject  \n';
  const entries = parseHba(text);
  t.deepEqual(
    entries.map((e) => [e.line, e.offset, e.raw]),
    [
      [3, 10, 'local all all peer'],
      [4, 30, '  host all all 0.0.0.0/0 reject  '],
    ],
  );
});

test('a record continued with a backslash is one record numbered by its first line', (t) => {
  const text = '# x\nhostssl pem pem_user,\\\n      pem_agent 10.0.0.0/8 scram-sha-256\nhost "d\\\nb" u 10.0.0.0/8 md5\n';
  const entries = parseHba(text) as HbaRule[];
  t.deepEqual(entries.map((e) => e.line), [2, 4]);
  t.deepEqual(names(entries[0]!.users), ['pem_user', 'pem_agent']);
  t.is(entries[0]!.raw, 'hostssl pem pem_user,\\\n      pem_agent 10.0.0.0/8 scram-sha-256');
  t.deepEqual(names(entries[1]!.databases), ['"db"']);
});

test('a comment ending in a backslash swallows the next line (Postgres 14+), not before 14', (t) => {
  const text = '# see ticket \\\nhost all all 0.0.0.0/0 reject\n';
  t.deepEqual(parseHba(text), []);
  t.deepEqual(parseHba(text, { serverMajor: 13 }).map((e) => e.line), [2]);
});

test('an empty line after a backslash ends the record, as in hba.c', (t) => {
  const entries = parseHba('host db u 10.0.0.0/8 md5\n\\\n\nhost db2 u 10.0.0.0/8 md5');
  t.deepEqual(entries.map((e) => e.line), [1, 4]);
});

test('include directives are entries of their own on Postgres 16+', (t) => {
  const entries = parseHba('include a.conf\ninclude_if_exists "b c.conf"\ninclude_dir conf.d\n');
  t.deepEqual(
    entries.map((e: HbaEntry) => (e.kind === 'include' ? [e.line, e.directive, e.path] : e.kind)),
    [
      [1, 'include', 'a.conf'],
      [2, 'include_if_exists', 'b c.conf'],
      [3, 'include_dir', 'conf.d'],
    ],
  );
});

test('include is an invalid connection type before Postgres 16', (t) => {
  const error = t.throws(() => parseHba('local all all peer\ninclude a.conf\n', { serverMajor: 15 }), { instanceOf: HbaParseError });
  t.is(error?.line, 2);
  t.regex(error?.message ?? '', /invalid connection type "include"/);
});

test('a UTF-8 byte order mark does not hide the first record', (t) => {
  const entries = parseHba('\uFEFFhost all all 0.0.0.0/0 reject\n');
  t.deepEqual(entries.map((e) => [e.line, e.offset, e.raw]), [[1, 1, 'host all all 0.0.0.0/0 reject']]);
});

// Lines Postgres refuses to load, reported with their line number.
const errors: [string, RegExp][] = [
  ['host "db u 10.0.0.0/8 md5', /unterminated quoted string/],
  ['host db', /end-of-line before role specification/],
  ['host db u', /end-of-line before IP address specification/],
  ['local db u', /end-of-line before authentication method/],
  ['host db u 10.0.0.0/33 md5', /invalid CIDR mask in address "10.0.0.0\/33"/],
  ['host db u ::/129 md5', /invalid CIDR mask/],
  ['host db u 10.0.0.0/x md5', /invalid CIDR mask/],
  ['host db u foo/8 md5', /specifying both host name and CIDR mask is invalid/],
  ['host db u 10.0.0.0 md5', /invalid IP mask "md5"/],
  ['host db u 10.0.0.0', /end-of-line before netmask specification/],
  ['host db u 10.0.0.0 ffff:: md5', /IP address and mask do not match/],
  ['hots db u 10.0.0.0/8 md5', /invalid connection type "hots"/],
  ['host,local db u 10.0.0.0/8 md5', /multiple values specified for connection type/],
  ['host db u 10.0.0.0/8,10.1.0.0/16 md5', /multiple values specified for host address/],
  ['host db u 10.0.0.0/8 md5,trust', /multiple values specified for authentication type/],
];
for (const [line, reason] of errors) {
  test(`refuses ${JSON.stringify(line)} with its line number`, (t) => {
    const error = t.throws(() => parseHba(`# first\nlocal all all peer\n${line}\n`), { instanceOf: HbaParseError });
    t.is(error?.line, 3);
    t.regex(error?.message ?? '', reason);
  });
}

test('a parse error never repeats the options of the line (they can hold passwords)', (t) => {
  const error = t.throws(() => parseHba('host db u 10.0.0.0/33 ldap ldapbindpasswd=s3cret\n'), { instanceOf: HbaParseError });
  t.false(error?.message.includes('s3cret'));
});

test('reads the Debian default file: local lines, loopback scram lines, replication', (t) => {
  const entries = parseHba(fixture('debian-default.conf')) as HbaRule[];
  t.deepEqual(
    entries.map((e) => [e.type, names(e.databases).join(), e.address?.value ?? '', e.method]),
    [
      ['local', 'all', '', 'peer'],
      ['host', 'all', '127.0.0.1/32', 'scram-sha-256'],
      ['host', 'all', '::1/128', 'scram-sha-256'],
      ['local', 'replication', '', 'peer'],
      ['host', 'replication', '127.0.0.1/32', 'scram-sha-256'],
      ['host', 'replication', '::1/128', 'scram-sha-256'],
    ],
  );
});
