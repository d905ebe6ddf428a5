// The web app's rollout on the lab (issue 16): the stand-in web app (test/lab/webapp) creates
// its schema at start like the real one — several tables, as the role, with no lock — and fails
// when it finds another host mid-creation. Deploy restarts one web host alone while the
// settings database is empty, and the others once the schema is there; --serial batches stop
// at a failed pem_web_health, leaving later hosts untouched and in the retry file.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, recapLine, sql } from './helpers.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const WEBS = ['web-1', 'web-2', 'web-3'];
let lab: Lab;
const env = (n: number) => ({ PEM_SETTINGS_PASSWORD: `rollout-password-${n}-long` });

test.before(async () => {
  lab = await startLab({ name: 'roll1', subnet: '10.231.62.0/24', webApp: true, webPython: true });
});
test.after.always(async () => {
  await lab?.stop();
});

const tables = () => sql(lab, 'pg-primary', `SELECT count(*) FROM pg_class WHERE relkind = 'r' AND pg_get_userbyid(relowner) = 'pem_user_settings'`, 'pem_user_settings');
// The web app's tables go; the role keeps its grants (DROP OWNED would take those too).
const emptySchema = () => sql(lab, 'pg-primary', `DO $$ DECLARE t text; BEGIN
  FOR t IN SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE tableowner = 'pem_user_settings' LOOP
    EXECUTE 'DROP TABLE ' || t || ' CASCADE'; END LOOP; END $$`, 'pem_user_settings');
const standinLog = async (host: string) => (await readFile(lab.hostPath(host, '/tmp/pem-web-standin/log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);

test.serial('an empty settings database: one web host restarts alone and creates the schema, then the others; every start succeeds', async (t) => {
  const r = await cli(['deploy', '-i', lab.inventoryPath], env(1));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /\[web\] web-1: web app schema: changed - the web app created its schema \(\d+ tables\) before any other web host restarted/);
  for (const h of WEBS) t.regex(recapLine(r.stdout, h), /failed=0/, h);
  t.is(await tables(), '8');
  // web-1 created the schema; the others found it there.
  t.true((await standinLog('web-1')).some((l) => /created|creat/.test(l)), (await standinLog('web-1')).join('\n'));
  for (const h of ['web-2', 'web-3']) t.false((await standinLog(h)).some((l) => /FAILED/.test(l)), h);
  t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM preferences WHERE name = 'theme'`, 'pem_user_settings'), '1', 'no duplicate preference rows');
});

test.serial('started all at once on an empty database, the web apps trip over each other; deploy\'s bootstrap-first does not', async (t) => {
  await emptySchema();
  const all = await Promise.all(WEBS.map((h) => lab.exec(h, ['sh', '-c', lab.webTools!.restart])));
  t.true(all.some((r) => r.code === 3), all.map((r) => `${r.code} ${r.stderr}`).join('\n'));
  await emptySchema();
  // A new password changes every file, so every web app restarts.
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check'], env(2));
  t.regex(r.stdout, /\[web\] web-1: web app schema: changed - this host restarts alone first/, '--check says which host will bootstrap');
  const done = await cli(['deploy', '-i', lab.inventoryPath], env(2));
  t.is(done.code, 0, done.stdout + done.stderr);
  for (const h of WEBS) t.regex(recapLine(done.stdout, h), /failed=0/, h);
  t.is(await tables(), '8');
});

test.serial('--serial 1 with a failing pem_web_health: the rollout stops there, later hosts untouched and in the retry file; fixed, a re-run finishes', async (t) => {
  const text = await readFile(lab.inventoryPath, 'utf8');
  const faulty = `${lab.dir}/faulty-health.ini`;
  await writeFile(faulty, text.replace(/^(web-2 .*)$/m, `$1 pem_web_health=false pem_web_health_timeout=3`));
  const before = await readFile(lab.hostPath('web-3', FILE));
  const r = await cli(['deploy', '-i', faulty, '--serial', '1'], env(3));
  t.is(r.code, 1, r.stdout);
  t.regex(recapLine(r.stdout, 'web-1'), /changed=[1-9]\d* +failed=0/);
  t.regex(r.stdout, /web-2: web\/health check: pem_web_health did not succeed within 3 s/);
  t.regex(r.stdout, /\[web\] web-3: web: skipped - not run: the rollout stopped after batch 2: 1 of 1 failed/);
  t.deepEqual(await readFile(lab.hostPath('web-3', FILE)), before, 'web-3 keeps its old file');
  const retry = /--limit @(\S+)/.exec(r.stdout)?.[1];
  t.truthy(retry);
  t.deepEqual((await readFile(retry!, 'utf8')).split('\n').filter(Boolean), ['web-2', 'web-3']);

  const again = await cli(['deploy', '-i', lab.inventoryPath, '--serial', '1'], env(3));
  t.is(again.code, 0, again.stdout);
  t.regex(recapLine(again.stdout, 'web-3'), /changed=[1-9]\d* +failed=0/);
  t.regex(recapLine(again.stdout, 'web-2'), /changed=0 +failed=0/);
});
