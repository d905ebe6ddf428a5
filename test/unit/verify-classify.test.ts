import test from 'ava';
import {
  backendStepName, classifyBackend, classifyForbidden, classifyParser, classifyPrimary, classifyUriDrift, type Verdict,
} from '../../tasks/verify/classify.ts';
import type { BackendProbe } from '../../tasks/verify/probe.ts';

const primary = { host: '10.0.0.10', port: 5432 };
const standby = { host: '10.0.0.11', port: 5432 };
const tls = { on: true, version: 'TLSv1.3' };
const good: BackendProbe = { target: primary, auth: 'scram-sha-256', tls, inRecovery: false, write: { ok: true } };
const goodStandby: BackendProbe = { target: standby, auth: 'scram-sha-256', tls, inRecovery: true };

const backendCases: [string, BackendProbe, Verdict['status'], RegExp][] = [
  ['a primary with TLS, SCRAM and a writable public schema is ok', good, 'ok',
    /^TLS \(TLSv1\.3\), SCRAM-SHA-256 authentication; the primary: created, wrote and dropped a table in public$/],
  ['a read-only standby is fine and says why', goodStandby, 'ok', /a standby \(in recovery, read-only\): fine, target_session_attrs=read-write/],
  ['a wrong password names the URI and what to do', { target: primary, failure: { stage: 'session', code: '28P01', message: 'password authentication failed for user "u"' } },
    'failed', /password authentication failed for user "u": the password in CONFIG_DATABASE_URI is not the role's \(run deploy\)/],
  ['a missing pg_hba rule says no rule lets the web host in', { target: primary, failure: { stage: 'session', code: '28000', message: 'no pg_hba.conf entry for host "10.0.2.5"' } },
    'failed', /no pg_hba\.conf entry .*\(no pg_hba\.conf rule lets this web host in with TLS and SCRAM: run deploy\)/],
  ['TLS refused points at ssl = off', { target: primary, failure: { stage: 'tls', message: 'The server does not support SSL connections' } },
    'failed', /^TLS refused: The server does not support SSL connections \(is ssl off/],
  ['an unreachable address says the web host cannot reach it', { target: primary, failure: { stage: 'forward', message: 'the web host cannot open a TCP connection to it: Connection refused' } },
    'failed', /cannot open a TCP connection to it: Connection refused/],
  ['a missing database says deploy creates it', { target: primary, failure: { stage: 'session', code: '3D000', message: 'database "s" does not exist' } },
    'failed', /database "s" does not exist \(run deploy: it creates s\)/],
  ['md5 authentication is not SCRAM', { ...good, auth: 'md5' }, 'failed', /authenticated the role by md5, not SCRAM-SHA-256/],
  ['trust is not SCRAM either', { ...good, auth: 'trust' }, 'failed', /by trust, not SCRAM-SHA-256/],
  ['no CREATE on public is a failure with the grant to fix it', { ...good, write: { ok: false, code: '42501', message: 'permission denied for schema public' } },
    'failed', /creating a table in public failed: permission denied for schema public \(run deploy: the role needs USAGE, CREATE ON SCHEMA public\)/],
  ['a session without TLS is a failure', { ...good, tls: { on: false } }, 'failed', /not encrypted: TLS is required/],
];
for (const [name, probe, status, message] of backendCases) {
  test(`backend: ${name}`, (t) => {
    const v = classifyBackend(probe, 'u', 's');
    t.is(v.status, status);
    t.regex(v.message, message);
  });
}

test('the backend step names the address and, once known, whether it is the primary', (t) => {
  t.is(backendStepName(good), 'backend 10.0.0.10:5432 (primary)');
  t.is(backendStepName(goodStandby), 'backend 10.0.0.11:5432 (standby)');
  t.is(backendStepName({ target: { host: 'fd00::1', port: 5432 }, failure: { stage: 'tls', message: 'x' } }), 'backend [fd00::1]:5432');
});

const forbiddenCases: [string, Parameters<typeof classifyForbidden>[1], Verdict['status'], RegExp][] = [
  ['a session that opens is a failure: CONNECT leaks', { connected: true }, 'failed', /the role can connect to pem: CONNECT is granted to it or to PUBLIC \(run deploy\)/],
  ['a pg_hba refusal is the wanted outcome', { connected: false, failure: { stage: 'session', code: '28000', message: 'pg_hba.conf rejects connection' } }, 'ok', /^refused as it must be: pg_hba\.conf rejects/],
  ['a missing CONNECT privilege is the wanted outcome', { connected: false, failure: { stage: 'session', code: '42501', message: 'permission denied for database "pem"' } }, 'ok', /refused as it must be: permission denied/],
  ['a database that does not exist cannot be reached', { connected: false, failure: { stage: 'session', code: '3D000', message: 'database "pem" does not exist' } }, 'ok', /database pem does not exist/],
  ['a wrong password proves nothing', { connected: false, failure: { stage: 'session', code: '28P01', message: 'password authentication failed' } }, 'skipped', /not checked: .*password is wrong/],
  ['no TLS: not checked, the backend step says why', { connected: false, failure: { stage: 'tls', message: 'The server does not support SSL connections' } }, 'skipped', /^not checked: TLS refused/],
  ['another server error cannot be judged', { connected: false, failure: { stage: 'session', code: '53300', message: 'too many connections' } }, 'failed', /could not check: too many connections/],
];
for (const [name, probe, status, message] of forbiddenCases) {
  test(`forbidden database: ${name}`, (t) => {
    const v = classifyForbidden('pem', probe);
    t.is(v.status, status);
    t.regex(v.message, message);
  });
}

const primaryCases: [string, BackendProbe[], Verdict['status'], RegExp][] = [
  ['one writable primary among standbys holds, whatever the order', [goodStandby, good], 'ok', /^10\.0\.0\.10:5432 is the one writable primary/],
  ['only standbys: nothing can save settings', [goodStandby], 'failed', /no backend of the URI is a writable primary: the web app cannot save settings/],
  ['two primaries: split brain', [good, { ...good, target: standby }], 'failed', /more than one primary in the URI: 10\.0\.0\.10:5432, 10\.0\.0\.11:5432/],
  ['a primary the role cannot write to', [{ ...good, write: { ok: false, message: 'x' } }], 'failed', /is the primary but the role cannot write there/],
  ['backends not reached are named', [goodStandby, { target: primary, failure: { stage: 'tls', message: 'x' } }], 'failed', /not reached: 10\.0\.0\.10:5432/],
];
for (const [name, probes, status, message] of primaryCases) {
  test(`primary: ${name}`, (t) => {
    const v = classifyPrimary(probes);
    t.is(v.status, status);
    t.regex(v.message, message);
  });
}

test('parser: an accepted URI lists the hosts the web app will try', (t) => {
  const v = classifyParser({ status: 'parsed', python: '/usr/bin/python3', sqlalchemy: '2.0.52',
    args: { host: 'h1,h2', port: 5432, user: 'u', dbname: 's', password: '********', target_session_attrs: 'read-write' } }, 2);
  t.is(v.status, 'ok');
  t.is(v.message, 'SQLAlchemy 2.0.52 (/usr/bin/python3) accepts it: host(s) h1:5432, h2:5432, user u, database s, target_session_attrs=read-write');
  t.is(v.warnings, undefined);
});

test('parser: several hosts without target_session_attrs=read-write is a warning', (t) => {
  const v = classifyParser({ status: 'parsed', python: 'p', sqlalchemy: '2', args: { host: 'h1,h2', port: 5432, user: 'u', dbname: 's' } }, 2);
  t.is(v.status, 'ok');
  t.regex(v.warnings?.[0] ?? '', /without target_session_attrs=read-write/);
});

test('parser: a rejected URI is a failure that says the web app would not start, with the parser\'s message', (t) => {
  const v = classifyParser({ status: 'rejected', python: '/usr/bin/python3', sqlalchemy: '2.0.52', error: "ValueError: invalid literal for int() with base 10: '5432,h2:5433'" }, 2);
  t.is(v.status, 'failed');
  t.regex(v.message, /^the web app would not start: SQLAlchemy 2\.0\.52 \(\/usr\/bin\/python3\) rejects the URI after the postgresql\+psycopg:\/\/ rewrite: ValueError: invalid literal/);
});

test('parser: no parser to ask is a warning, not a failure', (t) => {
  const v = classifyParser({ status: 'unavailable', reason: 'python3 cannot import sqlalchemy' }, 1);
  t.is(v.status, 'skipped');
  t.deepEqual(v.warnings, ['parser could not be checked: python3 cannot import sqlalchemy']);
});

test('parser: a broken pem_web_python is a failure', (t) => {
  t.is(classifyParser({ status: 'broken', reason: 'pem_web_python /x is not an executable on the host' }, 1).status, 'failed');
});

const desired = 'postgresql://pem_user_settings:right-pass-word@h1,h2:5432/pem_user_settings?target_session_attrs=read-write';
const driftCases: [string, string, Verdict['status'], RegExp][] = [
  ['the URI deploy writes is no drift', desired, 'ok', /is what deploy writes/],
  ['another password is named as such, without showing either', desired.replace('right-pass-word', 'wrong-pass'), 'failed', /^the password in CONFIG_DATABASE_URI is not PEM_SETTINGS_PASSWORD \(run deploy\)$/],
  ['another host list shows both URIs masked', 'postgresql://pem_user_settings:wrong-pass@h1:5432,h2:5432/pem_user_settings', 'failed',
    /^CONFIG_DATABASE_URI differs from what deploy would write \(run deploy\): the file has postgresql:\/\/pem_user_settings:\*{8}@h1:5432,h2:5432\/pem_user_settings, deploy writes postgresql:\/\/pem_user_settings:\*{8}@h1,h2:5432/],
];
for (const [name, actual, status, message] of driftCases) {
  test(`uri drift: ${name}`, (t) => {
    const v = classifyUriDrift(actual, desired);
    t.is(v.status, status);
    t.regex(v.message, message);
    t.false(v.message.includes('right-pass-word') || v.message.includes('wrong-pass'));
  });
}
