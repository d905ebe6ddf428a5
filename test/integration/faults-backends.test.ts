// Fault matrix, backends (issue 6): a pg_hba.conf the new content would make invalid, the
// primary's or the standby's Postgres down, the standby unreachable over SSH. A backend that
// fails its facts stops the run before anything is written anywhere (SPEC 4: web hosts are
// never pointed at a backend that is not ready); a bad pg_hba.conf is put back byte for byte
// and never reloaded. Each time a re-run converges. Each deploy uses a new password (a
// rotation), so that a run that went on would have something to change on every host.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, sql } from './helpers.ts';
import {
  HBA, PG_DATA, WEBS, WEB_DIR, hbaFiles, leftovers, namesIn, parseJson, password, pgCtl, runRecords, stepsOf, webFiles, type JsonRun,
} from './faults-shared.ts';

let lab: Lab;

test.before(async () => {
  lab = await startLab({ name: 'flt41', subnet: '10.231.41.0/24' });
});
test.after.always(async () => {
  await lab?.stop();
});

const deploy = (pw: string) => cli(['deploy', '-i', lab.inventoryPath, '--json'], { PEM_SETTINGS_PASSWORD: pw });

async function converges(t: import('ava').ExecutionContext, pw: string): Promise<void> {
  const first = await deploy(pw);
  t.is(first.code, 0, first.stdout + first.stderr);
  const second = parseJson(await deploy(pw));
  for (const [h, r] of Object.entries(second.hosts)) t.deepEqual([r.changed, r.failed, r.unreachable], [0, 0, false], `second run: ${h}`);
  for (const h of ['pg-primary', 'pg-standby']) t.deepEqual(await leftovers(lab, h, PG_DATA), [], `${h}: nothing left behind`);
  for (const h of WEBS) t.deepEqual(await leftovers(lab, h, WEB_DIR), [], `${h}: nothing left behind`);
}

/** Everything a deploy could write: web files, pg_hba files, the role's verifier, the databases' ACLs, run records. */
async function written(): Promise<unknown> {
  return {
    web: await webFiles(lab),
    hba: await hbaFiles(lab),
    role: await sql(lab, 'pg-primary', `SELECT coalesce(max(rolpassword), 'no role') FROM pg_authid WHERE rolname = 'pem_user_settings'`),
    acl: await sql(lab, 'pg-primary', `SELECT string_agg(datname || '=' || coalesce(datacl::text, 'default'), ' ' ORDER BY datname) FROM pg_database`),
    records: await runRecords(lab),
  };
}

test.serial('a pg_hba.conf the new content would make invalid: Postgres\' error, the file put back byte for byte, no reload, the run stops', async (t) => {
  const path = lab.hostPath('pg-standby', HBA);
  const original = await readFile(path, 'utf8');
  // Postgres rejects this line (unknown method) but it was never reloaded, so the server runs on the old rules.
  const broken = original.replace(/^host +all +all +0\.0\.0\.0\/0 +reject$/m, 'host all all 10.99.0.0/16 bogus\n$&');
  t.not(broken, original);
  await writeFile(path, broken);
  const webBefore = await webFiles(lab);
  const loaded = await sql(lab, 'pg-standby', 'SELECT pg_conf_load_time()');

  const r = await deploy(password(1));
  t.is(r.code, 1, r.stderr);
  const doc = parseJson(r);
  t.deepEqual(stepsOf(doc, 'pg-standby'), ['facts/server ok', 'pg_hba/pg_hba.conf rule failed']);
  const line = broken.split('\n').indexOf('host all all 10.99.0.0/16 bogus') + 1;
  t.regex(doc.hosts['pg-standby']!.steps[1]!.message,
    new RegExp(`^the server finds the new file invalid: ${line}: invalid authentication method "bogus"; the file was put back as it was and nothing was reloaded`));
  t.is(await readFile(path, 'utf8'), broken, 'the file as it was before the run, byte for byte');
  t.is(await sql(lab, 'pg-standby', 'SELECT pg_conf_load_time()'), loaded, 'no reload');
  t.deepEqual(await leftovers(lab, 'pg-standby', PG_DATA), []);
  const standbyRun = doc.run;
  t.deepEqual((await namesIn(lab, 'pg-standby', PG_DATA)).filter((n) => n.includes(standbyRun)), [], 'nothing changed, so no backup stays');
  t.true(doc.hosts['pg-primary']!.changed > 0, 'the primary went ahead within the stage');
  for (const h of WEBS) t.deepEqual(stepsOf(doc, h), ['facts/config_local.py ok', 'web/web skipped'], `${h}: the web stage never ran`);
  t.deepEqual(await webFiles(lab), webBefore);

  await writeFile(path, original); // the operator fixes the line
  await converges(t, password(1));
});

