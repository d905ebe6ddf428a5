import test from 'ava';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { DbFactsError, factsScript, parseFacts } from '../../tasks/database/facts.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/database/${name}`, import.meta.url), 'utf8');
const target = { db: 'pem_user_settings', user: 'pem_user_settings', grantee: 'pem_user', revokeConnect: ['pem', 'postgres', 'edb'] };

test('a fresh cluster: no role, no settings database, grantee found', (t) => {
  const f = parseFacts(fixture('facts-fresh.out'));
  t.is(f.serverVersionNum, 150018);
  t.is(f.role, null);
  t.deepEqual(f.grantee, { name: 'pem_user', canLogin: false });
  t.deepEqual(f.databases.map((d) => d.name), ['pem', 'postgres', 'template0', 'template1']);
  t.is(f.settingsDb, null);
});

test('a database never granted on has acl null (defaults), kept apart from explicit grants', (t) => {
  const f = parseFacts(fixture('facts-fresh.out'));
  const postgres = f.databases.find((d) => d.name === 'postgres')!;
  t.is(postgres.acl, null);
  const pem = f.databases.find((d) => d.name === 'pem')!;
  t.deepEqual(
    pem.acl!.filter((a) => a.privilege === 'CONNECT').map((a) => [a.grantee, a.isPublic]),
    [['PUBLIC', true], ['postgres', false], ['pem_user', false], ['pem_agent', false]],
  );
});

test('login roles reaching a database only through PUBLIC are listed; members of a granted role are not', (t) => {
  const f = parseFacts(fixture('facts-fresh.out'));
  const locked = Object.fromEntries(f.databases.map((d) => [d.name, d.onlyPublicConnect]));
  // pem_admin inherits CONNECT from pem_user; zz_noinherit is a NOINHERIT member, so it does not.
  t.deepEqual(locked, {
    pem: ['report_reader', 'zz_noinherit'],
    postgres: ['pem_admin', 'pem_agent', 'report_reader', 'zz_noinherit'],
    template0: null,
    template1: null,
  });
});

test('after PUBLIC lost CONNECT nobody is listed as connecting only through it', (t) => {
  const f = parseFacts(fixture('facts-deployed.out'));
  t.deepEqual(f.databases.find((d) => d.name === 'pem')!.onlyPublicConnect, []);
});

test('a deployed cluster: role, schema ACL and default privileges are read from the settings database', (t) => {
  const f = parseFacts(fixture('facts-deployed.out'));
  t.like(f.role, { name: 'pem_user_settings', canLogin: true, superuser: false, validUntil: null });
  t.true(f.role!.verifier.reveal()!.startsWith('SCRAM-SHA-256$4096:'));
  t.is(f.settingsDb!.database, 'pem_user_settings');
  t.is(f.settingsDb!.publicSchema!.owner, 'pg_database_owner');
  t.deepEqual(
    f.settingsDb!.publicSchema!.acl!.filter((a) => a.grantee === 'pem_user_settings').map((a) => a.privilege).sort(),
    ['CREATE', 'USAGE'],
  );
  t.deepEqual(
    f.settingsDb!.defaultAcls.map((d) => [d.objectType, d.schema, d.acl.filter((a) => a.grantee === 'pem_user').map((a) => a.privilege).sort()]),
    [['sequences', null, ['SELECT', 'UPDATE']], ['tables', null, ['DELETE', 'INSERT', 'SELECT', 'UPDATE']]],
  );
});

test('the stored verifier never shows in JSON, inspect or string output of the facts', (t) => {
  const f = parseFacts(fixture('facts-deployed.out'));
  for (const text of [JSON.stringify(f), inspect(f, { depth: 10 }), `${f.role!.verifier}`]) {
    t.false(text.includes('SCRAM-SHA-256$'));
    t.true(text.includes('********'));
  }
});

const emptyVsMissing = JSON.stringify({
  kind: 'cluster', server_version_num: 160004, role: null, grantee: null,
  databases: [{ name: 'x', owner: 'postgres', allow_connections: true, is_template: false, acl: [], only_public_connect: [] }],
});
test('an empty ACL stays [] and is not mistaken for defaults', (t) => {
  const f = parseFacts(`${emptyVsMissing}\n`);
  t.deepEqual(f.databases[0]!.acl, []);
  t.deepEqual(f.databases[0]!.onlyPublicConnect, []);
  t.is(f.grantee, null);
});

const secretLine = '{"kind":"cluster","role":{"verifier":"SCRAM-SHA-256$4096:c2VjcmV0$x:y"}';
const bad: [string, string, RegExp][] = [
  ['nothing at all', '', /expected one cluster line/],
  ['a truncated line holding a verifier', `${secretLine}\n`, /line 1: not JSON/],
  ['psql noise before the JSON', `SET\n${fixture('facts-fresh.out')}`, /line 1: not JSON/],
  ['two cluster lines', `${emptyVsMissing}\n${emptyVsMissing}\n`, /expected one cluster line/],
  ['a wrong type', `${emptyVsMissing.replace('160004', '"16"')}\n`, /server_version_num: expected an integer/],
];
for (const [what, stdout, message] of bad) {
  test(`unreadable facts output is a clear error that never quotes the output: ${what}`, (t) => {
    const e = t.throws(() => parseFacts(stdout), { instanceOf: DbFactsError, message });
    t.false(e!.message.includes('c2VjcmV0'));
  });
}

test('the facts script is read-only, quotes every name and reads the settings database only if it exists', (t) => {
  const s = factsScript(target);
  t.true(s.startsWith('\\set QUIET on\n\\set ON_ERROR_STOP on\n'));
  t.regex(s, /SET default_transaction_read_only = on;/);
  t.regex(s, /WHERE a\.rolname = 'pem_user_settings'/);
  t.regex(s, /ARRAY\['pem_user_settings', 'pem', 'postgres', 'edb'\]::name\[\]/);
  t.regex(s, /\\if :pem_settings_db_exists\n\\connect 'pem_user_settings'\n/);
  t.regex(s, /\\endif\n$/);
  t.notRegex(s, /\b(INSERT|UPDATE|DELETE|GRANT|REVOKE|CREATE|ALTER|DROP)\s/);
});

test('the facts script refuses names that are not plain identifiers', (t) => {
  t.throws(() => factsScript({ ...target, user: "x' OR '1'='1" }), { instanceOf: RangeError, message: /pem_settings_user/ });
  t.throws(() => factsScript({ ...target, revokeConnect: ['pem', 'a;b'] }), { instanceOf: RangeError, message: /pem_settings_revoke_connect/ });
});
