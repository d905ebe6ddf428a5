import test from 'ava';
import { HostError } from '../../src/errors.ts';
import { sha256 } from '../../tasks/backend-facts.ts';
import type { DbFacts } from '../../tasks/database/facts.ts';
import type { DbRecord } from '../../tasks/database/plan.ts';
import { planDatabaseRollback } from '../../tasks/rollback/database.ts';
import { planWebRollback, type WebDeployRecord } from '../../tasks/rollback/web.ts';

const BEFORE = 'SERVER_MODE = True\n';
const AFTER = 'SERVER_MODE = True\nCONFIG_DATABASE_URI = "postgresql://u:p@h:5432/db"\n';
const record: WebDeployRecord = { file: '/w/config_local.py', created: false, backup: '/w/config_local.py.bak', sha256Before: sha256(BEFORE), sha256After: sha256(AFTER) };
const created: WebDeployRecord = { file: '/w/config_local.py', created: true, backup: null, sha256Before: null, sha256After: sha256(AFTER) };
const file = (text: string) => ({ sha256: sha256(text), text });

test('web: restore when the file is what the run wrote; ok when already restored; the diff masks the password', (t) => {
  const [c] = planWebRollback('web-1', record, { current: file(AFTER), backup: file(BEFORE) }, false);
  t.true(c!.changed);
  t.regex(c!.summary, /^restore \/w\/config_local.py from \/w\/config_local.py.bak$/);
  t.notRegex(c!.diff!.before, /u:p@/);
  const [ok] = planWebRollback('web-1', record, { current: file(BEFORE), backup: file(BEFORE) }, false);
  t.false(ok!.changed);
});

test('web: an edited file is refused with both checksums unless --force', (t) => {
  const edited = AFTER + '# by hand\n';
  const e = t.throws(() => planWebRollback('web-1', record, { current: file(edited), backup: file(BEFORE) }, false), { instanceOf: HostError });
  t.regex(e!.message, new RegExp(`sha256 now ${sha256(edited)}, the run wrote ${sha256(AFTER)}.*the backup is /w/config_local.py.bak`));
  const [forced] = planWebRollback('web-1', record, { current: file(edited), backup: file(BEFORE) }, true);
  t.true(forced!.changed);
  t.regex(forced!.summary, /--force: edited since; kept as a .bak/);
});

test('web: a created file is removed, a missing or different backup is refused, restart follows the change', (t) => {
  const [rm, restart] = planWebRollback('web-1', created, { current: file(AFTER) }, false, 'systemctl restart httpd');
  t.regex(rm!.summary, /^remove \/w\/config_local.py, which the run created/);
  t.true(restart!.changed);
  t.false(planWebRollback('web-1', created, {}, false, 'x')[1]!.changed);
  t.throws(() => planWebRollback('web-1', record, { current: file(AFTER) }, false), { message: /backup .* is missing/ });
  t.throws(() => planWebRollback('web-1', record, { current: file(AFTER), backup: file('other') }, false), { message: /not the file as it was before the run/ });
});

const facts = (over: Partial<DbFacts> = {}): DbFacts => ({
  serverVersionNum: 150000,
  role: { name: 'pem_user_settings', canLogin: true, superuser: false, validUntil: null, verifier: { reveal: () => null } as never },
  grantee: { name: 'pem_user', canLogin: false },
  databases: [
    { name: 'postgres', owner: 'postgres', allowConnections: true, isTemplate: false, acl: [{ grantee: 'postgres', isPublic: false, grantor: 'postgres', privilege: 'CONNECT', grantable: false }], onlyPublicConnect: [] },
    { name: 'pem_user_settings', owner: 'postgres', allowConnections: true, isTemplate: false, acl: [], onlyPublicConnect: [] },
  ],
  settingsDb: { database: 'pem_user_settings', publicSchema: null, defaultAcls: [
    { objectType: 'tables', schema: null, acl: ['SELECT', 'INSERT'].map((p) => ({ grantee: 'pem_user', isPublic: false, grantor: 'pem_user_settings', privilege: p, grantable: false })) },
  ] },
  ...over,
});

const deployed: DbRecord[] = [
  { kind: 'role', role: 'pem_user_settings', created: true, loginGranted: true, passwordChanged: true },
  { kind: 'database', database: 'pem_user_settings', created: true },
  { kind: 'connect', database: 'pem_user_settings', revokedFrom: 'PUBLIC', grantedTo: 'pem_user_settings' },
  { kind: 'revoke-connect', database: 'postgres', from: 'PUBLIC' },
  { kind: 'default-privileges', database: 'pem_user_settings', forRole: 'pem_user_settings', grantee: 'pem_user', objectType: 'tables', privileges: ['SELECT', 'INSERT'] },
];

test('database: re-grant what the run revoked, remove its default privileges, keep what it created', (t) => {
  const steps = planDatabaseRollback('pg', deployed, facts(), false);
  t.deepEqual(steps.filter((s) => s.changed).map((s) => s.statements.join(' ')), [
    'GRANT CONNECT ON DATABASE "postgres" TO PUBLIC;',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "pem_user_settings" REVOKE SELECT, INSERT ON TABLES FROM "pem_user";',
  ]);
  t.false(steps.some((s) => /DROP/.test(s.statements.join(' '))));
});

test('database: --purge dumps and drops only what the run created; a second rollback changes nothing', (t) => {
  const purge = planDatabaseRollback('pg', deployed, facts(), true).filter((s) => s.changed);
  t.deepEqual(purge.map((s) => s.step), ['connect on postgres for PUBLIC', 'drop database pem_user_settings', 'drop role pem_user_settings']);
  t.is(purge[1]!.dump, 'pem_user_settings');
  const notCreated = deployed.filter((r) => r.kind !== 'database' && r.kind !== 'role');
  t.false(planDatabaseRollback('pg', notCreated, facts(), true).some((s) => /DROP/.test(s.statements.join(' '))));
  const after = facts({
    role: null, settingsDb: null,
    databases: [{ name: 'postgres', owner: 'postgres', allowConnections: true, isTemplate: false, acl: null, onlyPublicConnect: [] }],
  });
  t.false(planDatabaseRollback('pg', deployed, after, true).some((s) => s.changed));
});
