import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseFacts, type DbFacts } from '../../tasks/database/facts.ts';
import { completedSteps, DatabasePlanError, planDatabase, renderPsqlScript, type DbDesired } from '../../tasks/database/plan.ts';
import { parseVerifier, verifierMatches } from '../../tasks/database/scram.ts';

const facts = (name: string): DbFacts =>
  parseFacts(readFileSync(new URL(`../fixtures/database/facts-${name}.out`, import.meta.url), 'utf8'));
// The fixtures were captured with these (see test/fixtures/database/README.md).
const PASSWORD = 'S3cret pässwörd';
const CHANGED_PASSWORD = '\uFF4E3w pässword';
const desired: DbDesired = {
  db: 'pem_user_settings', user: 'pem_user_settings', grantee: 'pem_user',
  revokeConnect: ['pem', 'postgres', 'edb'], password: PASSWORD,
};
const salt = Buffer.from('fixed salt 16 by');
const stepNames = [
  'role pem_user_settings',
  'database pem_user_settings',
  'connect on pem_user_settings',
  'revoke connect on pem',
  'revoke connect on postgres',
  'revoke connect on edb',
  'schema public in pem_user_settings',
  'default privileges on tables for pem_user',
  'default privileges on sequences for pem_user',
];

test('on a fresh cluster every item is planned as changed, in SPEC order', (t) => {
  const steps = planDatabase(facts('fresh'), desired, { salt });
  t.deepEqual(steps.map((s) => s.step), stepNames);
  t.deepEqual(steps.map((s) => s.changed), [true, true, true, true, true, false, true, true, true]);
  t.is(steps[5]!.summary, 'database edb does not exist: nothing to revoke');
});

test('on a fresh cluster the SQL is exactly SPEC 1, corrected, with the password masked', (t) => {
  const steps = planDatabase(facts('fresh'), desired, { salt });
  t.deepEqual(steps.map((s) => [s.database, s.maskedSql]), [
    ['postgres', [`CREATE ROLE "pem_user_settings" LOGIN PASSWORD '********';`]],
    ['postgres', ['CREATE DATABASE "pem_user_settings";']],
    ['postgres', [
      'REVOKE CONNECT ON DATABASE "pem_user_settings" FROM PUBLIC;',
      'GRANT CONNECT ON DATABASE "pem_user_settings" TO "pem_user_settings";',
    ]],
    ['postgres', ['REVOKE CONNECT ON DATABASE "pem" FROM PUBLIC;']],
    ['postgres', ['REVOKE CONNECT ON DATABASE "postgres" FROM PUBLIC;']],
    ['postgres', []],
    ['pem_user_settings', ['GRANT USAGE, CREATE ON SCHEMA public TO "pem_user_settings";']],
    ['pem_user_settings', ['ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "pem_user";']],
    ['pem_user_settings', ['ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" GRANT SELECT, UPDATE ON SEQUENCES TO "pem_user";']],
  ]);
});

test('the role is created with a SCRAM verifier of the password, never the password itself', (t) => {
  const [role] = planDatabase(facts('fresh'), desired, { salt });
  const m = /^CREATE ROLE "pem_user_settings" LOGIN PASSWORD '([^']+)';$/.exec(role!.sql[0]!);
  t.truthy(m);
  t.is(parseVerifier(m![1])!.salt.toString(), 'fixed salt 16 by');
  t.true(verifierMatches(m![1], PASSWORD));
  t.false(role!.sql[0]!.includes(PASSWORD));
});

test('nothing a step shows or records carries the verifier or the password', (t) => {
  for (const name of ['fresh', 'drifted', 'password-changed']) {
    const steps = planDatabase(facts(name), desired);
    const shown = JSON.stringify(steps.map(({ sql: _sql, ...rest }) => rest));
    t.false(shown.includes('SCRAM-SHA-256$'), name);
    t.false(shown.includes(PASSWORD), name);
  }
});

test('revoking CONNECT from PUBLIC warns about the login roles it would lock out', (t) => {
  const steps = planDatabase(facts('fresh'), desired);
  const warnings = Object.fromEntries(steps.filter((s) => s.warnings).map((s) => [s.step, s.warnings]));
  t.deepEqual(warnings, {
    'revoke connect on pem': [
      'revoking CONNECT on pem from PUBLIC locks out login roles that connect only through PUBLIC: ' +
        'report_reader, zz_noinherit (grant them CONNECT first, or leave pem out of pem_settings_revoke_connect)',
    ],
    'revoke connect on postgres': [
      'revoking CONNECT on postgres from PUBLIC locks out login roles that connect only through PUBLIC: ' +
        'pem_admin, pem_agent, report_reader, zz_noinherit (grant them CONNECT first, or leave postgres out of pem_settings_revoke_connect)',
    ],
  });
});

