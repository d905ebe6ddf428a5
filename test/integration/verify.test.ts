// verify on the lab (issue 10, SPEC 5): after deploy every check holds from every web host; each
// way the settings can break is reported as a failure that names the host, the backend and why.
// verify runs in this process through the command function (the CLI wiring is the lead's).
import test from 'ava';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, hostFile, NASTY_PASSWORD, recapLine, sql, webappConsumer } from './helpers.ts';
import { main } from '../../src/cli.ts';
import { pemJob } from '../../tasks/job.ts';
import { pythonStringLiteral, readConfigValue, setConfigValue } from '../../tasks/config-local/edit.ts';
import { percentEncode, settingsUri } from '../../tasks/config-local/uri.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const HBA = '/var/lib/postgresql/15/main/pg_hba.conf';
const WEBS = ['web-1', 'web-2', 'web-3'];
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };
let lab: Lab;
let inventory: string;
let desired: string;
let primary: string;
let standby: string;

test.before(async () => {
  lab = await startLab({ name: 'ver30', subnet: '10.231.30.0/24' });
  primary = `${lab.host('pg-primary').address}:5432`;
  standby = `${lab.host('pg-standby').address}:5432`;
  // The web app's Python: Debian's python3 (python3-psycopg) with the pinned SQLAlchemy 2.0.52.
  const python = `${lab.dir}/web-python`;
  const { vendor } = await webappConsumer(lab);
  await writeFile(python, `#!/bin/sh\nPYTHONPATH='${vendor}' exec /usr/bin/python3 "$@"\n`);
  await chmod(python, 0o755);
  inventory = `${lab.dir}/verify.ini`;
  await writeFile(inventory, (await readFile(lab.inventoryPath, 'utf8')) + `\n[webhosts:vars]\npem_web_python=${python}\npem_web_user=www-data\n`);
  desired = settingsUri({
    user: 'pem_user_settings', password: NASTY_PASSWORD, database: 'pem_user_settings',
    backends: [lab.host('pg-primary'), lab.host('pg-standby')].map((h) => ({ host: h.address, port: 5432 })),
    security: { channelBinding: true },
  }).uri;

  const r = await cli(['deploy', '-i', inventory], env);
  if (r.code !== 0) throw new Error(`deploy failed: ${r.stdout}${r.stderr}`);
  // Whether or not deploy already has its web-host stage, every file ends up with deploy's URI.
  for (const h of WEBS) await setUri(h, desired);
});
test.after.always(async () => {
  await lab?.stop();
});

async function configText(host: string): Promise<string> {
  return (await hostFile(lab, host, FILE).catch(() => Buffer.from(''))).toString('utf8');
}

/** Puts CONFIG_DATABASE_URI into a web host's file as deploy does: 0640, group www-data. */
async function setUri(host: string, uri: string): Promise<void> {
  const text = setConfigValue(await configText(host), 'CONFIG_DATABASE_URI', pythonStringLiteral(uri)).newText;
  const r = await lab.exec(host, ['sh', '-c', `cat > ${FILE} && chmod 0640 ${FILE} && chgrp www-data ${FILE}`], { input: text });
  if (r.code !== 0) throw new Error(r.stderr);
}

async function verify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return verifyWith(inventory, ...args);
}

async function verifyWith(inventoryFile: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  let code = -1;
  const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s), isTTY: false };
  const saved = process.env['PEM_SETTINGS_PASSWORD'];
  process.env['PEM_SETTINGS_PASSWORD'] = NASTY_PASSWORD;
  try {
    code = await main(['verify', '-i', inventoryFile, ...args], pemJob, io);
  } finally {
    if (saved === undefined) delete process.env['PEM_SETTINGS_PASSWORD'];
    else process.env['PEM_SETTINGS_PASSWORD'] = saved;
  }
  return { code, stdout, stderr };
}

const line = (out: string, host: string, step: string) => out.split('\n').find((l) => l.startsWith(`[${host.startsWith('pg-') ? 'facts' : 'web'}] ${host}: ${step}: `)) ?? '';

