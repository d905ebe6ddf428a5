// Run records and rollback on the lab (issue 5): deploy, then undo it, byte for byte.
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, connectFrom, hostFile, NASTY_PASSWORD, recapLine, sql, webappConsumer } from './helpers.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const HBA = '/var/lib/postgresql/15/main/pg_hba.conf';
const WEBS = ['web-1', 'web-2', 'web-3'];
const BACKENDS = ['pg-primary', 'pg-standby'];
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };
let lab: Lab;
let CONSUMER: string;

test.before(async () => {
  lab = await startLab({ name: 'rb5', subnet: '10.231.12.0/24' });
  CONSUMER = (await webappConsumer(lab)).consumer;
});
test.after.always(async () => {
  await lab?.stop();
});

interface Snapshot {
  files: Map<string, string | undefined>;
  datacl: string;
}

async function snapshot(): Promise<Snapshot> {
  const files = new Map<string, string | undefined>();
  for (const h of WEBS) files.set(`${h}:${FILE}`, await hostFile(lab, h, FILE).then((b) => b.toString('base64'), () => undefined));
  for (const h of BACKENDS) files.set(`${h}:${HBA}`, (await hostFile(lab, h, HBA)).toString('base64'));
  // The privileges in effect: a NULL datacl means acldefault(), and an explicit ACL equal to it is the same.
  const datacl = await sql(lab, 'pg-primary', `SELECT datname || ' ' || coalesce(datacl, acldefault('d', datdba))::text FROM pg_database WHERE datname <> 'pem_user_settings' ORDER BY 1`);
  return { files, datacl };
}

const deploy = (...args: string[]) => cli(['deploy', '-i', lab.inventoryPath, ...args], env);
const rollback = (...args: string[]) => cli(['rollback', '-i', lab.inventoryPath, ...args], {});

async function records(): Promise<string[]> {
  const dir = join(lab.dir, '.pem-settings', 'runs');
  return (await readdir(dir)).sort();
}

