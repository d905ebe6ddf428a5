import test from 'ava';
import { assertIdentifier, quoteIdent, quoteLiteral, quotePsqlArg, validateIdentifier } from '../../tasks/database/sql.ts';

const accepted = ['pem_user_settings', 'pem_user', '_x', 'Pem$Settings', 'a'.repeat(63), 'edb', 'postgres'];
for (const name of accepted) {
  test(`a plain name is accepted as an identifier: ${name.length > 20 ? `${name.length} characters` : name}`, (t) => {
    t.is(validateIdentifier(name, 'pem_settings_db'), undefined);
    t.is(assertIdentifier(name, 'pem_settings_db'), name);
  });
}

const rejected: [string, string, RegExp][] = [
  ['empty', '', /pem_settings_user is empty/],
  ['64 bytes (PostgreSQL would truncate it)', 'a'.repeat(64), /64 bytes long; PostgreSQL names are at most 63/],
  ['closing a quoted identifier', 'x"; DROP ROLE postgres; --', /not a plain name/],
  ['closing a literal', "x'; DROP DATABASE pem; --", /not a plain name/],
  ['a statement separator', 'pem;drop', /not a plain name/],
  ['a space (two words in pg_hba.conf)', 'pem user', /not a plain name/],
  ['a comma (a list in pg_hba.conf)', 'pem,all', /not a plain name/],
  ['a pg_hba group reference', '+pem_user', /not a plain name/],
  ['a pg_hba file reference', '@users', /not a plain name/],
  ['a psql variable', ':foo', /not a plain name/],
  ['a psql meta-command', 'x\\! id', /not a plain name/],
  ['a connection string for \\connect', 'dbname=pem host=evil', /not a plain name/],
  ['a newline', 'pem\nDROP', /not a plain name/],
  ['a NUL byte', 'pem\0', /not a plain name/],
  ['a leading digit', '1pem', /not a plain name/],
  ['non-ASCII letters', 'pém', /not a plain name/],
  ['a percent sign (URI escape)', 'pem%40', /not a plain name/],
  ['the pg_hba keyword all', 'all', /reserved word/],
  ['the pg_hba keyword replication', 'REPLICATION', /reserved word/],
  ['the PUBLIC pseudo-role', 'public', /reserved word/],
  ['current_user', 'current_user', /reserved word/],
  ['a pg_ role name', 'pg_monitor', /starting with pg_ are reserved/],
];
for (const [what, name, message] of rejected) {
  test(`an identifier is rejected with a reason: ${what}`, (t) => {
    t.regex(validateIdentifier(name, 'pem_settings_user') ?? '', message);
    t.throws(() => assertIdentifier(name, 'pem_settings_user'), { instanceOf: RangeError, message });
  });
}

test('the problem text names the variable and shows the value', (t) => {
  t.is(
    validateIdentifier('a b', 'pem_settings_grantee'),
    'pem_settings_grantee "a b" is not a plain name: use letters, digits, _ and $, starting with a letter or _',
  );
});

const idents: [string, string][] = [
  ['pem_user_settings', '"pem_user_settings"'],
  ['Pem$Settings', '"Pem$Settings"'],
  ['a"b', '"a""b"'],
  ['"; DROP TABLE x; --', '"""; DROP TABLE x; --"'],
  ["it's", '"it\'s"'],
  ['back\\slash', '"back\\slash"'],
];
for (const [name, quoted] of idents) {
  test(`identifiers are always double-quoted with inner quotes doubled: ${name}`, (t) => {
    t.is(quoteIdent(name), quoted);
  });
}

const literals: [string, string][] = [
  ['plain', "'plain'"],
  ["it's", "'it''s'"],
  ["'; DROP ROLE x; --", "'''; DROP ROLE x; --'"],
  ['back\\slash', "'back\\slash'"],
  ['\\\'', "'\\'''"],
  ['SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d+e/f=', "'SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d+e/f='"],
  ['$$dollar$$', "'$$dollar$$'"],
  ['', "''"],
];
for (const [value, quoted] of literals) {
  test(`literals use the standard-conforming form, quotes doubled, backslashes kept: ${JSON.stringify(value)}`, (t) => {
    t.is(quoteLiteral(value), quoted);
    t.false(quoteLiteral(value).startsWith('E'));
  });
}

test('a NUL byte cannot be quoted into SQL', (t) => {
  t.throws(() => quoteLiteral('a\0b'), { instanceOf: RangeError });
  t.throws(() => quoteIdent('a\0b'), { instanceOf: RangeError });
});

const psqlArgs: [string, string][] = [
  ['pem_user_settings', "'pem_user_settings'"],
  ['Pem$Settings', "'Pem$Settings'"],
  ["it's", "'it''s'"],
  ['a\\nb', "'a\\\\nb'"],
  [':var', "':var'"],
];
for (const [value, quoted] of psqlArgs) {
  test(`psql meta-command arguments are single-quoted with psql's rules: ${JSON.stringify(value)}`, (t) => {
    t.is(quotePsqlArg(value), quoted);
  });
}

const notPsqlArgs: [string, string][] = [
  ['a connection string', 'dbname=pem host=evil'],
  ['a URI', 'postgresql://evil/pem'],
  ['a second line', "pem'\n\\! id"],
];
for (const [what, value] of notPsqlArgs) {
  test(`\\connect never receives ${what}`, (t) => {
    t.throws(() => quotePsqlArg(value), { instanceOf: RangeError });
  });
}
