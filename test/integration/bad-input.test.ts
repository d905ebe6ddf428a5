// Bad input on the lab (issue 6): every mistake in the inventory, the settings or the command
// line is reported with its place (file:line, host, variable) and exit 2, and NOTHING is touched:
// the files and the catalogs keep their bytes, and for what is found before connecting, no SSH
// login happened at all (sshd's own log says so).
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, hostFile, sql } from './helpers.ts';

const PASSWORD = 'bad-input lab password 1';
const env = { PEM_SETTINGS_PASSWORD: PASSWORD, PEM_BECOME_PASSWORD: undefined };
const CONFIG = '/usr/edb/pem/web/config_local.py';
const HBA = '/var/lib/postgresql/15/main/pg_hba.conf';
const WEBS = ['web-1', 'web-2', 'web-3'];
const BACKENDS = ['pg-primary', 'pg-standby'];
let lab: Lab;
let base: string;

test.before(async () => {
  lab = await startLab({ name: 'bad50', subnet: '10.231.50.0/24' });
  base = await readFile(lab.inventoryPath, 'utf8');
});
test.after.always(async () => {
  await lab?.stop();
});

/** Writes a variant of the lab inventory beside it; returns its path. */
let variants = 0;
async function inventory(edit: (text: string) => string): Promise<string> {
  const path = join(lab.dir, `bad-${++variants}.ini`);
  await writeFile(path, edit(base));
  return path;
}
const onHost = (host: string, extra: string) => (text: string) => text.replace(new RegExp(`^${host} .*$`, 'm'), (l) => `${l} ${extra}`);
const addVars = (vars: string) => (text: string) => text.replace('[all:vars]\n', `[all:vars]\n${vars}\n`);

interface Snapshot {
  files: Record<string, string>;
  listings: Record<string, string>;
  catalog: string;
  logins: Record<string, number>;
}

/** What must not change: the files' bytes, the directories holding them, the catalogs, and who logged in. */
async function snapshot(): Promise<Snapshot> {
  const files: Record<string, string> = {};
  const listings: Record<string, string> = {};
  for (const h of WEBS) {
    files[`${h}:${CONFIG}`] = (await hostFile(lab, h, CONFIG).catch(() => Buffer.from('<absent>'))).toString('base64');
    listings[h] = (await lab.exec(h, ['ls', '-la', '--time-style=+%s.%N', '/usr/edb/pem/web'])).stdout;
  }
  for (const h of BACKENDS) {
    files[`${h}:${HBA}`] = (await hostFile(lab, h, HBA)).toString('base64');
    // Postgres owns the rest of its data directory (and a promotion rewrites some of it): only
    // the names the tool could add — pg_hba backups and temporary files — are compared.
    listings[h] = (await lab.exec(h, ['sh', '-c', 'ls -a /var/lib/postgresql/15/main | grep -i "hba\\|pem" || true'])).stdout;
  }
  const catalog = await sql(lab, 'pg-primary', `
    SELECT string_agg(rolname || ':' || coalesce(rolpassword, '-') || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_authid;
    SELECT string_agg(datname || ':' || coalesce(datacl::text, '-'), ',' ORDER BY datname) FROM pg_database;
    SELECT count(*) FROM pg_default_acl;
    SELECT count(*) FROM pg_hba_file_rules;`);
  const logins: Record<string, number> = {};
  for (const h of lab.hosts) {
    const log = await readFile(join(lab.dir, 'hosts', h.name, 'ssh', 'sshd.log'), 'utf8').catch(() => '');
    logins[h.name] = log.split('\n').filter((l) => l.includes('Accepted publickey')).length;
  }
  return { files, listings, catalog, logins };
}

