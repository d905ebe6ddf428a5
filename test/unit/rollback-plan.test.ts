import test from 'ava';
import { HostError } from '../../src/errors.ts';
import { sha256, type FileFact } from '../../src/remote/read-files.ts';
import type { DbFacts } from '../../tasks/database/facts.ts';
import type { DbRecord } from '../../tasks/database/plan.ts';
import { planDatabaseRollback } from '../../tasks/rollback/database.ts';
import type { WebFileRecord } from '../../tasks/deploy/web.ts';
import { planWebRollback, type WebRollbackFacts } from '../../tasks/rollback/web.ts';

const BEFORE = 'SERVER_MODE = True\n';
const AFTER = 'SERVER_MODE = True\nCONFIG_DATABASE_URI = "postgresql://u:p@h:5432/db"\n';
const PATH = '/w/config_local.py';
const record: WebFileRecord = { file: PATH, target: PATH, created: false, backup: `${PATH}.bak`, sha256Before: sha256(BEFORE), sha256After: sha256(AFTER), owner: '', mode: '640' };
const created: WebFileRecord = { ...record, created: true, backup: null, sha256Before: null };
const file = (text: string, path = PATH): FileFact => {
  const bytes = Buffer.from(text);
  return { state: 'present', path, target: path, bytes, sha256: sha256(bytes), mode: '640', uid: 0, gid: 0 };
};
const absent: FileFact = { state: 'absent', path: PATH };
const plan = (r: WebFileRecord, facts: WebRollbackFacts, force = false, restart?: string) =>
  planWebRollback('web-1', r, facts, { force, runId: 'R1', ...(restart ? { restart } : {}) });

test('web: restore when the file is what the run wrote; ok when already restored; the diff masks the password', (t) => {
  const c = plan(record, { current: file(AFTER), backup: file(BEFORE, `${PATH}.bak`) });
  t.true(c.file.changed);
  t.regex(c.file.summary, /^restore \/w\/config_local.py from \/w\/config_local.py.bak$/);
  t.notRegex(c.file.diff!.before, /u:p@/);
  t.deepEqual(c.restore?.bytes, Buffer.from(BEFORE), 'the backup\'s bytes go back');
  const ok = plan(record, { current: file(BEFORE), backup: file(BEFORE) });
  t.false(ok.file.changed);
});

test('web: an edited file is refused with both checksums unless --force', (t) => {
  const edited = AFTER + '# by hand\n';
  const e = t.throws(() => plan(record, { current: file(edited), backup: file(BEFORE) }), { instanceOf: HostError });
  t.regex(e!.message, new RegExp(`sha256 now ${sha256(edited)}, the run wrote ${sha256(AFTER)}.*the backup is /w/config_local.py.bak`));
  const forced = plan(record, { current: file(edited), backup: file(BEFORE) }, true);
  t.true(forced.file.changed);
  t.regex(forced.file.summary, /--force: edited since; kept as a .bak/);
  t.is(forced.keepEditedAs, `${PATH}.pem-settings-rollback-R1.bak`);
});

test('web: a created file is removed, a missing or different backup is refused, restart follows the change', (t) => {
  const rm = plan(created, { current: file(AFTER) }, false, 'systemctl restart httpd');
  t.regex(rm.file.summary, /^remove \/w\/config_local.py, which the run created/);
  t.true(rm.restart!.changed);
  t.false(plan(created, { current: absent }, false, 'x').restart!.changed);
  t.throws(() => plan(record, { current: file(AFTER) }), { message: /backup .* is missing/ });
  t.throws(() => plan(record, { current: file(AFTER), backup: file('other') }), { message: /not the file as it was before the run/ });
});

const facts = (over: Partial<DbFacts> = {}): DbFacts => ({
  serverVersionNum: 150000,
  role: { name: 'pem_user_settings', canLogin: true, superuser: false, validUntil: null, verifier: { reveal: () => null } as never },
  grantee: { name: 'pem_user', canLogin: false },
  databases: [
    { name: 'postgres', owner: 'postgres', allowConnections: true, isTemplate: false, acl: [{ grantee: 'postgres', isPublic: false, grantor: 'postgres', privilege: 'CONNECT', grantable: false }], onlyPublicConnect: [] },
    { name: 'pem_user_settings', owner: 'postgres', allowConnections: true, isTemplate: false, acl: [], onlyPublicConnect: [] },
  ],
  settingsDb: { database: 'pem_user_settings', tables: 0, publicSchema: null, defaultAcls: [
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
