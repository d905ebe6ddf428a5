import test from 'ava';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UsageError } from '../../src/errors.ts';
import { pythonStringLiteral } from '../../tasks/config-local/edit.ts';
import { maskUri, maskUrisInText, percentEncode, settingsUri, type UriForm, type UriInput } from '../../tasks/config-local/uri.ts';

const CONSUMER = fileURLToPath(new URL('../../../shared/webapp-consumer/consumer.py', import.meta.url));
const DB = 'pem_user_settings';
const USER = 'pem_user_settings';
const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
const SPECIALS = PRINTABLE.replace(/[A-Za-z0-9]/g, '');
const base = (over: Partial<UriInput>): UriInput => ({ user: USER, password: 'pw', database: DB, backends: [{ host: 'db1', port: 5432 }], ...over });

// ---- the exact text of each form (SPEC 4.4) ----

const forms: { name: string; input: UriInput; uri: string; form: UriForm; notes: RegExp[] }[] = [
  { name: 'one backend: user:password@host:port/db', input: base({}), uri: `postgresql://${USER}:pw@db1:5432/${DB}`, form: 'single', notes: [] },
  {
    name: 'several backends on one port: comma list, one port, read-write',
    input: base({ backends: [{ host: 'db1', port: 5444 }, { host: '10.0.0.2', port: 5444 }, { host: 'db3.example.com', port: 5444 }] }),
    uri: `postgresql://${USER}:pw@db1,10.0.0.2,db3.example.com:5444/${DB}?target_session_attrs=read-write`,
    form: 'multi-same-port',
    notes: [],
  },
  {
    name: 'several backends on different ports: host query parameters, read-write, libpq caveat noted',
    input: base({ backends: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5444 }] }),
    uri: `postgresql://${USER}:pw@/${DB}?host=db1:5432&host=db2:5444&target_session_attrs=read-write`,
    form: 'multi-host-query',
    notes: [/libpq tools \(psql, pg_dump\) cannot parse/],
  },
  {
    name: 'an endpoint replaces the backend list',
    input: base({ backends: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5432 }], endpoint: { host: 'lb.example.com', port: 6432 } }),
    uri: `postgresql://${USER}:pw@lb.example.com:6432/${DB}`,
    form: 'single',
    notes: [/pem_db_endpoint lb\.example\.com:6432 is used instead of the 2 backend/],
  },
  { name: 'a single IPv6 backend is bracketed', input: base({ backends: [{ host: '::1', port: 5432 }] }), uri: `postgresql://${USER}:pw@[::1]:5432/${DB}`, form: 'single', notes: [] },
  { name: 'an already bracketed IPv6 backend is kept', input: base({ backends: [{ host: '[2001:db8::5]', port: 5432 }] }), uri: `postgresql://${USER}:pw@[2001:db8::5]:5432/${DB}`, form: 'single', notes: [] },
  {
    name: 'user and password are percent-encoded as UTF-8, unreserved characters kept',
    input: base({ user: 'pem user', password: "a-._~!*'()@:/?#[]%+ pä€😀" }),
    uri: `postgresql://pem%20user:a-._~%21%2A%27%28%29%40%3A%2F%3F%23%5B%5D%25%2B%20p%C3%A4%E2%82%AC%F0%9F%98%80@db1:5432/${DB}`,
    form: 'single',
    notes: [],
  },
];

for (const c of forms) {
  test(`settingsUri: ${c.name}`, (t) => {
    const r = settingsUri(c.input);
    t.is(r.uri, c.uri);
    t.is(r.form, c.form);
    t.is(r.notes.length, c.notes.length);
    c.notes.forEach((re, i) => t.regex(r.notes[i]!, re));
  });
}

test('percentEncode leaves exactly A-Za-z0-9-._~ unencoded', (t) => {
  const kept = PRINTABLE.split('').filter((ch) => percentEncode(ch) === ch).join('');
  t.is(kept, '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~');
  t.is(percentEncode(' '), '%20');
  t.is(percentEncode('é'), '%C3%A9');
});

// ---- settings the URI cannot carry: UsageError (exit 2, nothing touched), password never shown ----

