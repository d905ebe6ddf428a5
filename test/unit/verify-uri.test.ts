import test from 'ava';
import { settingsUri } from '../../tasks/config-local/uri.ts';
import { backendsFromConnectArgs, parseSettingsUri, percentDecode, UriParseError } from '../../tasks/verify/uri.ts';

const NASTY = `Sup3r'S"ec\\ret @:/%$; pä ss€`;

const forms: [string, string, { host: string; port: number }[], string][] = [
  ['single host', 'postgresql://u:pw@db1:5433/settings', [{ host: 'db1', port: 5433 }], 'settings'],
  ['single host, libpq default port', 'postgresql://u:pw@db1/settings', [{ host: 'db1', port: 5432 }], 'settings'],
  ['several hosts sharing the trailing port (SPEC 4.4)', 'postgresql://u:pw@h1,h2,h3:6432/s?target_session_attrs=read-write',
    [{ host: 'h1', port: 6432 }, { host: 'h2', port: 6432 }, { host: 'h3', port: 6432 }], 's'],
  ['SQLAlchemy multi-host query form, ports per host', 'postgresql://u:pw@/s?host=h1:5432&host=h2:5444&target_session_attrs=read-write',
    [{ host: 'h1', port: 5432 }, { host: 'h2', port: 5444 }], 's'],
  ['query hosts without a port take the authority\'s port', 'postgresql://u:pw@:6000/s?host=h1&host=h2:7000', [{ host: 'h1', port: 6000 }, { host: 'h2', port: 7000 }], 's'],
  ['the documented libpq form h1:p1,h2:p2 (the web app rejects it, verify still reads it)', 'postgresql://u:pw@h1:5432,h2:5433/s',
    [{ host: 'h1', port: 5432 }, { host: 'h2', port: 5433 }], 's'],
  ['an IPv6 address in brackets', 'postgresql://u:pw@[fd00::5]:5432/s', [{ host: 'fd00::5', port: 5432 }], 's'],
  ['the postgres:// scheme of the published procedure', 'postgres://u:pw@h:5432/s', [{ host: 'h', port: 5432 }], 's'],
];

for (const [name, uri, backends, database] of forms) {
  test(`reads the backends of ${name}`, (t) => {
    const p = parseSettingsUri(uri);
    t.deepEqual(p.backends, backends);
    t.is(p.database, database);
    t.is(p.user, 'u');
    t.is(p.password, 'pw');
  });
}

test('keeps the query options other than host, in order', (t) => {
  t.deepEqual(parseSettingsUri('postgresql://u:pw@/s?host=a:1&target_session_attrs=read-write&connect_timeout=5').options,
    [['target_session_attrs', 'read-write'], ['connect_timeout', '5']]);
});

test('decodes a percent-encoded role and password exactly as deploy encoded them', (t) => {
  const { uri } = settingsUri({ user: 'pem user', password: NASTY, database: 'pem_user_settings', backends: [{ host: '10.0.0.1', port: 5432 }] });
  const p = parseSettingsUri(uri);
  t.is(p.password, NASTY);
  t.is(p.user, 'pem user');
  t.is(p.rawPassword, uri.slice(uri.indexOf(':', 13) + 1, uri.lastIndexOf('@')));
  t.deepEqual(p.backends, [{ host: '10.0.0.1', port: 5432 }]);
});

const bad: [string, string, RegExp][] = [
  ['no host at all', 'postgresql://u:pw@/s', /names no backend host/],
  ['a sqlite URI', 'sqlite:////var/lib/pem/pem.db', /not a Postgres scheme/],
  ['not a URI', 'host=db1 user=u', /not a URI/],
  ['a port out of range', 'postgresql://u:secretpw@h:99999/s', /not a TCP port/],
  ['a non-numeric port', 'postgresql://u:secretpw@h:abc/s', /is not host:port/],
];
for (const [name, uri, message] of bad) {
  test(`refuses ${name} without quoting the password`, (t) => {
    const e = t.throws(() => parseSettingsUri(uri), { instanceOf: UriParseError });
    t.regex(e!.message, message);
    t.false(e!.message.includes('secretpw'));
  });
}

const connectArgs: [string, Record<string, unknown>, { host: string; port: number }[]][] = [
  ['one host, one port', { host: 'h1', port: 5432 }, [{ host: 'h1', port: 5432 }]],
  ['several hosts, one port for all (libpq)', { host: 'h1,h2', port: 5433 }, [{ host: 'h1', port: 5433 }, { host: 'h2', port: 5433 }]],
  ['several hosts, a port each', { host: 'h1,h2', port: '1,2' }, [{ host: 'h1', port: 1 }, { host: 'h2', port: 2 }]],
  ['no port: 5432', { host: 'h1' }, [{ host: 'h1', port: 5432 }]],
];
for (const [name, args, expected] of connectArgs) {
  test(`takes the backends psycopg is given by SQLAlchemy: ${name}`, (t) => {
    t.deepEqual(backendsFromConnectArgs(args), expected);
  });
}

test('a host/port count mismatch in the parser\'s arguments is an error (libpq refuses it too)', (t) => {
  t.throws(() => backendsFromConnectArgs({ host: 'h1,h2,h3', port: '1,2' }), { message: /3 hosts but 2 ports/ });
  t.throws(() => backendsFromConnectArgs({ dbname: 's' }), { message: /no backend host/ });
});

test('percent-decodes UTF-8 and leaves malformed escapes as Python\'s unquote does', (t) => {
  t.is(percentDecode('p%C3%A4%20ss%E2%82%AC'), 'pä ss€');
  t.is(percentDecode('100%zz'), '100%zz');
  t.is(percentDecode('plain'), 'plain');
});
