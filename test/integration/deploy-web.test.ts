// deploy, stage 4 on the lab (issue 10): CONFIG_DATABASE_URI in config_local.py on every web
// host, proved by the web app's own parser and a real connection from each web host.
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, hostFile, NASTY_PASSWORD, recapLine, webAppRestart, webappConsumer } from './helpers.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const WEBS = ['web-1', 'web-2', 'web-3'];
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };
let lab: Lab;
let CONSUMER: string;
let inventory: string;
const original = new Map<string, Buffer | undefined>();

test.before(async () => {
  lab = await startLab({ name: 'dep10', subnet: '10.231.11.0/24' });
  CONSUMER = (await webappConsumer(lab)).consumer;
  for (const h of WEBS) original.set(h, await hostFile(lab, h, FILE).catch(() => undefined));
  // The standby is listed first: the URI must still reach the primary (target_session_attrs).
  // Each web host counts its restarts in its own /tmp.
  const text = await readFile(lab.inventoryPath, 'utf8');
  const lines = text.split('\n');
  const p = lines.findIndex((l) => l.startsWith('pg-primary '));
  const s = lines.findIndex((l) => l.startsWith('pg-standby '));
  [lines[p], lines[s]] = [lines[s]!, lines[p]!];
  inventory = `${lab.dir}/web.ini`;
  await writeFile(inventory, lines.join('\n') + `\n[webhosts:vars]\npem_web_user=www-data\npem_web_restart='${webAppRestart(CONSUMER)}'\n`);
});
test.after.always(async () => {
  await lab?.stop();
});

async function restarts(host: string): Promise<number> {
  const r = await lab.exec(host, ['sh', '-c', 'cat /tmp/restarts 2>/dev/null || true']);
  return r.stdout.split('\n').filter(Boolean).length;
}

test.serial('deploy writes a URI the web app accepts, reaching the primary over TLS from every web host', async (t) => {
  const r = await cli(['deploy', '-i', inventory], env);
  t.is(r.code, 0, r.stdout + r.stderr);
  // The file and the restart; web-1 also waited for the web app's schema (the first start on an empty database).
  for (const h of WEBS) t.regex(recapLine(r.stdout, h), h === 'web-1' ? /changed=3 .*failed=0/ : /changed=2 .*failed=0/, h);
  const primary = lab.host('pg-primary').address;
  for (const h of WEBS) {
    const c = await lab.exec(h, ['/usr/bin/python3', CONSUMER, FILE], { user: 'www-data' });
    t.is(c.code, 0, `${h}: ${c.stderr}`);
    t.regex(c.stdout, new RegExp(`^ok ${primary.replace(/\./g, '\\.')} ssl \\d+`), h);
    t.is(await restarts(h), 1, `${h} restarted once`);
  }
  t.false((r.stdout + r.stderr).includes(NASTY_PASSWORD));
});

test.serial('every other byte of each file is kept: appended line, CRLF, commented-out line, new file 0640', async (t) => {
  const expectedLine = (eol: string) => {
    const uri = `postgresql://pem_user_settings:${encodeURIComponent(NASTY_PASSWORD).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())}` +
      `@${lab.host('pg-standby').address},${lab.host('pg-primary').address}:5432/pem_user_settings?target_session_attrs=read-write&sslmode=require&channel_binding=require`;
    return `CONFIG_DATABASE_URI = "${uri}"${eol}`;
  };
  const web2 = (await hostFile(lab, 'web-2', FILE)).toString();
  t.is(web2, original.get('web-2')!.toString() + expectedLine('\n'));
  const web3 = (await hostFile(lab, 'web-3', FILE)).toString();
  t.is(web3, original.get('web-3')!.toString() + expectedLine('\r\n'));
  t.regex(web3, /# CONFIG_DATABASE_URI = /, 'the commented-out line stays');
  t.is(original.get('web-1'), undefined);
  t.is((await hostFile(lab, 'web-1', FILE)).toString(), expectedLine('\n'));
  const stat = await lab.exec('web-1', ['stat', '-c', '%a %U %G', FILE]);
  t.is(stat.stdout.trim(), '640 root www-data', 'a new file: 0640, owner and group of config.py');
  const backups = await lab.exec('web-2', ['sh', '-c', `stat -c '%a %U %G' ${FILE}.pem-settings-*.bak`]);
  t.is(backups.stdout.trim(), '640 root www-data', 'the backup keeps the mode: it may hold a password');
});

test.serial('a second deploy changes nothing and restarts nothing', async (t) => {
  const before = await Promise.all(WEBS.map((h) => hostFile(lab, h, FILE)));
  const r = await cli(['deploy', '-i', inventory], env);
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const h of WEBS) t.regex(recapLine(r.stdout, h), /changed=0 /, h);
  t.deepEqual(await Promise.all(WEBS.map((h) => hostFile(lab, h, FILE))), before);
  for (const h of WEBS) t.is(await restarts(h), 1, h);
});