const SECRET = 'Sup3r$ecret';
const rejects: { name: string; input: Partial<UriInput>; message: RegExp }[] = [
  {
    name: 'IPv6 among several backends',
    input: { backends: [{ host: '::1', port: 5432 }, { host: 'db2', port: 5432 }] },
    message: /IPv6 address, which the web app's URI parser \(SQLAlchemy\) accepts only as a single host/,
  },
  { name: 'an IPv6 zone id', input: { backends: [{ host: 'fe80::1%eth0', port: 5432 }] }, message: /zone id/ },
  { name: 'an invalid IPv6 address', input: { backends: [{ host: '[1:::2]', port: 5432 }] }, message: /neither a host name nor an IP address/ },
  { name: 'brackets around a name', input: { backends: [{ host: '[db1]', port: 5432 }] }, message: /brackets but is not an IPv6 address/ },
  ...['db/1', 'u@db1', 'db1?x', 'db1#x', 'db1,db2', 'db 1', 'db%1', 'höst', '', '-db1', 'db1.', 'a..b'].map((host) => ({
    name: `host name ${JSON.stringify(host)}`,
    input: { backends: [{ host, port: 5432 }] },
    message: /is not a valid host name/,
  })),
  { name: 'an IPv4 address out of range', input: { backends: [{ host: '10.0.0.256', port: 5432 }] }, message: /not a valid IPv4 address/ },
  ...[0, 65536, 5432.5, Number.NaN].map((port) => ({ name: `port ${port}`, input: { backends: [{ host: 'db1', port }] }, message: /is not a TCP port/ })),
  { name: 'a bad endpoint', input: { endpoint: { host: 'lb/1', port: 6432 } }, message: /^pem_db_endpoint: "lb\/1" is not a valid host name/ },
  { name: 'no backends and no endpoint', input: { backends: [] }, message: /no backend to point CONFIG_DATABASE_URI at/ },
  { name: 'the same backend twice', input: { backends: [{ host: 'db1', port: 5432 }, { host: 'DB1', port: 5432 }] }, message: /db1:5432 is listed twice/ },
  { name: 'an empty password', input: { password: '' }, message: /password is empty \(set PEM_SETTINGS_PASSWORD/ },
  { name: 'an empty role name', input: { user: '' }, message: /role name is empty/ },
  { name: 'a database name needing encoding', input: { database: 'pem/settings' }, message: /cannot be written into CONFIG_DATABASE_URI/ },
  { name: 'a lone surrogate in the password', input: { password: 'a\ud800b' }, message: /password contains an invalid/ },
];

for (const c of rejects) {
  test(`settingsUri rejects ${c.name} with a clear message`, (t) => {
    const e = t.throws(() => settingsUri(base({ password: SECRET, ...c.input })), { instanceOf: UsageError });
    t.regex(e?.message ?? '', c.message);
    t.false(e?.message.includes(SECRET) ?? true);
  });
}

// ---- masking ----

const masks: { name: string; uri: string; masked: string }[] = [
  { name: 'single', uri: 'postgresql://u:p%40ss@db1:5432/db', masked: 'postgresql://u:********@db1:5432/db' },
  { name: 'multi host', uri: 'postgresql://u:pw@a,b:5432/db?target_session_attrs=read-write', masked: 'postgresql://u:********@a,b:5432/db?target_session_attrs=read-write' },
  { name: 'host query', uri: 'postgresql://u:pw@/db?host=a:1&host=b:2', masked: 'postgresql://u:********@/db?host=a:1&host=b:2' },
  { name: 'no password', uri: 'postgresql://u@db1/db', masked: 'postgresql://u@db1/db' },
  { name: 'sqlite', uri: 'sqlite:////var/lib/pem/pem.db', masked: 'sqlite:////var/lib/pem/pem.db' },
];

for (const c of masks) {
  test(`maskUri hides the password: ${c.name}`, (t) => {
    t.is(maskUri(c.uri), c.masked);
  });
}

test('maskUri hides every generated password, whatever its characters', (t) => {
  for (const password of [PRINTABLE, 'pä ss€😀', '@@@', ':']) {
    const { uri } = settingsUri(base({ password, backends: [{ host: 'a', port: 1 }, { host: 'b', port: 2 }] }));
    t.is(maskUri(uri), `postgresql://${USER}:********@/${DB}?host=a:1&host=b:2&target_session_attrs=read-write`);
  }
});

test('maskUrisInText hides passwords in a config file, hand-written ones included', (t) => {
  const text = `# CONFIG_DATABASE_URI = "postgresql://old:0ld!pw@db:5432/x"\nCONFIG_DATABASE_URI = 'postgres://u:p%40@h/db'\nLOG = "/var/log"\n`;
  t.is(maskUrisInText(text), `# CONFIG_DATABASE_URI = "postgresql://old:********@db:5432/x"\nCONFIG_DATABASE_URI = 'postgres://u:********@h/db'\nLOG = "/var/log"\n`);
});

// ---- the web app's own parser is the judge (shared/webapp-consumer, SQLAlchemy 2.0.52 + psycopg) ----

interface Parsed {
  ok: boolean;
  json?: Record<string, unknown>;
  stderr: string;
}

/** Writes one config_local.py per URI and runs `consumer.py --parse` on each, a few at a time. */
async function parseWithWebApp(uris: string[]): Promise<Parsed[]> {
  const dir = mkdtempSync(join(tmpdir(), 'uri-consumer-'));
  const run = promisify(execFile);
  const results: Parsed[] = new Array(uris.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < uris.length; i = next++) {
      const file = join(dir, `config_local_${i}.py`);
      writeFileSync(file, `CONFIG_DATABASE_URI = ${pythonStringLiteral(uris[i]!)}\n`);
      try {
        const { stdout, stderr } = await run('/usr/bin/python3', [CONSUMER, '--parse', file]);
        results[i] = { ok: true, json: JSON.parse(stdout) as Record<string, unknown>, stderr };
      } catch (e) {
        results[i] = { ok: false, stderr: String((e as { stderr?: string }).stderr ?? e) };
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return results;
}

interface RoundTrip {
  name: string;
  input: UriInput;
  expect: Record<string, unknown>;
}

const one = { backends: [{ host: 'db1.example.com', port: 5432 }] };
const roundTrips: RoundTrip[] = [
  { name: 'every printable ASCII character in the password', input: base({ ...one, password: PRINTABLE }), expect: { user: USER, password: PRINTABLE, host: 'db1.example.com', port: 5432, dbname: DB } },
  { name: 'every printable ASCII character in the role name', input: base({ ...one, user: PRINTABLE }), expect: { user: PRINTABLE, password: 'pw', host: 'db1.example.com', port: 5432, dbname: DB } },
  { name: 'non-ASCII in the password', input: base({ ...one, password: 'pä ss€😀' }), expect: { user: USER, password: 'pä ss€😀', host: 'db1.example.com', port: 5432, dbname: DB } },
  { name: 'percent signs that look like escapes', input: base({ ...one, password: '%41%2F%%' }), expect: { user: USER, password: '%41%2F%%', port: 5432 } },
  // The special characters four at a time between letters, so one character's encoding cannot
  // hide another's (and fewer python runs than one per character).
  ...(SPECIALS.match(/.{1,4}/g) ?? []).map((group) => {
    const password = group.split('').map((ch, i) => `${'abcd'[i]}${ch}`).join('') + 'z';
    return { name: `the characters ${JSON.stringify(group)} in the password`, input: base({ ...one, password }), expect: { user: USER, password, host: 'db1.example.com', port: 5432 } };
  }),
  {
    name: 'several backends on one port, read-write',
    input: base({ password: PRINTABLE, backends: [{ host: 'db1', port: 5444 }, { host: '10.0.0.2', port: 5444 }, { host: 'db3', port: 5444 }] }),
    expect: { user: USER, password: PRINTABLE, host: 'db1,10.0.0.2,db3', port: 5444, dbname: DB, target_session_attrs: 'read-write' },
  },
  {
    name: 'several backends on different ports, read-write',
    input: base({ password: 'pä ss€😀', backends: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5444 }, { host: '10.0.0.3', port: 5433 }] }),
    expect: { user: USER, password: 'pä ss€😀', host: 'db1,db2,10.0.0.3', port: '5432,5444,5433', dbname: DB, target_session_attrs: 'read-write' },
  },
  {
    name: 'an endpoint',
    input: base({ password: PRINTABLE, backends: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5444 }], endpoint: { host: 'lb.example.com', port: 6432 } }),
    expect: { user: USER, password: PRINTABLE, host: 'lb.example.com', port: 6432, dbname: DB },
  },
  { name: 'a single IPv6 backend', input: base({ password: PRINTABLE, backends: [{ host: '2001:db8::5', port: 5432 }] }), expect: { user: USER, password: PRINTABLE, host: '2001:db8::5', port: 5432, dbname: DB } },
];

// The form EDB's procedure documents; written here by hand because settingsUri never produces it.
const DOCUMENTED_MULTI = `postgresql://${USER}:pw@db1:5432,db2:5444/${DB}`;

test('every URI form round-trips through the web app\'s own parser; the documented h1:p1,h2:p2 form is rejected', async (t) => {
  const uris = roundTrips.map((c) => settingsUri(c.input).uri);
  const results = await parseWithWebApp([...uris, DOCUMENTED_MULTI]);
  roundTrips.forEach((c, i) => {
    const r = results[i]!;
    t.true(r.ok, `${c.name}: ${r.stderr}`);
    const got = Object.fromEntries(Object.keys(c.expect).map((k) => [k, r.json?.[k]]));
    t.deepEqual(got, c.expect, c.name);
    // Single-host forms must not ask for a read-write session they do not need.
    if (!('target_session_attrs' in c.expect)) t.is(r.json?.target_session_attrs, undefined, c.name);
  });
  const documented = results[roundTrips.length]!;
  t.false(documented.ok);
  t.regex(documented.stderr, /ValueError: invalid literal for int\(\) with base 10: '5432,db2:5444'/);
});