test.serial('after deploy every check holds from every web host, and nothing is changed', async (t) => {
  const before = await Promise.all([...WEBS.map((h) => hostFile(lab, h, FILE)), hostFile(lab, 'pg-primary', HBA), hostFile(lab, 'pg-standby', HBA)]);
  const tablesBefore = await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_class WHERE relname LIKE 'pem_settings_verify%'`, 'pem_user_settings');
  const r = await verify();
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const h of WEBS) {
    t.regex(line(r.stdout, h, 'uri parses with the web app\'s parser'), /: ok - SQLAlchemy 2\.0\.52 .* accepts it: host\(s\) 10\.231\.30\.\d+:5432, 10\.231\.30\.\d+:5432, .*target_session_attrs=read-write/);
    t.regex(line(r.stdout, h, `backend ${primary} (primary)`), /: ok - TLS \(TLSv1\.\d\), SCRAM-SHA-256 authentication; the primary: created, wrote and dropped a table in public/);
    t.regex(line(r.stdout, h, `backend ${standby} (standby)`), /: ok - .*a standby \(in recovery, read-only\)/);
    for (const db of ['pem', 'postgres']) t.regex(line(r.stdout, h, `backend ${primary}: cannot connect to ${db}`), /: ok - refused as it must be: /);
    t.regex(line(r.stdout, h, 'primary'), new RegExp(`: ok - ${primary} is the one writable primary`));
    t.regex(line(r.stdout, h, 'uri drift'), /: ok - CONFIG_DATABASE_URI is what deploy writes/);
    t.regex(line(r.stdout, h, 'www-data can read config_local.py'), /: ok/);
    t.regex(recapLine(r.stdout, h), /ok=\d+ +changed=0 +failed=0 +unreachable=0/);
  }
  t.regex(line(r.stdout, 'pg-standby', 'pg_hba.conf rule'), /: ok - rule already effective/);
  t.regex(line(r.stdout, 'pg-primary', 'catalog: role pem_user_settings'), /: ok - .*password up to date/);
  t.false((r.stdout + r.stderr).includes(NASTY_PASSWORD));
  const after = await Promise.all([...WEBS.map((h) => hostFile(lab, h, FILE)), hostFile(lab, 'pg-primary', HBA), hostFile(lab, 'pg-standby', HBA)]);
  t.deepEqual(after, before);
  t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_class WHERE relname LIKE 'pem_settings_verify%'`, 'pem_user_settings'), tablesBefore);
});

test.serial('--json gives one document with every host\'s steps', async (t) => {
  const r = await verify('--json', '--limit', 'web-1:pg-primary');
  t.is(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout);
  t.is(doc.command, 'verify');
  t.true(doc.ok);
  t.deepEqual(Object.keys(doc.hosts).sort(), ['pg-primary', 'web-1']);
  t.true(doc.hosts['web-1'].steps.some((s: { step: string; status: string }) => s.step === `backend ${primary} (primary)` && s.status === 'ok'));
});

test.serial('a wrong password in one file fails that web host only, naming the backends and the drift', async (t) => {
  const wrong = 'wrong-Passw0rd-for-verify';
  await setUri('web-2', desired.replace(percentEncode(NASTY_PASSWORD), wrong));
  t.is(readConfigValue(await configText('web-2'), 'CONFIG_DATABASE_URI')!.includes(wrong), true);
  try {
    const r = await verify();
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'web-2', `backend ${primary}`), /: failed - password authentication failed for user "pem_user_settings": the password in CONFIG_DATABASE_URI is not the role's \(run deploy\)/);
    t.regex(line(r.stdout, 'web-2', 'uri drift'), /: failed - the password in CONFIG_DATABASE_URI is not PEM_SETTINGS_PASSWORD/);
    t.regex(line(r.stdout, 'web-2', 'primary'), /: failed - no backend of the URI is a writable primary/);
    t.regex(recapLine(r.stdout, 'web-1'), /failed=0/);
    t.regex(recapLine(r.stdout, 'web-2'), /failed=[1-9]/);
    t.false(r.stdout.includes(wrong), 'the wrong password is masked too');
    t.false(r.stdout.includes(NASTY_PASSWORD));
  } finally {
    await setUri('web-2', desired);
  }
});

test.serial('a pg_hba rule removed on one backend is drift there and a refused session from every web host', async (t) => {
  const saved = await hostFile(lab, 'pg-standby', HBA);
  const without = saved.toString().split('\n').filter((l) => !l.startsWith('hostssl pem_user_settings')).join('\n');
  await lab.exec('pg-standby', ['sh', '-c', `cat > ${HBA}`], { input: without });
  await sql(lab, 'pg-standby', 'SELECT pg_reload_conf()');
  try {
    const r = await verify();
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'pg-standby', 'pg_hba.conf rule'), /: failed - drift: deploy would insert "hostssl pem_user_settings pem_user_settings 10\.231\.30\.\d+\/\d+ scram-sha-256"/);
    for (const h of WEBS) {
      t.regex(line(r.stdout, h, `backend ${standby}`), /: failed - pg_hba\.conf rejects connection for host "10\.231\.30\.\d+", user "pem_user_settings", database "pem_user_settings", SSL encryption \(no pg_hba\.conf rule lets this web host in/);
      t.regex(line(r.stdout, h, 'primary'), /: ok/, 'the primary still serves the web app');
    }
    t.regex(recapLine(r.stdout, 'pg-primary'), /failed=0/);
  } finally {
    await lab.exec('pg-standby', ['sh', '-c', `cat > ${HBA}`], { input: saved });
    await sql(lab, 'pg-standby', 'SELECT pg_reload_conf()');
  }
});