test.serial('an active sqlite URI is replaced in place; a limited run still lists every backend', async (t) => {
  const head = "# PEM\nSERVER_MODE = True\nCONFIG_DATABASE_URI = 'sqlite:////var/lib/pem/pem.db'  # local\nLOG_LEVEL = 10\n";
  await writeFile(lab.hostPath('web-2', FILE), head);
  const check = await cli(['deploy', '-i', inventory, '--limit', 'web-2', '--check', '--diff'], env);
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /-CONFIG_DATABASE_URI = 'sqlite:\/\/\/\/var\/lib\/pem\/pem.db'  # local\n\+CONFIG_DATABASE_URI = "postgresql:\/\/pem_user_settings:\*\*\*\*\*\*\*\*@/);
  t.is((await hostFile(lab, 'web-2', FILE)).toString(), head, '--check changed nothing');
  const r = await cli(['deploy', '-i', inventory, '--limit', 'web-2'], env);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.notRegex(r.stdout, /^(pg-primary|web-1|web-3) /m, 'only web-2 was touched');
  const after = (await hostFile(lab, 'web-2', FILE)).toString().split('\n');
  t.is(after[0], '# PEM');
  t.regex(after[2]!, new RegExp(`^CONFIG_DATABASE_URI = "postgresql://.*@${lab.host('pg-standby').address},${lab.host('pg-primary').address}:5432/pem_user_settings\\?target_session_attrs=read-write&sslmode=require&channel_binding=require"  # local$`));
  t.is(after[3], 'LOG_LEVEL = 10');
});

test.serial('a file the web app user could not read is refused before it is put in place', async (t) => {
  const before = await hostFile(lab, 'web-3', FILE);
  await writeFile(lab.hostPath('web-3', FILE), before.toString().replace(/^CONFIG_DATABASE_URI = "[^"]*"/m, 'CONFIG_DATABASE_URI = "sqlite://"'));
  const edited = await hostFile(lab, 'web-3', FILE);
  const blocked = `${lab.dir}/blocked.ini`;
  await writeFile(blocked, (await readFile(inventory, 'utf8')).replace('pem_web_user=www-data', 'pem_web_user=nobody'));
  const r = await cli(['deploy', '-i', blocked, '--limit', 'web-3'], env);
  t.is(r.code, 1);
  t.regex(r.stdout, /web app user nobody could not read the new file/);
  t.deepEqual(await hostFile(lab, 'web-3', FILE), edited, 'untouched');
  const leftovers = await lab.exec('web-3', ['sh', '-c', 'ls -a /usr/edb/pem/web | grep -c pem-settings.X || true']);
  t.is(leftovers.stdout.trim(), '0', 'no temporary file left behind');
});

test.serial('a config_local.py that is not valid Python is refused and left untouched', async (t) => {
  const broken = 'SERVER_MODE = True\nCONFIG_DATABASE_URI = "unterminated\n';
  await writeFile(lab.hostPath('web-1', FILE), broken);
  const r = await cli(['deploy', '-i', inventory, '--limit', 'web-1'], env);
  t.is(r.code, 1);
  t.regex(r.stdout, /web-1: config_local.py: failed - \/usr\/edb\/pem\/web\/config_local.py is not valid Python \(line 2/);
  t.is((await hostFile(lab, 'web-1', FILE)).toString(), broken);
});

test.serial('a world-readable config_local.py gets the URI without the world: mode 0644 -> 0640, owner kept', async (t) => {
  await lab.exec('web-2', ['chmod', '0644', FILE]);
  const check = await cli(['deploy', '-i', inventory, '--limit', 'web-2', '--check'], env);
  t.regex(check.stdout, /web-2: config_local.py: changed - .*mode 0644 -> 0640: others could read the password/);
  t.is((await lab.exec('web-2', ['stat', '-c', '%a', FILE])).stdout.trim(), '644', '--check changed nothing');
  const before = await hostFile(lab, 'web-2', FILE);
  const r = await cli(['deploy', '-i', inventory, '--limit', 'web-2'], env);
  t.is(r.code, 0, r.stdout);
  t.is((await lab.exec('web-2', ['stat', '-c', '%a %U %G', FILE])).stdout.trim(), '640 root www-data');
  t.deepEqual(await hostFile(lab, 'web-2', FILE), before, 'the bytes are the same');
  const backups = await lab.exec('web-2', ['sh', '-c', `stat -c '%a' ${FILE}.pem-settings-*.bak`]);
  t.notRegex(backups.stdout, /[1-7]$/m, 'no backup is readable by others');
  const again = await cli(['deploy', '-i', inventory, '--limit', 'web-2'], env);
  t.regex(recapLine(again.stdout, 'web-2'), /changed=0 /);
});
