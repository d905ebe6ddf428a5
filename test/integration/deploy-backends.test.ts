// deploy, stages 1–3 on the lab (issue 9): the settings database on the primary and the
// pg_hba.conf rule on both backends, with real sshd, sudo and Postgres.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, connectFrom, hostFile, NASTY_PASSWORD, recapLine, sql } from './helpers.ts';

const HBA = '/var/lib/postgresql/15/main/pg_hba.conf';
let lab: Lab;
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };

test.before(async () => {
  lab = await startLab({ name: 'dep9', subnet: '10.231.10.0/24' });
});
test.after.always(async () => {
  await lab?.stop();
});

async function catalogState(): Promise<string> {
  return [
    await sql(lab, 'pg-primary', `SELECT datname, datacl FROM pg_database ORDER BY datname`),
    await sql(lab, 'pg-primary', `SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1`),
  ].join('\n');
}

// The tests run in order: each builds on the state the previous one left, as an operator would.
test.serial('--check on a fresh lab reports what would change and changes nothing', async (t) => {
  const catalogBefore = await catalogState();
  const hbaBefore = await Promise.all(['pg-primary', 'pg-standby'].map((h) => hostFile(lab, h, HBA)));
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--diff'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(r.stdout, /check mode/);
  t.regex(r.stdout, /\+hostssl pem_user_settings pem_user_settings 10\.231\.10\.64\/26 scram-sha-256\n host +all +all +0\.0\.0\.0\/0 +reject/);
  t.regex(r.stdout, /CREATE ROLE "pem_user_settings" LOGIN PASSWORD '\*\*\*\*\*\*\*\*'/);
  t.regex(recapLine(r.stdout, 'pg-primary'), /changed=[1-9]/);
  t.is(await catalogState(), catalogBefore);
  const hbaAfter = await Promise.all(['pg-primary', 'pg-standby'].map((h) => hostFile(lab, h, HBA)));
  t.deepEqual(hbaAfter, hbaBefore);
  t.false(r.stdout.includes(NASTY_PASSWORD));
});

