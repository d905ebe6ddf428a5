// The site shapes PEM operators run, as lab options (test/lab/README-shapes.md): root over SSH
// with no sudo, the web app on the primary's own machine (under its own name or a second one),
// a pg_hba.conf written by Patroni, a hostile local user, and the stand-in web app whose start
// creates the settings schema with no lock (issue 16).
import test from 'ava';
import { NodeSSH } from 'node-ssh';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, resolveAll, type ResolvedHost } from '../../src/inventory/index.ts';
import { hostVerifierFor, parseKnownHosts } from '../lab/known-hosts.ts';
import { startLab, type Lab } from '../lab/lab.ts';
import { PATRONI_HEADER } from '../lab/shapes.ts';
import { run } from '../lab/sh.ts';
import { installWebTools } from '../lab/webapp.ts';
import { connectFrom, sql } from './helpers.ts';

// Namespaces are machine-wide: this file's labs are named shp* on 10.231.240-241.0/24 only.
let root: Lab; // rootLogin + webOnPrimary 'second-name' + webPython + webApp
let small: Lab | undefined; // webOnPrimary 'same-name', no other web host, patroniHba, a standby
const CONFIG_LOCAL = '/usr/edb/pem/web/config_local.py';
const DB = 'shp_settings'; // role and database created by hand, as deploy would
const PASSWORD = 'Shp-settings-pw1';
const TABLES = 8; // the stand-in web app's schema
const MALLORY = 'shpmallory';

test.before(async () => {
  [root, small] = await Promise.all([
    startLab({ name: 'shproot', subnet: '10.231.240.0/24', webHosts: 2, standby: false, rootLogin: true, webOnPrimary: 'second-name', webPython: true, webApp: true }),
    startLab({ name: 'shpsmall', subnet: '10.231.241.0/24', webHosts: 0, webOnPrimary: 'same-name', patroniHba: true }),
  ]);
});

test.after.always(async () => {
  await Promise.all([root?.stop(), small?.stop()]);
});

async function ssh(lab: Lab, address: string, command: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const known = parseKnownHosts(readFileSync(lab.knownHostsPath, 'utf8'));
  const conn = await new NodeSSH().connect({
    host: address, port: 22, username: lab.sshUser, privateKeyPath: lab.keyPath,
    hostVerifier: hostVerifierFor(known, address, 22), readyTimeout: 10_000,
  });
  try {
    return await conn.execCommand(command);
  } finally {
    conn.dispose();
  }
}

function hostsOf(lab: Lab): Map<string, ResolvedHost> {
  return new Map(resolveAll(loadInventory(lab.inventoryPath)).map((h) => [h.name, h]));
}
const groupHosts = (lab: Lab, group: string): string[] => loadInventory(lab.inventoryPath).groups.get(group)?.hosts ?? [];

// ---- root login, no sudo -------------------------------------------------------------------

test.serial('rootLogin: root logs in to every host with the lab key, and sudo is not installed there', async (t) => {
  t.is(root.sshUser, 'root');
  for (const h of root.hosts) {
    const r = await ssh(root, h.address, 'id -un; hostname; command -v sudo || echo no-sudo; ls /usr/bin/sudo; sudo -n true');
    t.is(r.code, 127, `${h.name}: ${r.stderr}`);
    t.deepEqual(r.stdout.trim().split('\n'), ['root', h.name, 'no-sudo'], h.name);
    t.regex(r.stderr, /cannot access '\/usr\/bin\/sudo': No such file or directory/, h.name);
    t.regex(r.stderr, /sudo: command not found/, h.name); // root's shell, bash
    const sh = await ssh(root, h.address, "sh -c 'sudo -n -u postgres true'");
    t.regex(sh.stderr, /sudo: not found/, h.name); // dash, as a tool's `sh -c` would see it
  }
});

test.serial("rootLogin: root's home on a host is its own /root, mode 0700, and postgres cannot enter it", async (t) => {
  const r = await ssh(root, root.host('pg-primary').address, "pwd; stat -c '%a %U' /root; ls -A /root");
  t.deepEqual(r.stdout.trim().split('\n'), ['/root', '700 root', '.bashrc', '.profile'], "the machine's own /root stays hidden");
  // What a tool that runs `runuser -u postgres -- psql` from root's home gets: a warning, then the query.
  const viaSsh = await ssh(root, root.host('pg-primary').address, "runuser -u postgres -- psql -c 'select 1'");
  t.regex(viaSsh.stderr, /could not change directory to "\/root": Permission denied/);
  const viaExec = await root.exec('pg-primary', ['sh', '-c', "cd /root && exec runuser -u postgres -- psql -XAt -c 'select 1'"]);
  t.regex(viaExec.stderr, /could not change directory to "\/root": Permission denied/);
  t.is(viaExec.stdout.trim(), '1');
});