/** The run stopped after facts: the failed backend says why, every other host was only read. */
function stoppedAfterFacts(t: import('ava').ExecutionContext, doc: JsonRun, failed: string, steps: string[], message: RegExp): void {
  t.deepEqual(stepsOf(doc, failed), steps);
  t.regex(doc.hosts[failed]!.steps.at(-1)!.message, message);
  const other = failed === 'pg-primary' ? 'pg-standby' : 'pg-primary';
  for (const s of doc.hosts[other]!.steps) t.regex(`${s.stage} ${s.status}`, /^facts ok$|^(database|pg_hba) skipped$/, `${other}: ${s.stage}/${s.step}`);
  for (const h of WEBS) t.deepEqual(stepsOf(doc, h), ['facts/config_local.py ok', 'web/web skipped'], h);
  for (const h of [other, ...WEBS]) t.is(doc.hosts[h]!.changed, 0, h);
}

test.serial('the primary\'s Postgres down: facts fail there with psql\'s error, the run stops before writing anything anywhere', async (t) => {
  const before = await written();
  await pgCtl(lab, 'pg-primary', 'stop');
  let r;
  try {
    r = await deploy(password(2));
  } finally {
    await pgCtl(lab, 'pg-primary', 'start');
  }
  t.is(r.code, 1, r.stderr);
  const doc = parseJson(r);
  stoppedAfterFacts(t, doc, 'pg-primary', ['facts/facts failed'], /psql: error: connection to server on socket "\/var\/run\/postgresql\/\.s\.PGSQL\.5432" failed/);
  t.deepEqual(await written(), before, 'nothing written: files, role, grants, no run record');
  await converges(t, password(2));
});

test.serial('the standby\'s Postgres down: facts fail there, the database stage never runs on the primary, nothing is written', async (t) => {
  const before = await written();
  await pgCtl(lab, 'pg-standby', 'stop');
  let r;
  try {
    r = await deploy(password(3));
  } finally {
    await pgCtl(lab, 'pg-standby', 'start');
  }
  t.is(r.code, 1, r.stderr);
  const doc = parseJson(r);
  stoppedAfterFacts(t, doc, 'pg-standby', ['facts/facts failed'], /psql: error: connection to server on socket .* failed/);
  t.deepEqual(stepsOf(doc, 'pg-primary'), ['facts/server ok', 'database/database skipped', 'pg_hba/pg_hba skipped']);
  t.deepEqual(await written(), before, 'nothing written: the new password was not set either');
  await converges(t, password(3));
});

test.serial('the standby unreachable over SSH: reported unreachable, the run stops after facts, nothing is written', async (t) => {
  const before = await written();
  await lab.stopSshd('pg-standby');
  let r;
  try {
    r = await deploy(password(4));
  } finally {
    await lab.startSshd('pg-standby');
  }
  t.is(r.code, 1, r.stderr);
  const doc = parseJson(r);
  t.true(doc.hosts['pg-standby']!.unreachable);
  t.is(doc.hosts['pg-standby']!.failed, 0, 'unreachable is counted apart from failed');
  stoppedAfterFacts(t, doc, 'pg-standby', ['facts/connect failed'], /cannot connect: ECONNREFUSED labadmin@10\.231\.41\.11:22/);
  t.deepEqual(await written(), before);
  t.regex(await readFile(doc.retry_file!, 'utf8'), /^pg-standby\n$/, 'the retry file names the host');
  await converges(t, password(4));
});