test.serial('first deploy creates the database, grants and the pg_hba rule on both backends', async (t) => {
  const hbaBefore = (await hostFile(lab, 'pg-primary', HBA)).toString();
  await sql(lab, 'pg-primary', `ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf();`);
  const r = await cli(['deploy', '-i', lab.inventoryPath], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(recapLine(r.stdout, 'pg-primary'), /changed=[1-9]\d*  failed=0  unreachable=0/);
  t.regex(recapLine(r.stdout, 'pg-standby'), /changed=1  failed=0/);
  t.regex(r.stdout, /WARNING.*locks out login roles.*report_reader/);
  // psql on PATH is Debian's pg_wrapper (a Perl program): the psql it would run is run directly.
  for (const h of ['pg-primary', 'pg-standby']) t.regex(r.stdout, new RegExp(`${h}: server: ok - .*psql /usr/lib/postgresql/15/bin/psql`), h);

  // The catalog holds exactly the privileges of SPEC section 1.
  t.is(await sql(lab, 'pg-primary', `SELECT datacl FROM pg_database WHERE datname = 'pem_user_settings'`),
    '{=T/postgres,postgres=CTc/postgres,pem_user_settings=c/postgres}');
  t.notRegex(await sql(lab, 'pg-primary', `SELECT datacl FROM pg_database WHERE datname = 'postgres'`), /(^|[{,])=[^,}]*c/);
  t.notRegex(await sql(lab, 'pg-primary', `SELECT datacl FROM pg_database WHERE datname = 'pem'`), /(^|[{,])=[^,}]*c/);
  t.is(await sql(lab, 'pg-primary', `SELECT defaclobjtype::text || ':' || array_to_string(defaclacl, ',') FROM pg_default_acl ORDER BY 1`, 'pem_user_settings'),
    // The role's own entries are implicit in every default ACL; pem_user's are what we added.
    'S:pem_user=rw/pem_user_settings,pem_user_settings=rwU/pem_user_settings\n' +
    'r:pem_user=arwd/pem_user_settings,pem_user_settings=arwdDxt/pem_user_settings');
  t.regex(await sql(lab, 'pg-primary', `SELECT array_to_string(nspacl, ',') FROM pg_namespace WHERE nspname = 'public'`, 'pem_user_settings'),
    /pem_user_settings=UC\//);

  // The rule sits right before the catch-all reject, and every other byte is unchanged.
  for (const h of ['pg-primary', 'pg-standby']) {
    const after = (await hostFile(lab, h, HBA)).toString();
    const rule = 'hostssl pem_user_settings pem_user_settings 10.231.10.64/26 scram-sha-256\n';
    t.true(after.includes(rule + 'host    all             all             0.0.0.0/0               reject'), h);
    t.is(after.replace(rule, ''), hbaBefore);
  }

  // What the web hosts will do: TLS + SCRAM from a web host works; without TLS, or from the outsider, refused.
  const web1 = `host=${lab.host('pg-primary').address} dbname=pem_user_settings user=pem_user_settings`;
  const ok = await connectFrom(lab, 'web-1', `${web1} sslmode=require`, NASTY_PASSWORD, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), 't');
  const plain = await connectFrom(lab, 'web-1', `${web1} sslmode=disable`, NASTY_PASSWORD);
  t.not(plain.code, 0);
  t.regex(plain.stderr, /no pg_hba.conf entry|rejects connection/);
  const outsider = await connectFrom(lab, 'outsider', `${web1} sslmode=require`, NASTY_PASSWORD);
  t.not(outsider.code, 0);
  const standby = await connectFrom(lab, 'web-2', `host=${lab.host('pg-standby').address} dbname=pem_user_settings user=pem_user_settings sslmode=require`, NASTY_PASSWORD);
  t.is(standby.code, 0, `the standby took the rule and the reload too: ${standby.stderr}`);

  // The role cannot reach pem or postgres; PEM's own users still reach pem.
  for (const db of ['pem', 'postgres']) {
    t.false(await sql(lab, 'pg-primary', `SELECT has_database_privilege('pem_user_settings', '${db}', 'CONNECT')`) === 't', db);
  }
  t.is(await sql(lab, 'pg-primary', `SELECT has_database_privilege('pem_admin1', 'pem', 'CONNECT')`), 't');
  // …and really connects: a PEM user (member of pem_user) logs in to pem from a web host.
  await sql(lab, 'pg-primary', `ALTER ROLE pem_admin1 PASSWORD 'pem-admin-password-1'`);
  const pemUser = await connectFrom(lab, 'web-1', `host=${lab.host('pg-primary').address} dbname=pem user=pem_admin1 sslmode=require`, 'pem-admin-password-1', 'SELECT current_database()');
  t.is(pemUser.code, 0, pemUser.stderr);
  t.is(pemUser.stdout.trim(), 'pem');
  t.is(await sql(lab, 'pg-primary', `SELECT has_database_privilege('pem_agent', 'pem', 'CONNECT')`), 't');

  // The password appears in no output and not in the server log (the verifier may).
  t.false((r.stdout + r.stderr).includes(NASTY_PASSWORD));
  const log = (await readFile(serverLog(lab, 'pg-primary'))).toString();
  t.regex(log, /CREATE ROLE/, 'log_statement=all did log the statements');
  t.false(log.includes(NASTY_PASSWORD));
  t.false(log.includes('pä ss'));
  await sql(lab, 'pg-primary', `ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf();`);
});

test.serial('a second deploy changes nothing and leaves pg_hba.conf byte-identical', async (t) => {
  const before = await Promise.all(['pg-primary', 'pg-standby'].map((h) => hostFile(lab, h, HBA)));
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--json'], env);
  t.is(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  for (const [name, host] of Object.entries<{ changed: number; failed: number }>(doc.hosts)) {
    t.is(host.changed, 0, name);
    t.is(host.failed, 0, name);
  }
  t.deepEqual(await Promise.all(['pg-primary', 'pg-standby'].map((h) => hostFile(lab, h, HBA))), before);
});

test.serial('a changed password is detected through the stored SCRAM verifier and updated', async (t) => {
  const other = 'another-long-password-2';
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--limit', 'pg-primary'], { PEM_SETTINGS_PASSWORD: other });
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(r.stdout, /role pem_user_settings: changed/);
  t.regex(recapLine(r.stdout, 'pg-primary'), /changed=1 /);
  const ok = await connectFrom(lab, 'web-3', `host=${lab.host('pg-primary').address} dbname=pem_user_settings user=pem_user_settings sslmode=require`, other);
  t.is(ok.code, 0, ok.stderr);
  const back = await cli(['deploy', '-i', lab.inventoryPath, '--limit', 'pg-primary'], env);
  t.regex(recapLine(back.stdout, 'pg-primary'), /changed=1 /);
});

test.serial('a backend whose psql is not on PATH is still served (the server\'s own bin directory)', async (t) => {
  // Hide psql on the standby: /usr/bin/psql becomes a non-executable empty file in its mount namespace.
  const hide = await lab.exec('pg-standby', ['mount', '--bind', '/dev/null', '/usr/bin/psql']);
  t.is(hide.code, 0, hide.stderr);
  try {
    await sql(lab, 'pg-standby', '').catch(() => undefined);
    const r = await cli(['deploy', '-i', lab.inventoryPath, '--limit', 'backends'], env);
    t.is(r.code, 0, r.stderr + r.stdout);
    t.regex(r.stdout, /pg-standby: server: ok - .*psql \/usr\/lib\/postgresql\/15\/bin\/psql/);
  } finally {
    await lab.exec('pg-standby', ['umount', '/usr/bin/psql']);
  }
});

test.serial('psql is never given the password or a statement on its command line', async (t) => {
  // Sample ps on the primary while a deploy runs with a fresh password.
  const fresh = `ps-probe-${Date.now()}-xyz`;
  let sampling = true;
  const seen: string[] = [];
  const sampler = (async () => {
    while (sampling) {
      const ps = await lab.exec('pg-primary', ['ps', '-eo', 'args']);
      seen.push(ps.stdout);
    }
  })();
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--limit', 'pg-primary'], { PEM_SETTINGS_PASSWORD: fresh });
  sampling = false;
  await sampler;
  t.is(r.code, 0, r.stderr);
  t.true(seen.length > 0);
  // Command lines only: a Postgres server process shows the statement it runs as its title
  // ("postgres: postgres postgres [local] ALTER ROLE", for this lab or another one on the
  // machine: lab hosts share its process table), which is no command line anybody gave it.
  const all = seen.join('\n').split('\n').filter((l) => !l.startsWith('postgres: ')).join('\n');
  t.false(all.includes(fresh));
  t.false(/ALTER ROLE|CREATE ROLE|SCRAM-SHA-256/.test(all));
  await cli(['deploy', '-i', lab.inventoryPath, '--limit', 'pg-primary'], env);
});

/** The lab keeps each backend's server log in the host's own directory. */
function serverLog(l: Lab, host: string): string {
  return join(l.dir, 'hosts', host, 'pglog', 'postgresql.log');
}
