// The password out of config_local.py (issue 16): with pem_db_passfile the password is in a
// libpq password file of the web app's user (0600) and the URI carries passfile= instead — in
// neither config_local.py, its backups, nor the web app's About dialog. A new password changes
// the role and the password files, restarts nothing, and the web app still connects.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, hostFile, recapLine, webAppRestart, webappConsumer } from './helpers.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const PASSFILE = '/usr/edb/pem/web/.pgpass';
const WEBS = ['web-1', 'web-2', 'web-3'];
const PW1 = 'first:pass\\word-123';
const PW2 = 'second-password-456';
let lab: Lab;
let inventory: string;
let CONSUMER: string;

test.before(async () => {
  lab = await startLab({ name: 'pass1', subnet: '10.231.63.0/24' });
  CONSUMER = (await webappConsumer(lab)).consumer;
  inventory = `${lab.dir}/passfile.ini`;
  await writeFile(inventory, (await readFile(lab.inventoryPath, 'utf8')) +
    `\n[webhosts:vars]\npem_db_passfile=${PASSFILE}\npem_web_user=www-data\npem_web_restart='${webAppRestart(CONSUMER)}'\n`);
});
test.after.always(async () => {
  await lab?.stop();
});

const restarts = async (h: string) => (await lab.exec(h, ['sh', '-c', 'cat /tmp/restarts 2>/dev/null || true'])).stdout.split('\n').filter(Boolean).length;
const consumer = (h: string) => lab.exec(h, ['/usr/bin/python3', CONSUMER, FILE], { user: 'www-data' });

test.serial('deploy: the URI names the password file, which only the web app\'s user can read; the web app connects', async (t) => {
  const r = await cli(['deploy', '-i', inventory], { PEM_SETTINGS_PASSWORD: PW1 });
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const h of WEBS) {
    const text = (await hostFile(lab, h, FILE)).toString();
    t.regex(text, /CONFIG_DATABASE_URI = "postgresql:\/\/pem_user_settings@[^"]*passfile=\/usr\/edb\/pem\/web\/\.pgpass"/, h);
    const backups = await lab.exec(h, ['sh', '-c', `cat ${FILE} ${FILE}.pem-settings-*.bak 2>/dev/null`]);
    t.false(backups.stdout.includes('first') || backups.stdout.includes(encodeURIComponent(PW1)), `${h}: no password in config_local.py or its backups`);
    t.is((await lab.exec(h, ['stat', '-c', '%a %U', PASSFILE])).stdout.trim(), '600 www-data', h);
    t.regex((await hostFile(lab, h, PASSFILE)).toString(), /^[\d.]+:5432:pem_user_settings:pem_user_settings:first\\:pass\\\\word-123\n/, `${h}: libpq's escaping`);
    const c = await consumer(h);
    t.is(c.code, 0, `${h}: ${c.stderr}`);
    t.regex(c.stdout, new RegExp(`^ok ${lab.host('pg-primary').address.replace(/\./g, '\\.')} ssl`), h);
  }
  const v = await cli(['verify', '-i', inventory], { PEM_SETTINGS_PASSWORD: PW1 });
  t.is(v.code, 0, v.stdout);
  t.regex(v.stdout, /web-1: password file: ok - \/usr\/edb\/pem\/web\/\.pgpass: mode 0600, owned by www-data/);
});

test.serial('a new password changes the role and the password files, restarts nothing, and the web app still connects; changed=0 after', async (t) => {
  const before = await Promise.all(WEBS.map(restarts));
  const r = await cli(['deploy', '-i', inventory], { PEM_SETTINGS_PASSWORD: PW2 });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /\[database\] pg-primary: role pem_user_settings: changed/);
  for (const h of WEBS) {
    t.regex(r.stdout, new RegExp(`\\[web\\] ${h}: password file: changed`));
    t.regex(r.stdout, new RegExp(`\\[web\\] ${h}: config_local.py: ok`), `${h}: config_local.py unchanged`);
    t.is((await consumer(h)).code, 0, h);
  }
  t.deepEqual(await Promise.all(WEBS.map(restarts)), before, 'no web app restarted');
  const again = await cli(['deploy', '-i', inventory], { PEM_SETTINGS_PASSWORD: PW2 });
  for (const h of WEBS) t.regex(recapLine(again.stdout, h), /changed=0 /, h);
});

test.serial('rollback puts the password files back as they were before the run', async (t) => {
  const before = (await hostFile(lab, 'web-1', PASSFILE)).toString();
  t.true(before.includes('second-password'));
  const r = await cli(['rollback', '-i', inventory]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex((await hostFile(lab, 'web-1', PASSFILE)).toString(), /first\\:pass/);
  t.is((await lab.exec('web-1', ['stat', '-c', '%a %U', PASSFILE])).stdout.trim(), '600 www-data');
});