test.serial('rootLogin: the inventory says ansible_user=root and no become, on every host', (t) => {
  const text = readFileSync(root.inventoryPath, 'utf8');
  t.notRegex(text, /ansible_become/);
  for (const h of hostsOf(root).values()) {
    t.is(h.vars['ansible_user'], 'root', h.name);
    t.false('ansible_become' in h.vars, h.name);
  }
});

// ---- the web app on the primary's machine ---------------------------------------------------

test.serial("webOnPrimary 'second-name': pem-server in [webhosts] is the primary's machine at the same address", async (t) => {
  const hosts = hostsOf(root);
  const primary = root.host('pg-primary').address;
  t.deepEqual(groupHosts(root, 'backends'), ['pg-primary']);
  t.deepEqual(groupHosts(root, 'webhosts'), ['pem-server', 'web-1', 'web-2']);
  t.deepEqual(root.webHostNames, ['pem-server', 'web-1', 'web-2']);
  t.is(hosts.get('pem-server')!.vars['ansible_host'], primary);
  t.is(hosts.get('pg-primary')!.vars['ansible_host'], primary);
  t.false(hosts.get('pg-primary')!.groups.includes('webhosts'));
  t.is(root.host('pem-server'), root.host('pg-primary'));
  t.deepEqual(root.aliases, { 'pem-server': 'pg-primary' });
  // One machine, one host key: known_hosts verifies it under either name.
  t.is((await ssh(root, String(hosts.get('pem-server')!.vars['ansible_host']), 'hostname')).stdout.trim(), 'pg-primary');
  // pem_web_subnet: the web hosts' block and the primary's own address, as Postgres sees its own web app.
  t.is(root.pemWebSubnet, `${root.webSubnet},${primary}/32`);
  for (const h of hosts.values()) t.is(h.vars['pem_web_subnet'], root.pemWebSubnet, h.name);
});

test.serial("webOnPrimary: the primary's machine has the web app's files, which its web user can read", async (t) => {
  for (const lab of [root, small!]) {
    const r = await lab.exec('pg-primary', ['sh', '-c', 'cd /usr/edb/pem/web && stat -c "%n %a %U:%G" config.py config_local.py && grep -c SERVER_MODE config.py config_local.py'], { user: 'www-data' });
    t.is(r.code, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['config.py 644 root:www-data', 'config_local.py 640 root:www-data', 'config.py:1', 'config_local.py:1']);
  }
  // The hosts keep their own: web-1 of the root lab has no config_local.py yet, as before.
  t.is((await root.exec('web-1', ['test', '-e', CONFIG_LOCAL])).code, 1);
});

test.serial("webOnPrimary 'same-name': pg-primary is in [backends] and [webhosts]; alone, pem_web_subnet is its own /32", (t) => {
  const lab = small!;
  t.deepEqual(groupHosts(lab, 'backends'), ['pg-primary', 'pg-standby']);
  t.deepEqual(groupHosts(lab, 'webhosts'), ['pg-primary']);
  t.deepEqual(lab.webHostNames, ['pg-primary']);
  t.deepEqual(lab.aliases, {});
  const primary = hostsOf(lab).get('pg-primary')!;
  t.deepEqual(primary.groups, ['all', 'backends', 'webhosts']);
  t.is(primary.vars['ansible_host'], lab.host('pg-primary').address);
  t.is(primary.vars['pem_web_subnet'], `${lab.host('pg-primary').address}/32`);
  // The default login stays: the lab user with sudo.
  t.is(primary.vars['ansible_user'], 'labadmin');
  t.is(primary.vars['ansible_become'], 'true');
  t.false(lab.hosts.some((h) => h.role === 'web'));
});

// ---- pem_web_python ---------------------------------------------------------------------------