test.serial('TLS turned off on one backend is reported by its facts and by every web host', async (t) => {
  await sql(lab, 'pg-standby', `ALTER SYSTEM SET ssl = off; SELECT pg_reload_conf();`);
  try {
    await waitFor(async () => (await sql(lab, 'pg-standby', 'SHOW ssl')) === 'off');
    const r = await verify();
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'pg-standby', 'ssl'), /: failed - ssl is off/);
    for (const h of WEBS) {
      t.regex(line(r.stdout, h, `backend ${standby}`), /: failed - TLS refused: The server does not support SSL connections \(is ssl off on this backend\?/);
      // The refused session is one failure, not one more per database that could not be tried.
      t.regex(line(r.stdout, h, `backend ${standby}: cannot connect to pem`), /: skipped - not checked: TLS refused/);
      t.regex(recapLine(r.stdout, h), /failed=1 /);
    }
  } finally {
    await sql(lab, 'pg-standby', `ALTER SYSTEM RESET ssl; SELECT pg_reload_conf();`);
    await waitFor(async () => (await sql(lab, 'pg-standby', 'SHOW ssl')) === 'on');
  }
});

test.serial('catalog drift on the primary is reported as a failure of the primary\'s facts', async (t) => {
  await sql(lab, 'pg-primary', 'GRANT CONNECT ON DATABASE pem TO PUBLIC');
  try {
    const r = await verify('--limit', 'backends');
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'pg-primary', 'catalog: revoke connect on pem'), /: failed - drift: deploy would .*pem/);
    t.regex(recapLine(r.stdout, 'pg-primary'), /failed=1 /);
  } finally {
    await sql(lab, 'pg-primary', 'REVOKE CONNECT ON DATABASE pem FROM PUBLIC');
  }
});

test.serial('a URI hand-edited into the documented h1:p1,h2:p2 form fails: the web app\'s parser rejects it', async (t) => {
  const handEdited = desired.replace(/@([^,]+),([^:]+):5432\/(\w+)\?.*$/, '@$1:5432,$2:5432/$3');
  t.regex(handEdited, /@10\.231\.30\.\d+:5432,10\.231\.30\.\d+:5432\/pem_user_settings$/);
  await setUri('web-3', handEdited);
  try {
    const r = await verify('--limit', 'web-3');
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'web-3', 'uri parses with the web app\'s parser'),
      /: failed - the web app would not start: SQLAlchemy 2\.0\.52 .* rejects the URI after the postgresql\+psycopg:\/\/ rewrite: ValueError: invalid literal for int\(\) with base 10: '5432,10\.231\.30\.\d+:5432'/);
    t.regex(line(r.stdout, 'web-3', 'uri drift'), /: failed - CONFIG_DATABASE_URI differs from what deploy would write \(run deploy\): the file has postgresql:\/\/pem_user_settings:\*\*\*\*\*\*\*\*@10\.231\.30\.\d+:5432,/);
    // The backends the URI names are still checked, so the operator sees every problem at once.
    t.regex(line(r.stdout, 'web-3', `backend ${primary} (primary)`), /: ok/);
    t.false(r.stdout.includes(NASTY_PASSWORD));
  } finally {
    await setUri('web-3', desired);
  }
});

test.serial('a pem_web_python that does not exist is a failure, not a silent skip', async (t) => {
  const saved = await readFile(inventory, 'utf8');
  await writeFile(inventory, saved.replace(/pem_web_python=.*/, 'pem_web_python=/opt/nowhere/python3'));
  try {
    const r = await verify('--limit', 'web-1');
    t.is(r.code, 1);
    t.regex(line(r.stdout, 'web-1', 'uri parses with the web app\'s parser'), /: failed - pem_web_python \/opt\/nowhere\/python3 is not an executable on the host/);
  } finally {
    await writeFile(inventory, saved);
  }
});

test.serial('without pem_web_python and no sqlalchemy on the host, the parser is a warning and verify still passes', async (t) => {
  const r = await verifyWith(lab.inventoryPath, '--limit', 'web-1');
  t.is(r.code, 0, r.stdout);
  t.regex(line(r.stdout, 'web-1', 'uri parses with the web app\'s parser'), /: skipped - parser could not be checked: /);
  t.regex(r.stdout, /WARNINGS\n- web-1: uri parses with the web app's parser: parser could not be checked: /);
});

test.serial('an unreachable web host is reported unreachable; the others are still verified', async (t) => {
  await lab.stopSshd('web-3');
  try {
    const r = await verify('--limit', 'webhosts', '--connect-timeout', '3');
    t.is(r.code, 1);
    t.regex(recapLine(r.stdout, 'web-3'), /unreachable=1/);
    t.regex(recapLine(r.stdout, 'web-1'), /failed=0 +unreachable=0/);
  } finally {
    await lab.startSshd('web-3');
  }
});

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for the server to reload');
}