test('records say what each change did so rollback can undo it', (t) => {
  const steps = planDatabase(facts('fresh'), desired);
  t.deepEqual(steps.map((s) => s.record), [
    { kind: 'role', role: 'pem_user_settings', created: true, loginGranted: true, passwordChanged: true },
    { kind: 'database', database: 'pem_user_settings', created: true },
    { kind: 'connect', database: 'pem_user_settings', revokedFrom: 'PUBLIC', grantedTo: 'pem_user_settings' },
    { kind: 'revoke-connect', database: 'pem', from: 'PUBLIC' },
    { kind: 'revoke-connect', database: 'postgres', from: 'PUBLIC' },
    null,
    { kind: 'schema-grant', database: 'pem_user_settings', schema: 'public', role: 'pem_user_settings', privileges: ['USAGE', 'CREATE'] },
    { kind: 'default-privileges', database: 'pem_user_settings', forRole: 'pem_user_settings', grantee: 'pem_user', objectType: 'tables', privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
    { kind: 'default-privileges', database: 'pem_user_settings', forRole: 'pem_user_settings', grantee: 'pem_user', objectType: 'sequences', privileges: ['SELECT', 'UPDATE'] },
  ]);
});

test('a second deploy changes nothing: every item ok and no script to run', (t) => {
  const steps = planDatabase(facts('deployed'), desired);
  t.deepEqual(steps.map((s) => s.step), stepNames);
  t.true(steps.every((s) => !s.changed && s.sql.length === 0 && s.record === null && !s.warnings));
  t.is(steps[0]!.summary, 'role pem_user_settings exists, can log in, password up to date');
  t.is(renderPsqlScript(steps), '');
});

test('a changed password changes only the role, with ALTER ROLE and a new verifier', (t) => {
  const steps = planDatabase(facts('password-changed'), desired, { salt });
  t.deepEqual(steps.filter((s) => s.changed).map((s) => s.step), ['role pem_user_settings']);
  t.deepEqual(steps[0]!.maskedSql, [`ALTER ROLE "pem_user_settings" PASSWORD '********';`]);
  t.is(steps[0]!.summary, 'role pem_user_settings: set its password (SCRAM-SHA-256 verifier)');
  t.deepEqual(steps[0]!.record, { kind: 'role', role: 'pem_user_settings', created: false, loginGranted: false, passwordChanged: true });
});

test('a stored verifier is checked with its own salt and iterations, after SASLprep', (t) => {
  // The fixture's verifier has 10000 iterations and was made from a fullwidth spelling.
  for (const password of [CHANGED_PASSWORD, 'n3w pässword']) {
    const steps = planDatabase(facts('password-changed'), { ...desired, password });
    t.true(steps.every((s) => !s.changed), password);
  }
});

test('drift is repaired item by item: only what is missing is planned', (t) => {
  const steps = planDatabase(facts('drifted'), desired);
  t.deepEqual(
    steps.filter((s) => s.changed).map((s) => [s.step, s.summary, s.maskedSql]),
    [
      ['role pem_user_settings', 'role pem_user_settings: allow it to log in, replace its md5 password with a SCRAM-SHA-256 verifier',
        [`ALTER ROLE "pem_user_settings" LOGIN PASSWORD '********';`]],
      ['connect on pem_user_settings', 'pem_user_settings: revoke CONNECT from PUBLIC',
        ['REVOKE CONNECT ON DATABASE "pem_user_settings" FROM PUBLIC;']],
      ['revoke connect on pem', 'revoke CONNECT on pem from PUBLIC', ['REVOKE CONNECT ON DATABASE "pem" FROM PUBLIC;']],
      ['schema public in pem_user_settings', 'grant CREATE on schema public to pem_user_settings',
        ['GRANT CREATE ON SCHEMA public TO "pem_user_settings";']],
      ['default privileges on sequences for pem_user', 'pem_user gets SELECT, UPDATE on sequences pem_user_settings creates',
        ['ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" GRANT SELECT, UPDATE ON SEQUENCES TO "pem_user";']],
    ],
  );
  t.deepEqual(steps[2]!.record, { kind: 'connect', database: 'pem_user_settings', revokedFrom: 'PUBLIC', grantedTo: null });
  t.deepEqual(steps[8]!.record && 'privileges' in steps[8]!.record ? steps[8]!.record.privileges : [], ['UPDATE']);
});

test('the settings role itself is never listed as locked out of its own database', (t) => {
  const f = facts('drifted');
  f.databases.find((d) => d.name === 'pem_user_settings')!.onlyPublicConnect = ['pem_user_settings', 'report_reader'];
  const connect = planDatabase(f, desired).find((s) => s.step === 'connect on pem_user_settings')!;
  t.is(connect.warnings?.length, 1);
  t.regex(connect.warnings![0]!, /only through PUBLIC: report_reader \(/);
});

test('the revoke list plans each existing database once and leaves the settings database to its own step', (t) => {
  const steps = planDatabase(facts('fresh'), { ...desired, revokeConnect: ['pem', 'pem', 'pem_user_settings', 'edb'] });
  t.deepEqual(steps.filter((s) => s.step.startsWith('revoke')).map((s) => s.step), ['revoke connect on pem', 'revoke connect on edb']);
});

const cannotPlan: [string, (f: DbFacts) => void, Partial<DbDesired>, RegExp][] = [
  ['the grantee role is missing', (f) => { f.grantee = null; }, {},
    /^default privileges for pem_user: role pem_user does not exist on the primary \(pem_settings_grantee must name/],
  ['the server predates SCRAM', (f) => { f.serverVersionNum = 90624; }, {}, /has no SCRAM-SHA-256 \(PostgreSQL 10 or later/],
  ['the password is empty', () => {}, { password: '' }, /the password is empty \(set PEM_SETTINGS_PASSWORD\)/],
  ['the settings database refuses connections',
    (f) => { f.databases.find((d) => d.name === 'pem_user_settings')!.allowConnections = false; }, {}, /does not allow connections/],
  ['the settings database has no public schema', (f) => { f.settingsDb!.publicSchema = null; }, {}, /has no schema public/],
];
for (const [what, mutate, change, message] of cannotPlan) {
  test(`a state deploy cannot fix is a clear error naming the step: ${what}`, (t) => {
    const f = facts('deployed');
    mutate(f);
    const e = t.throws(() => planDatabase(f, { ...desired, ...change }), { instanceOf: DatabasePlanError, message });
    t.truthy(e!.step);
  });
}

const injections: [string, Partial<DbDesired>][] = [
  ['user', { user: 'x"; DROP DATABASE pem; --' }],
  ['db', { db: "pem'; \\! rm -rf /" }],
  ['grantee', { grantee: 'pem_user TO PUBLIC' }],
  ['revoke list', { revokeConnect: ['pem', 'dbname=evil'] }],
];
for (const [what, change] of injections) {
  test(`an identifier that tries injection is rejected before any SQL is made: ${what}`, (t) => {
    t.throws(() => planDatabase(facts('fresh'), { ...desired, ...change }), { instanceOf: RangeError, message: /not a plain name/ });
  });
}

test('the psql script switches databases with \\connect and never wraps CREATE DATABASE in a transaction', (t) => {
  const steps = planDatabase(facts('fresh'), desired, { salt });
  const script = renderPsqlScript(steps);
  const verifier = /PASSWORD '([^']+)'/.exec(steps[0]!.sql[0]!)![1]!;
  t.is(script.replace(verifier, '<verifier>'), [
    '\\set QUIET on',
    '\\set ON_ERROR_STOP on',
    "\\connect 'postgres'",
    'SET standard_conforming_strings = on;',
    'BEGIN;',
    `CREATE ROLE "pem_user_settings" LOGIN PASSWORD '<verifier>';`,
    'COMMIT;',
    '\\echo pem-settings-step-done 0',
    'CREATE DATABASE "pem_user_settings";',
    '\\echo pem-settings-step-done 1',
    'BEGIN;',
    'REVOKE CONNECT ON DATABASE "pem_user_settings" FROM PUBLIC;',
    'GRANT CONNECT ON DATABASE "pem_user_settings" TO "pem_user_settings";',
    'COMMIT;',
    '\\echo pem-settings-step-done 2',
    'BEGIN;',
    'REVOKE CONNECT ON DATABASE "pem" FROM PUBLIC;',
    'COMMIT;',
    '\\echo pem-settings-step-done 3',
    'BEGIN;',
    'REVOKE CONNECT ON DATABASE "postgres" FROM PUBLIC;',
    'COMMIT;',
    '\\echo pem-settings-step-done 4',
    "\\connect 'pem_user_settings'",
    'SET standard_conforming_strings = on;',
    'BEGIN;',
    'GRANT USAGE, CREATE ON SCHEMA public TO "pem_user_settings";',
    'COMMIT;',
    '\\echo pem-settings-step-done 6',
    'BEGIN;',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "pem_user";',
    'COMMIT;',
    '\\echo pem-settings-step-done 7',
    'BEGIN;',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" GRANT SELECT, UPDATE ON SEQUENCES TO "pem_user";',
    'COMMIT;',
    '\\echo pem-settings-step-done 8',
    '',
  ].join('\n'));
});

test('cluster-wide statements run in the maintenance database given (EDB Advanced Server: edb)', (t) => {
  const steps = planDatabase(facts('fresh'), desired, { maintenanceDb: 'edb' });
  t.deepEqual([...new Set(steps.map((s) => s.database))], ['edb', 'pem_user_settings']);
  t.true(renderPsqlScript(steps).includes("\\connect 'edb'\n"));
});

test('the step markers psql printed tell which steps were applied before a failure', (t) => {
  t.deepEqual(completedSteps('pem-settings-step-done 0\npem-settings-step-done 1\r\nNOTICE: x\npem-settings-step-done 10\n'), [0, 1, 10]);
  t.deepEqual(completedSteps(''), []);
});