test.serial('deploy then rollback: every file byte-identical, rule gone and reloaded, CONNECT as before, database kept', async (t) => {
  const before = await snapshot();
  const d = await deploy();
  t.is(d.code, 0, d.stdout + d.stderr);
  t.regex(d.stdout, /Run record: .*\.pem-settings\/runs\/.*\.json/);
  const recordText = await readFile(join(lab.dir, '.pem-settings', 'runs', (await records())[0]!), 'utf8');
  t.false(recordText.includes(NASTY_PASSWORD), 'no password in the run record');
  t.false(recordText.includes(encodeURIComponent(NASTY_PASSWORD)));
  const record = JSON.parse(recordText);
  t.is(record.kind, 'deploy');
  t.regex(record.hosts['web-2'].steps[0].record.sha256After, /^[0-9a-f]{64}$/);
  t.deepEqual(record.hosts['pg-standby'].steps[0].record.added, ['hostssl pem_user_settings pem_user_settings 10.231.12.64/26 scram-sha-256']);

  const check = await rollback('--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(recapLine(check.stdout, 'web-2'), /changed=1 /);
  t.notDeepEqual((await snapshot()).files, before.files, '--check changed nothing');

  const r = await rollback();
  t.is(r.code, 0, r.stdout + r.stderr);
  const after = await snapshot();
  t.deepEqual(after.files, before.files);
  t.is(after.datacl, before.datacl);
  t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_database WHERE datname = 'pem_user_settings'`), '1', 'kept without --purge');
  // The reload happened: a web host can no longer reach the settings database.
  const refused = await connectFrom(lab, 'web-1', `host=${lab.host('pg-primary').address} dbname=pem_user_settings user=pem_user_settings sslmode=require`, NASTY_PASSWORD);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /no pg_hba.conf entry|rejects connection/);

  const again = await rollback();
  t.is(again.code, 0);
  for (const h of [...WEBS, ...BACKENDS]) t.regex(recapLine(again.stdout, h), /changed=0 /, `second rollback: ${h}`);
  const runs = await cli(['runs', '-i', lab.inventoryPath]);
  t.regex(runs.stdout, /deploy .* rolled back by /);
});

test.serial('a hand-edited config_local.py is refused (exit 1), the others restored; --force restores it and keeps the edit', async (t) => {
  const before = await snapshot();
  t.is((await deploy()).code, 0);
  const editedPath = lab.hostPath('web-3', FILE);
  const edited = (await readFile(editedPath, 'utf8')) + '# tuned by hand\r\n';
  await writeFile(editedPath, edited);
  const r = await rollback();
  t.is(r.code, 1);
  t.regex(r.stdout, /web-3: config_local.py: failed - \/usr\/edb\/pem\/web\/config_local.py was changed after the run \(sha256 now [0-9a-f]{64}, the run wrote [0-9a-f]{64}\); left untouched; the backup is .*\.bak/);
  t.is(await readFile(editedPath, 'utf8'), edited);
  t.is((await snapshot()).files.get(`web-2:${FILE}`), before.files.get(`web-2:${FILE}`));
  const forced = await rollback('--force', '--limit', 'web-3');
  t.is(forced.code, 0, forced.stdout);
  t.is((await snapshot()).files.get(`web-3:${FILE}`), before.files.get(`web-3:${FILE}`));
  const kept = await lab.exec('web-3', ['sh', '-c', `cat ${FILE}.pem-settings-rollback-*.bak`]);
  t.is(kept.stdout, edited, 'the hand edit is kept beside the file');
});

test.serial('rollback --limit web-2 touches only web-2', async (t) => {
  t.is((await deploy()).code, 0);
  const mid = await snapshot();
  const r = await rollback('--limit', 'web-2');
  t.is(r.code, 0, r.stdout);
  const after = await snapshot();
  for (const [key, value] of after.files) {
    if (key.startsWith('web-2:')) t.not(value, mid.files.get(key));
    else t.is(value, mid.files.get(key), key);
  }
  t.is(after.datacl, mid.datacl);
  t.is((await rollback()).code, 0, 'the rest of the run rolls back afterwards');
});

test.serial('a deploy with one web host unreachable rolls back the others; after sshd is back both converge', async (t) => {
  const before = await snapshot();
  await lab.stopSshd('web-2');
  try {
    const d = await deploy();
    t.is(d.code, 1);
    t.regex(recapLine(d.stdout, 'web-2'), /unreachable=1/);
    const r = await rollback();
    t.is(r.code, 0, r.stdout);
    t.deepEqual((await snapshot()).files, before.files);
  } finally {
    await lab.startSshd('web-2');
  }
  t.is((await deploy()).code, 0);
  t.is((await rollback()).code, 0);
  t.deepEqual((await snapshot()).files, before.files);
});

test.serial('rollback --purge dumps the settings database (the dump restores the web app\'s rows), then drops database and role', async (t) => {
  await sql(lab, 'pg-primary', 'DROP DATABASE pem_user_settings; DROP ROLE pem_user_settings;');
  const d = await deploy();
  t.is(d.code, 0, d.stdout);
  const w = await lab.exec('web-2', ['/usr/bin/python3', CONSUMER, FILE]);
  t.is(w.code, 0, w.stderr);
  const r = await rollback('--purge');
  t.is(r.code, 0, r.stdout + r.stderr);
  const m = /dumped pem_user_settings to (\S+\.dump) \(on pg-primary\)/.exec(r.stdout);
  t.truthy(m, r.stdout);
  t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_database WHERE datname = 'pem_user_settings'`), '0');
  t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_roles WHERE rolname = 'pem_user_settings'`), '0');
  await sql(lab, 'pg-primary', 'CREATE DATABASE scratch_restore;');
  const restore = await lab.exec('pg-primary', ['pg_restore', '--no-owner', '--no-acl', '-d', 'scratch_restore', m![1]!], { user: 'postgres' });
  t.is(restore.code, 0, restore.stderr);
  t.is(await sql(lab, 'pg-primary', `SELECT pref || '=' || value FROM user_preferences`, 'scratch_restore'), 'theme=dark');
  const again = await rollback('--purge');
  t.is(again.code, 0);
  t.regex(recapLine(again.stdout, 'pg-primary'), /changed=0 /);
});

test.serial('rollback of a run that failed halfway undoes just what that run did', async (t) => {
  const broken = 'SERVER_MODE = True\nCONFIG_DATABASE_URI = (\n';
  await writeFile(lab.hostPath('web-1', FILE), broken);
  const before = await snapshot();
  const d = await deploy();
  t.is(d.code, 1);
  t.regex(recapLine(d.stdout, 'web-1'), /failed=1/);
  t.regex(recapLine(d.stdout, 'web-3'), /changed=1 /);
  const record = JSON.parse(await readFile(join(lab.dir, '.pem-settings', 'runs', (await records()).at(-1)!), 'utf8'));
  t.deepEqual(record.hosts['web-1'].steps.map((s: { status: string }) => s.status), ['failed']);
  const r = await rollback();
  t.is(r.code, 0, r.stdout);
  t.notRegex(r.stdout, /^web-1 /m, 'web-1 was not changed by the run, so rollback leaves it alone');
  t.deepEqual((await snapshot()).files, before.files);
  t.is((await hostFile(lab, 'web-1', FILE)).toString(), broken);
});