test.serial("webPython: pem_web_python on the web hosts imports the web app's pinned SQLAlchemy, for any user", async (t) => {
  const python = root.webTools!.python;
  for (const [name, h] of hostsOf(root)) t.is(h.vars['pem_web_python'], h.groups.includes('webhosts') ? python : undefined, name);
  for (const host of ['web-1', 'pem-server']) {
    for (const user of ['root', 'www-data', 'nobody']) {
      const r = await root.exec(host, [python, '-c', 'import sqlalchemy, psycopg; print(sqlalchemy.__version__)'], { user });
      t.is(r.stdout.trim(), '2.0.52', `${host} as ${user}: ${r.stderr}`);
    }
  }
  // What the tool asks of it: parse a URI with SQLAlchemy's own parser.
  const parsed = await root.exec('web-1', [python, '-c',
    "import sqlalchemy as sa, sys; u = sa.make_url(sys.argv[1]); print(u.query['host'])",
    'postgresql+psycopg://u:p@/db?host=h1:5432&host=h2:5433']);
  t.is(parsed.stdout.trim(), "('h1:5432', 'h2:5433')", parsed.stderr);
});

// ---- Patroni --------------------------------------------------------------------------------

test.serial("patroniHba: the primary's pg_hba.conf starts with Patroni's header, then rules Postgres loads", async (t) => {
  const lab = small!;
  const file = (host: string) => readFile(lab.hostPath(host, '/var/lib/postgresql/15/main/pg_hba.conf'), 'utf8');
  const primary = await file('pg-primary');
  t.true(primary.startsWith('# Do not edit this file manually!\n# It will be overwritten by Patroni!\n'), primary.slice(0, 120));
  t.regex(primary, /\nhostssl pem \+pem_user \S+ scram-sha-256\n/);
  t.is(await sql(lab, 'pg-primary', 'select count(*) filter (where error is not null) from pg_hba_file_rules'), '0');
  t.is(await sql(lab, 'pg-primary', "select count(*) from pg_hba_file_rules where type = 'hostssl' and 'pem' = any(database)"), '2');
  t.false((await file('pg-standby')).startsWith(PATRONI_HEADER), 'only the backends asked for');
  await lab.patroniHba('pg-standby');
  t.true((await file('pg-standby')).startsWith(PATRONI_HEADER));
  t.is(await sql(lab, 'pg-standby', 'select count(*) filter (where error is not null) from pg_hba_file_rules'), '0');
});

// ---- the stand-in web app -------------------------------------------------------------------

/** The settings database by hand, as deploy would make it: role, database, grants, a hostssl rule per web CIDR, reload. */
async function settingsDatabase(lab: Lab): Promise<void> {
  await sql(lab, 'pg-primary', [
    `CREATE ROLE ${DB} LOGIN PASSWORD '${PASSWORD}';`,
    `CREATE DATABASE ${DB};`,
    `REVOKE CONNECT ON DATABASE ${DB} FROM PUBLIC;`,
    `GRANT CONNECT ON DATABASE ${DB} TO ${DB};`,
  ].join('\n'));
  await sql(lab, 'pg-primary', `GRANT USAGE, CREATE ON SCHEMA public TO ${DB};`, DB);
  const hbaPath = lab.hostPath('pg-primary', await sql(lab, 'pg-primary', 'show hba_file'));
  const lines = (await readFile(hbaPath, 'utf8')).split('\n');
  const at = lines.findIndex((l) => /^host\s+all\s+all\s+0\.0\.0\.0\/0\s+reject/.test(l));
  lines.splice(at, 0, ...lab.pemWebSubnet.split(',').map((cidr) => `hostssl ${DB} ${DB} ${cidr} scram-sha-256`));
  await writeFile(hbaPath, lines.join('\n'));
  await sql(lab, 'pg-primary', 'select pg_reload_conf()');
}

async function pointAtSettings(lab: Lab, host: string): Promise<void> {
  const uri = `postgresql://${DB}:${PASSWORD}@${lab.host('pg-primary').address}:5432/${DB}?sslmode=require`;
  const r = await lab.exec(host, ['sh', '-c', 'printf "%s\\n" "$2" >> "$1" && chgrp www-data "$1" && chmod 0640 "$1"', 'sh', CONFIG_LOCAL, `CONFIG_DATABASE_URI = "${uri}"`]);
  if (r.code !== 0) throw new Error(`${host}: ${r.stderr}`);
}