// [what the operator got wrong, the inventory edit, extra command-line args, env override, what stderr says (INV: the inventory path)]
type Case = [string, (text: string) => string, string[], Record<string, string | undefined>, string | RegExp];
const beforeConnecting: Case[] = [
  ['a host line with a bare word', onHost('web-2', 'oops'), [], {}, /INV:10: expected key=value host variable, got "oops"/],
  ['an unterminated section header', (t) => t.replace('[webhosts]', '[webhosts'), [], {}, /INV:8: /],
  ['an unknown group in :children', (t) => t + '[site:children]\nbackends\nno_such_group\n', [], {}, /INV:\d+: \[site:children\] includes group "no_such_group", which is not defined/],
  ['a cycle of :children groups', (t) => t + '[a:children]\nb\n[b:children]\na\n', [], {}, /group cycle: (a -> b -> a|b -> a -> b)/],
  ['an invalid host range', (t) => t.replace('[webhosts]\n', '[webhosts]\nweb[9:2]\n'), [], {}, /INV:9: .*start is after end/],
  ['a duplicate host with conflicting vars', (t) => t + '[more]\nweb-1 ansible_host=10.231.50.250\n', [], {}, /INV:\d+: .*conflicting with ansible_host=10\.231\.50\.\d+ on line \d+/],
  ['no [backends] group', (t) => t.replace(/\[backends\]\n(.*\n)*?\n/, ''), [], {}, 'no hosts in group [backends]'],
  ['no [webhosts] group', (t) => t.replace(/\[webhosts\]\n(.*\n)*?\n/, ''), [], {}, 'no hosts in group [webhosts]'],
  ['an invalid CIDR in pem_web_subnet', (t) => t.replace(/^pem_web_subnet=.*$/m, 'pem_web_subnet=10.231.50.0/40'), [], {}, 'pem_web_subnet: "10.231.50.0/40" is not a CIDR'],
  ['an SQL injection in pem_settings_db', addVars(`pem_settings_db='x"; DROP DATABASE pem; --'`), [], {}, 'pem_settings_db "x\\"; DROP DATABASE pem; --" is not a plain name'],
  ['a role name that is not a Postgres name', addVars('pem_settings_user=settings-role'), [], {}, 'pem_settings_user "settings-role" is not a plain name'],
  ['shell metacharacters in pem_config_local', onHost('web-3', `pem_config_local='/usr/edb/pem/web/config_local.py;touch /tmp/owned'`), [], {}, /INV:11: host web-3: pem_config_local must be an absolute path/],
  ['shell metacharacters in pg_hba_file', onHost('pg-standby', `pg_hba_file='/var/lib/postgresql/15/main/$(touch /tmp/owned)'`), [], {}, /INV:6: host pg-standby: pg_hba_file must be an absolute path/],
  ['shell metacharacters in pg_bin_dir', onHost('pg-primary', 'pg_bin_dir=/usr/lib/postgresql/15/bin`touch${IFS}/tmp/owned`'), [], {}, /INV:5: host pg-primary: pg_bin_dir must be an absolute path/],
  ['shell metacharacters in pg_socket_dir', onHost('pg-primary', `pg_socket_dir='/var/run/postgresql && touch /tmp/owned'`), [], {}, /INV:5: host pg-primary: pg_socket_dir must be an absolute path/],
  ['a missing PEM_SETTINGS_PASSWORD', (t) => t, [], { PEM_SETTINGS_PASSWORD: undefined }, /PEM_SETTINGS_PASSWORD is not set/],
  ['an empty PEM_SETTINGS_PASSWORD', (t) => t, [], { PEM_SETTINGS_PASSWORD: '' }, 'PEM_SETTINGS_PASSWORD is empty'],
  ['a PEM_SETTINGS_PASSWORD of 11 characters', (t) => t, [], { PEM_SETTINGS_PASSWORD: 'short-pass1' }, /shorter than 12 characters \(use --allow-weak-password/],
  ['a bad --forks', (t) => t, ['--forks', '0'], {}, '--forks must be a positive number, got "0"'],
  ['an unknown option', (t) => t, ['--frobnicate'], {}, "unknown option '--frobnicate'"],
];

for (const [title, edit, args, envOverride, message] of beforeConnecting) {
  test.serial(`${title}: exit 2, the place named, no host logged into, nothing changed`, async (t) => {
    const inv = await inventory(edit);
    const before = await snapshot();
    const r = await cli(['deploy', '-i', inv, ...args], { ...env, ...envOverride });
    t.is(r.code, 2, r.stdout + r.stderr);
    const expected = typeof message === 'string' ? message : new RegExp(message.source.split('INV').join(inv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    if (typeof expected === 'string') t.true(r.stderr.includes(expected), `expected ${JSON.stringify(expected)} in: ${r.stderr}`);
    else t.regex(r.stderr, expected);
    t.notRegex(r.stderr, /\bat .*\.ts:\d+|internal error/, 'no stack trace');
    t.deepEqual(await snapshot(), before);
    for (const h of lab.hosts) t.false((await lab.exec(h.name, ['test', '-e', '/tmp/owned'])).code === 0, `nothing ran on ${h.name}`);
  });
}

test.serial('--allow-weak-password accepts an 11-character password (a --check run, nothing changed)', async (t) => {
  const before = await snapshot();
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--allow-weak-password'], { ...env, PEM_SETTINGS_PASSWORD: 'short-pass1' });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /check mode/);
  const after = await snapshot();
  t.deepEqual({ ...after, logins: {} }, { ...before, logins: {} });
  t.true(after.logins['web-1']! > before.logins['web-1']!, 'it did connect this time');
});

test.serial('no primary (only the standby in [backends]): exit 2 after the read-only facts, nothing changed', async (t) => {
  const inv = await inventory((text) => text.replace(/^pg-primary .*\n/m, ''));
  const before = await snapshot();
  const r = await cli(['deploy', '-i', inv], env);
  t.is(r.code, 2, r.stdout + r.stderr);
  t.regex(r.stderr, /no primary among the backends: pg-standby .*in recovery.*nothing was changed/);
  t.deepEqual({ ...(await snapshot()), logins: {} }, { ...before, logins: {} });
});

test.serial('a config_local.py that is not valid Python: that host refused and untouched (exit 1), the others done', async (t) => {
  const broken = 'SERVER_MODE = True\nCONFIG_DATABASE_URI = "never closed\nLOG_LEVEL = 10\n';
  await writeFile(lab.hostPath('web-2', CONFIG), broken);
  const listing = (await lab.exec('web-2', ['ls', '-a', '/usr/edb/pem/web'])).stdout;
  const r = await cli(['deploy', '-i', lab.inventoryPath], env);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /web-2: config_local\.py: failed - \/usr\/edb\/pem\/web\/config_local\.py is not valid Python \(line 2/);
  t.false(r.stdout.includes('never closed'), 'the offending line is not echoed (it may hold a password)');
  t.is((await hostFile(lab, 'web-2', CONFIG)).toString(), broken);
  t.is((await lab.exec('web-2', ['ls', '-a', '/usr/edb/pem/web'])).stdout, listing, 'no backup, no temporary file');
  t.regex((await hostFile(lab, 'web-3', CONFIG)).toString(), /^CONFIG_DATABASE_URI = "postgresql:\/\//m, 'the other web hosts were done');
  t.is(await readFile(join(lab.dir, 'inventory.retry'), 'utf8'), 'web-2\n');
});

test.serial('two primaries (the standby promoted): exit 2 after the read-only facts, nothing changed on either', async (t) => {
  await sql(lab, 'pg-standby', 'SELECT pg_promote(true, 30)');
  t.is(await sql(lab, 'pg-standby', 'SELECT pg_is_in_recovery()'), 'f');
  // A fresh password: without the split brain the database stage would change the role.
  const before = await snapshot();
  const standbyCatalog = await sql(lab, 'pg-standby', 'SELECT string_agg(rolname || coalesce(rolpassword, \'\'), \',\' ORDER BY rolname) FROM pg_authid');
  const r = await cli(['deploy', '-i', lab.inventoryPath], { ...env, PEM_SETTINGS_PASSWORD: 'a different password 2' });
  t.is(r.code, 2, r.stdout + r.stderr);
  // (the names come in the order the facts arrived, not inventory order)
  t.regex(r.stderr, /more than one primary among the backends: (pg-primary, pg-standby|pg-standby, pg-primary) .*nothing was changed/);
  t.deepEqual({ ...(await snapshot()), logins: {} }, { ...before, logins: {} });
  t.is(await sql(lab, 'pg-standby', 'SELECT string_agg(rolname || coalesce(rolpassword, \'\'), \',\' ORDER BY rolname) FROM pg_authid'), standbyCatalog);
});