const tableCount = async (lab: Lab): Promise<number> =>
  Number(await sql(lab, 'pg-primary', `select count(*) from pg_tables where schemaname = 'public' and tableowner = '${DB}'`, DB));
const dropSchema = (lab: Lab): Promise<string> => sql(lab, 'pg-primary',
  `DO $$DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = '${DB}'
   LOOP EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', t); END LOOP; END$$;`, DB);
const sh = (lab: Lab, host: string, command: string) => lab.exec(host, ['sh', '-c', command], { timeoutMs: 60_000 });

test.serial('webApp: the inventory runs the stand-in web app as pem_web_restart and pem_web_health', (t) => {
  const tools = root.webTools!;
  t.is(tools.restart, `${tools.standIn} restart`);
  t.is(tools.health, `${tools.standIn} health`);
  for (const host of root.webHostNames) {
    const v = hostsOf(root).get(host)!.vars;
    t.is(v['pem_web_restart'], tools.restart, host);
    t.is(v['pem_web_health'], tools.health, host);
  }
});

test('webApp: lazy: pem_web_restart only stops the stand-in (restart --lazy), pem_web_health starts it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shp-webtools-'));
  try {
    const tools = await installWebTools(dir, { lazy: true });
    t.is(tools.restart, `${join(dir, 'webapp', 'pem-web')} restart --lazy`);
    t.is(tools.health, `${join(dir, 'webapp', 'pem-web')} health`);
    t.regex(await readFile(tools.python, 'utf8'), /^PYTHONPATH=\S+\/webapp-consumer\/vendor\$\{PYTHONPATH:\+:\$PYTHONPATH\}$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.serial('the stand-in web app, started alone on an empty settings database, creates its tables as the role', async (t) => {
  await settingsDatabase(root);
  for (const h of ['web-1', 'web-2', 'pem-server']) await pointAtSettings(root, h);
  const { restart, health } = root.webTools!;
  t.is((await sh(root, 'web-1', health)).code, 4, 'not started yet');
  const r = await sh(root, 'web-1', restart);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^pem-web on web-1: started, settings in 10\.231\.240\.10:5432 \(created 8 tables\)/);
  t.is(await tableCount(root), TABLES);
  t.is(await sql(root, 'pg-primary', "select count(*) from preferences where name = 'theme'", DB), '1');
  const h = await sh(root, 'web-1', health);
  t.is(h.code, 0, h.stderr);
  t.regex(h.stdout, /"created": 8/);
  // It ran as the web app's user, www-data (uid 33), reading config_local.py as the real app would.
  const log = await readFile(root.hostPath('web-1', '/tmp/pem-web-standin/log'), 'utf8');
  t.regex(log, /web-1 pid=\d+ uid=33 started \(created 8 tables\)/);
});

test.serial('with the schema complete, the stand-in just starts, on another host and on the primary under its second name', async (t) => {
  for (const host of ['web-2', 'pem-server']) {
    const r = await sh(root, host, root.webTools!.restart);
    t.is(r.code, 0, `${host}: ${r.stderr}`);
    t.regex(r.stdout, /started, settings in 10\.231\.240\.10:5432 \(schema present\)/, host);
  }
  t.is(await tableCount(root), TABLES);
  t.is(await sql(root, 'pg-primary', "select count(*) from preferences where name = 'theme'", DB), '1');
});

test.serial('the stand-in fails when started while another host is mid-creation, and succeeds once the schema is complete', async (t) => {
  await dropSchema(root);
  const { standIn, restart, health } = root.webTools!;
  const first = sh(root, 'web-1', `${standIn} restart --delay 0.5`);
  let n = 0;
  for (let i = 0; i < 200 && n === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    n = await tableCount(root);
  }
  t.true(n > 0 && n < TABLES, `mid-creation: ${n} tables`);
  const second = await sh(root, 'web-2', restart);
  t.is(second.code, 3, second.stdout + second.stderr);
  // However far the first has got (one table or more, as the machine's load decides).
  t.regex(second.stderr, /^pem-web on web-2: FAILED to start: found \d of the web app's 8 tables \(alembic_version(, [^)]*)?\): another web app is creating the schema right now/);
  t.is((await sh(root, 'web-2', health)).code, 4, 'a failed start is not healthy');
  const one = await first;
  t.is(one.code, 0, one.stderr);
  t.regex(one.stdout, /created 8 tables/);
  const again = await sh(root, 'web-2', restart);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /schema present/);
  t.is((await sh(root, 'web-2', health)).code, 0);
});

test.serial('two stand-ins started together on an empty database: one creates the schema, the other fails on a DDL error', async (t) => {
  await dropSchema(root);
  // 1 s before each CREATE TABLE: both find the database empty unless they start a second apart.
  const cmd = `${root.webTools!.standIn} restart --delay 1`;
  const results = await Promise.all(['web-1', 'web-2'].map((h) => sh(root, h, cmd)));
  const ok = results.filter((r) => r.code === 0);
  const failed = results.filter((r) => r.code !== 0);
  t.is(ok.length, 1, results.map((r) => r.stdout + r.stderr).join('\n'));
  t.is(failed[0]?.code, 3);
  t.regex(failed[0]?.stderr ?? '', /FAILED to start: CREATE TABLE alembic_version failed after 0 of 8 tables: .*: another web app is creating the schema at the same time/);
  t.is(await tableCount(root), TABLES);
});

test.serial('a lazy restart only stops the stand-in; its first health check starts it and creates the schema', async (t) => {
  await dropSchema(root);
  const { standIn, health } = root.webTools!;
  const r = await sh(root, 'web-1', `${standIn} restart --lazy`);
  t.is(r.code, 0, r.stderr);
  t.is(await tableCount(root), 0);
  const first = await sh(root, 'web-1', health);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /created 8 tables/);
  t.regex((await sh(root, 'web-1', health)).stdout, /pem-web on web-1: up /);
});

test.serial("the stand-in does not start when the web app's user cannot read config_local.py", async (t) => {
  await sh(root, 'web-2', `chmod 0600 ${CONFIG_LOCAL}`);
  const r = await sh(root, 'web-2', root.webTools!.restart);
  t.is(r.code, 1);
  t.regex(r.stderr, /cannot load the configuration in \/usr\/edb\/pem\/web: PermissionError/);
  await sh(root, 'web-2', `chmod 0640 ${CONFIG_LOCAL}`);
  t.is((await sh(root, 'web-2', root.webTools!.restart)).code, 0);
});

test.serial("the web app's parser runs in the primary's namespace and reaches the primary from its own address", async (t) => {
  const consumer = root.webTools!.consumer;
  const c = await root.exec('pg-primary', ['/usr/bin/python3', consumer, CONFIG_LOCAL], { user: 'www-data' });
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /^ok 10\.231\.240\.10 ssl \d+/);
  const seen = await connectFrom(root, 'pg-primary', `host=10.231.240.10 dbname=${DB} user=${DB} sslmode=require`, PASSWORD, 'select inet_client_addr()');
  t.is(seen.stdout.trim(), '10.231.240.10', seen.stderr); // within pem_web_subnet's <primary>/32
});

// ---- a hostile local user (last: it stops the small lab) ----------------------------------------

test.serial('a hostile local user runs commands on the hosts, cannot read the web config, and goes with the lab', async (t) => {
  const lab = small!;
  const mallory = await lab.addLocalUser(MALLORY);
  t.true(mallory.uid >= 1000);
  t.is((await mallory.exec('pg-primary', ['id', '-un'])).stdout.trim(), MALLORY);
  const read = await mallory.exec('pg-primary', ['cat', CONFIG_LOCAL]);
  t.not(read.code, 0);
  t.regex(read.stderr, /Permission denied/);
  t.is((await mallory.exec('pg-primary', ['sh', '-c', 'echo planted > /tmp/planted && cat /tmp/planted'])).stdout.trim(), 'planted');
  t.is((await mallory.exec('pg-primary', ['psql', '-XAtc', 'select 1'])).code, 2, 'no peer login to Postgres');
  await t.throwsAsync(() => lab.addLocalUser(MALLORY), { message: /already exists/ });
  await t.throwsAsync(() => lab.addLocalUser('postgres'), { message: /system account/ });
  t.is((await run('id', ['-u', MALLORY])).code, 0);
  await lab.stop();
  small = undefined;
  t.not((await run('id', ['-u', MALLORY])).code, 0, 'removed with the lab');
  t.false((await run('ip', ['netns', 'list'])).stdout.includes('shpsmall-'));
});
