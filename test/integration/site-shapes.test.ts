// The tool on the site shapes of issues 13 and 14 (test/lab/README-shapes.md): root over SSH with
// no sudo, a web app on the primary's own machine (under its own name and under a second one), a
// web host outside every pem_web_subnet, a restart that never returns, a pg_hba.conf Patroni
// writes, and a reload that never happened. Each site: deploy, verify, a second deploy that
// changes nothing, rollback to the bytes it started from.
import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, sql, recapRows } from './helpers.ts';
import { fileOn, inventoryWith, namesIn, password, processesOn, spawnCli, waitUntil, type JsonRun } from './faults-shared.ts';

// Namespaces are machine-wide: this file's labs are named ss* on 10.231.200-203.0/24 only.
const FILE = '/usr/edb/pem/web/config_local.py';
const PG_DATA = '/var/lib/postgresql/15/main';
const HBA = `${PG_DATA}/pg_hba.conf`;
const BACKENDS = ['pg-primary', 'pg-standby'];

let root: Lab; // rootLogin: ssh as root, no sudo on the hosts; two web hosts of their own
let second: Lab; // webOnPrimary 'second-name' (pem-server in [webhosts] is the primary's machine), over SSH as root
let same: Lab; // webOnPrimary 'same-name': pg-primary in [backends] and in [webhosts]
let patroni: Lab; // patroniHba: the primary's pg_hba.conf is Patroni's

test.before(async () => {
  [root, second, same, patroni] = await Promise.all([
    startLab({ name: 'ssroot', subnet: '10.231.200.0/24', webHosts: 2, rootLogin: true, webPython: true }),
    startLab({ name: 'sssecond', subnet: '10.231.201.0/24', webHosts: 1, webOnPrimary: 'second-name', rootLogin: true, webPython: true }),
    startLab({ name: 'sssame', subnet: '10.231.202.0/24', webHosts: 1, webOnPrimary: 'same-name', webPython: true }),
    startLab({ name: 'sspat', subnet: '10.231.203.0/24', webHosts: 1, patroniHba: true }),
  ]);
});

test.after.always(async () => {
  await Promise.all([root?.stop(), second?.stop(), same?.stop(), patroni?.stop()]);
});

const env = (n: number) => ({ PEM_SETTINGS_PASSWORD: password(n) });
const deploy = (lab: Lab, n: number, ...args: string[]) => cli(['deploy', '-i', lab.inventoryPath, ...args], env(n));
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const recap = recapRows;

/** Every inventory host of the job: the backends and the [webhosts] names. */
const jobHosts = (lab: Lab): string[] => [...new Set([...BACKENDS.filter((b) => lab.hosts.some((h) => h.name === b)), ...lab.webHostNames])];

/** The bytes of every file the job touches, and the databases' effective ACLs. */
async function snapshot(lab: Lab): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const h of lab.webHostNames) out[`${h}:${FILE}`] = await fileOn(lab, h, FILE);
  for (const h of BACKENDS) out[`${h}:${HBA}`] = await fileOn(lab, h, HBA);
  out['datacl'] = await sql(lab, 'pg-primary',
    `SELECT string_agg(datname || ' ' || coalesce(datacl, acldefault('d', datdba))::text, '; ' ORDER BY datname) FROM pg_database WHERE datname <> 'pem_user_settings'`);
  return out;
}

/** No message about a run lock at all: a run must never wait for (or be refused by) itself. */
function noLockWait(t: ExecutionContext, text: string): void {
  t.notRegex(text, /waiting up to .* for the run lock/);
  t.notRegex(text, /run lock/);
}

/**
 * Deploy, checks, verify, a second deploy with changed=0 on every host, rollback to the bytes of
 * the start. `afterDeploy` looks at the site between the deploy and the rollback.
 */
async function siteCycle(t: ExecutionContext, lab: Lab, n: number, afterDeploy: (stdout: string) => Promise<void>): Promise<void> {
  const before = await snapshot(lab);
  const started = Date.now();
  const d = await deploy(lab, n);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.true(Date.now() - started < 60_000, 'the run finished without waiting on a lock');
  noLockWait(t, d.stdout + d.stderr);
  t.notRegex(d.stdout + d.stderr, /could not change directory/);
  const rows = recap(d.stdout);
  t.deepEqual([...rows.keys()].sort(), jobHosts(lab).sort(), d.stdout);
  for (const [h, row] of rows) t.regex(row, /changed=[1-9]\d* .*failed=0 +unreachable=0/, `${h} changed on the first deploy: ${row}`);
  await afterDeploy(d.stdout);

  const v = await cli(['verify', '-i', lab.inventoryPath], env(n));
  t.is(v.code, 0, v.stdout + v.stderr);
  t.regex(v.stdout, /verify: every check holds/);
  noLockWait(t, v.stdout + v.stderr);

  const again = await deploy(lab, n);
  t.is(again.code, 0, again.stdout + again.stderr);
  noLockWait(t, again.stdout + again.stderr);
  const rows2 = recap(again.stdout);
  t.deepEqual([...rows2.keys()].sort(), jobHosts(lab).sort());
  for (const [h, row] of rows2) t.regex(row, /changed=0 +failed=0 +unreachable=0/, `${h}: second deploy: ${row}`);

  const r = await cli(['rollback', '-i', lab.inventoryPath]);
  t.is(r.code, 0, r.stdout + r.stderr);
  noLockWait(t, r.stdout + r.stderr);
  t.deepEqual(await snapshot(lab), before, 'rollback: every file byte for byte, every ACL as before');
}

/** The URI deploy writes for the lab's two backends, password left as a pattern. */
const uriPattern = (lab: Lab): RegExp => new RegExp(
  `^CONFIG_DATABASE_URI = "postgresql://pem_user_settings:[^@"]+@${re(lab.host('pg-primary').address)},${re(lab.host('pg-standby').address)}:5432/pem_user_settings\\?[^"]*target_session_attrs=read-write[^"]*"\\r?$`, 'm');

/**
 * The web app's view from a host, as its user: consumer.py (the web app's parser) connects and
 * writes a row, then the same parser tells which address the server saw the connection come from.
 */
async function webAppReaches(t: ExecutionContext, lab: Lab, host: string): Promise<void> {
  const { consumer, vendor } = lab.webTools!;
  const c = await lab.exec(host, ['/usr/bin/python3', consumer, FILE], { user: 'www-data' });
  t.is(c.code, 0, `${host}: ${c.stdout}${c.stderr}`);
  t.regex(c.stdout, new RegExp(`^ok ${re(lab.host('pg-primary').address)} ssl \\d+`), host);
  const seen = await lab.exec(host, ['/usr/bin/python3', '-c', [
    'import re, runpy, sys',
    'sys.path.insert(0, sys.argv[1])',
    'import sqlalchemy as sa',
    'uri = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", runpy.run_path(sys.argv[2])["CONFIG_DATABASE_URI"])',
    'with sa.create_engine(uri, connect_args={"connect_timeout": 5}).connect() as c:',
    '    print(*c.execute(sa.text("SELECT inet_server_addr(), inet_client_addr()")).one())',
  ].join('\n'), vendor, FILE], { user: 'www-data' });
  t.is(seen.code, 0, `${host}: ${seen.stderr}`);
  t.is(seen.stdout.trim(), `${lab.host('pg-primary').address} ${lab.host(host).address}`, `${host} reaches the primary from its own address`);
}

// ---- 1. root over SSH, no sudo ------------------------------------------------------------------

test.serial('rootLogin: deploy, verify, a second deploy with changed=0 and rollback work as root with no sudo on the hosts', async (t) => {
  t.is(root.sshUser, 'root');
  t.notRegex(await readFile(root.inventoryPath, 'utf8'), /ansible_become/);
  await siteCycle(t, root, 1, async (stdout) => {
    // The pg_hba stage runs psql as postgres from root's home (/root, 0700): its "could not
    // change directory" warning is not data.
    for (const b of BACKENDS) {
      t.regex(stdout, new RegExp(`^\\[pg_hba\\] ${b}: pg_hba.conf rule: changed - insert "hostssl pem_user_settings pem_user_settings ${re(root.webSubnet)} scram-sha-256"`, 'm'), b);
      t.is(await sql(root, b, `SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND 'pem_user_settings' = ANY(database) AND address = '${root.webSubnet.split('/')[0]}'`), '1', `${b}: the rule is loaded`);
    }
    for (const h of root.webHostNames) {
      t.regex((await readFile(root.hostPath(h, FILE), 'utf8')), uriPattern(root), h);
      await webAppReaches(t, root, h);
    }
  });
});

// ---- 2. the web app on the primary's own machine ----------------------------------------------

test.serial("webOnPrimary 'second-name': pem-server is the primary's machine; the run never waits on itself and its web app reaches the primary", async (t) => {
  t.deepEqual(second.webHostNames, ['pem-server', 'web-1']);
  await siteCycle(t, second, 2, async (stdout) => {
    t.regex(stdout, /^\[web\] pem-server: config_local.py: changed - CONFIG_DATABASE_URI set at line \d+/m);
    t.regex(await readFile(second.hostPath('pg-primary', FILE), 'utf8'), uriPattern(second), "the primary's machine's config_local.py");
    await webAppReaches(t, second, 'pg-primary');
    await webAppReaches(t, second, 'web-1');
  });
});

test.serial("webOnPrimary 'same-name': pg-primary in [backends] and [webhosts]; the run never waits on itself and its web app reaches the primary", async (t) => {
  t.deepEqual(same.webHostNames, ['pg-primary', 'web-1']);
  await siteCycle(t, same, 3, async (stdout) => {
    t.regex(stdout, /^\[web\] pg-primary: config_local.py: changed - CONFIG_DATABASE_URI set at line \d+/m);
    t.regex(stdout, /^\[pg_hba\] pg-primary: pg_hba.conf rule: changed/m);
    t.regex(await readFile(same.hostPath('pg-primary', FILE), 'utf8'), uriPattern(same));
    await webAppReaches(t, same, 'pg-primary');
    await webAppReaches(t, same, 'web-1');
  });
});

// ---- 3. a web host outside every pem_web_subnet ------------------------------------------------

test.serial('deploy --check warns, in the recap, of a web host whose address lies outside every pem_web_subnet', async (t) => {
  const text = await readFile(same.inventoryPath, 'utf8');
  const primary = same.host('pg-primary').address;
  const web1 = same.host('web-1').address;
  t.regex(text, new RegExp(`^pem_web_subnet=${re(same.webSubnet)},${re(primary)}/32$`, 'm'));
  const cases: [string, string, string][] = [
    [same.webSubnet, 'pg-primary', primary], // the web app on the primary forgotten
    [`${primary}/32`, 'web-1', web1], // a web host of its own forgotten
  ];
  for (const [subnet, outside, address] of cases) {
    const inventory = join(same.dir, `ss-subnet-${outside}.ini`);
    await writeFile(inventory, text.replace(/^pem_web_subnet=.*$/m, `pem_web_subnet=${subnet}`));
    const before = await snapshot(same);
    const r = await cli(['deploy', '-i', inventory, '--check'], env(3));
    t.is(r.code, 0, r.stdout + r.stderr);
    const warnings = r.stdout.slice(r.stdout.indexOf('\nWARNINGS\n'));
    t.true(r.stdout.includes('\nWARNINGS\n'), r.stdout);
    t.regex(warnings, new RegExp(`^- ${outside}: .*${re(address)} is outside every pem_web_subnet\\b`, 'm'), r.stdout);
    const other = outside === 'web-1' ? 'pg-primary' : 'web-1';
    t.notRegex(warnings, new RegExp(`^- ${other}: .*outside every pem_web_subnet`, 'm'), `${other} is inside`);
    t.deepEqual(await snapshot(same), before, '--check changed nothing');
  }
});

// ---- 7. a reload that never happened -----------------------------------------------------------

test.serial('a pg_hba.conf edited after the last reload is reloaded by the next deploy, and the one after changes nothing', async (t) => {
  const first = await deploy(same, 4);
  t.is(first.code, 0, first.stdout + first.stderr);
  await new Promise((r) => setTimeout(r, 1_100)); // pg_stat_file's modification time has whole seconds
  const loaded = await sql(same, 'pg-standby', 'SELECT pg_conf_load_time()');
  const path = same.hostPath('pg-standby', HBA);
  await writeFile(path, (await readFile(path, 'utf8')) + '# edited by hand, not yet reloaded\n');
  t.is(await sql(same, 'pg-standby', 'SELECT (pg_stat_file(current_setting(\'hba_file\'))).modification > pg_conf_load_time()'), 't');

  const r = await cli(['deploy', '-i', same.inventoryPath, '--json'], env(4));
  t.is(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as JsonRun;
  const steps = (h: string) => (doc.hosts[h]?.steps ?? []).filter((s) => s.status === 'changed').map((s) => `${s.stage}/${s.step}`);
  t.deepEqual(steps('pg-standby'), ['pg_hba/reload'], JSON.stringify(doc.hosts['pg-standby']));
  for (const h of ['pg-primary', 'web-1']) t.deepEqual(steps(h), [], h);
  t.true(await sql(same, 'pg-standby', `SELECT pg_conf_load_time() > '${loaded}'::timestamptz`) === 't', 'reloaded');

  const after = await deploy(same, 4);
  t.is(after.code, 0, after.stdout + after.stderr);
  for (const [h, row] of recap(after.stdout)) t.regex(row, /changed=0 /, h);
});

// ---- 5. a restart that never returns -----------------------------------------------------------

test.serial("pem_web_restart='sleep 1000' with pem_web_restart_timeout=3 fails that host alone, and leaves no sleep behind", async (t) => {
  // The web app's schema is there already (an app that has run before), so every web host
  // restarts as soon as its file is written.
  const tools = root.webTools!;
  const plain = await deploy(root, 5);
  t.is(plain.code, 0, plain.stdout + plain.stderr);
  const pre = await root.exec('web-1', ['sh', '-c', `${tools.standIn} restart`], { timeoutMs: 60_000 });
  t.regex(pre.stdout, /created 8 tables/, pre.stdout + pre.stderr);
  const inventory = await inventoryWith(root, 'ss-restart', { 'web-2': "pem_web_restart='sleep 1000' pem_web_restart_timeout=3" },
    `\n[webhosts:vars]\npem_web_restart='${tools.restart}'\n`);
  const sleeping = async () => (await processesOn(root, 'web-2')).some((p) => p.args === 'sleep 1000');
  const run = spawnCli(['deploy', '-i', inventory, '--json'], env(50)); // a new password: every file changes
  await waitUntil('the restart runs sleep 1000 on web-2', 30_000, sleeping);
  const r = await run.done;
  t.is(r.code, 1, r.stdout + r.stderr);
  t.true(r.ms < 60_000, `bounded: ${r.ms} ms`);
  const doc = JSON.parse(r.stdout) as JsonRun;
  const web2 = doc.hosts['web-2']!;
  t.is(web2.failed, 1, JSON.stringify(web2));
  const failed = web2.steps.find((s) => s.status === 'failed');
  t.regex(failed?.message ?? '', /pem_web_restart did not finish within 3 s/);
  t.is(doc.hosts['web-1']!.failed, 0, JSON.stringify(doc.hosts['web-1']));
  t.true(doc.hosts['web-1']!.steps.some((s) => s.stage === 'web' && s.status === 'changed' && /restart/.test(s.step)), 'web-1 restarted');
  for (const b of BACKENDS) t.is(doc.hosts[b]!.failed, 0, b);
  t.regex(doc.retry_file ?? '', /ss-restart\.retry$/);
  t.deepEqual((await readFile(doc.retry_file!, 'utf8')).split('\n').filter(Boolean), ['web-2']);
  t.regex(await readFile(root.hostPath('web-2', FILE), 'utf8'), uriPattern(root), 'the file was written before the restart');
  // timeout(1) killed the restart's process group: no sleep is left on web-2.
  await waitUntil('no sleep 1000 runs on web-2', 5_000, async () => !(await sleeping()));
  t.false(await sleeping());
});

test.serial('through sudo (ansible_become), a restart that never returns is stopped too, with the children it started in the background', async (t) => {
  // The same lab's web hosts are reached as labadmin with sudo: timeout(1) stops sudo, which must
  // take the restart's whole process group with it, a child left running in the background included.
  const inventory = await inventoryWith(same, 'ss-restart-sudo', { 'web-1': "pem_web_restart='sleep 1000 & sleep 1000; wait' pem_web_restart_timeout=3" });
  t.regex(await readFile(inventory, 'utf8'), /^ansible_become=true$/m);
  const sleeps = async () => (await processesOn(same, 'web-1')).filter((p) => p.args === 'sleep 1000').length;
  const run = spawnCli(['deploy', '-i', inventory, '--json'], env(51)); // a new password: every file changes
  await waitUntil('the restart runs two sleeps on web-1', 30_000, async () => (await sleeps()) === 2);
  const r = await run.done;
  t.is(r.code, 1, r.stdout + r.stderr);
  t.true(r.ms < 60_000, `bounded: ${r.ms} ms`);
  const doc = JSON.parse(r.stdout) as JsonRun;
  t.regex(doc.hosts['web-1']!.steps.find((s) => s.status === 'failed')?.message ?? '', /pem_web_restart did not finish within 3 s/);
  for (const h of ['pg-primary', 'pg-standby']) t.is(doc.hosts[h]!.failed, 0, h);
  t.deepEqual((await readFile(doc.retry_file!, 'utf8')).split('\n').filter(Boolean), ['web-1']);
  await waitUntil('no sleep 1000 runs on web-1', 5_000, async () => (await sleeps()) === 0);
  t.is(await sleeps(), 0);
});

// ---- 6. a pg_hba.conf Patroni writes -----------------------------------------------------------

test.serial("a Patroni-managed pg_hba.conf fails its backend before anything is written there, naming the rule and patronictl edit-config", async (t) => {
  const lab = patroni;
  const hba = await fileOn(lab, 'pg-primary', HBA);
  t.true(Buffer.from(hba!, 'base64').toString().startsWith('# Do not edit this file manually!\n'));
  const namesBefore = await namesIn(lab, 'pg-primary', PG_DATA);
  const web = await fileOn(lab, 'web-1', FILE);
  const loaded = await sql(lab, 'pg-primary', 'SELECT pg_conf_load_time()');
  const r = await deploy(lab, 6);
  t.is(r.code, 1, r.stdout + r.stderr);
  const line = `hostssl pem_user_settings pem_user_settings ${lab.webSubnet} scram-sha-256`;
  const failure = r.stdout.split('\n').find((l) => l.startsWith('[pg_hba] pg-primary:') && /failed/.test(l)) ?? '';
  t.true(failure.includes(line), r.stdout);
  t.regex(failure, /patronictl edit-config/);
  t.regex(recap(r.stdout).get('pg-primary') ?? '', /failed=1 /);
  t.is(await fileOn(lab, 'pg-primary', HBA), hba, 'byte-identical');
  t.deepEqual(await namesIn(lab, 'pg-primary', PG_DATA), namesBefore, 'no backup, no temporary file');
  t.is(await sql(lab, 'pg-primary', 'SELECT pg_conf_load_time()'), loaded, 'not reloaded');
  // The plain standby got its rule in the same stage; the web stage never ran.
  t.regex(r.stdout, /^\[pg_hba\] pg-standby: pg_hba.conf rule: changed/m);
  t.is(await fileOn(lab, 'web-1', FILE), web, 'web hosts are not pointed at a backend that is not ready');
});

// ---- 7. two runs at once on these shapes ---------------------------------------------------------

test.serial('two deploys started at once finish on root with no sudo, and where one machine holds two locks (a backend that is a web host too): one URI per file, the next deploy changes nothing', async (t) => {
  // root: every lock is root's; same: pg-primary's locks are postgres's and root's under one
  // name; second: the same two on one machine under two names. Neither run may wait on itself or
  // deadlock on the other (each would otherwise wait the whole --lock-timeout).
  for (const [lab, n] of [[root, 7], [same, 8], [second, 9]] as const) {
    const runs = [0, 1].map(() => spawnCli(['deploy', '-i', lab.inventoryPath, '--lock-timeout', '100'], env(n)));
    const [a, b] = await Promise.all(runs.map((r) => r.done));
    for (const r of [a!, b!]) {
      t.is(r.code, 0, `${lab.name}: ${r.stdout}${r.stderr}`);
      t.true(r.ms < 60_000, `${lab.name}: finished in ${r.ms} ms, not after a lock timeout`);
    }
    for (const h of lab.webHostNames) {
      const text = Buffer.from((await fileOn(lab, lab.aliases[h] ?? h, FILE)) ?? '', 'base64').toString('utf8');
      t.is(text.split('\n').filter((l) => /^CONFIG_DATABASE_URI\s*=/.test(l)).length, 1, `${lab.name} ${h}: exactly one active assignment`);
    }
    const again = await deploy(lab, n);
    t.is(again.code, 0, again.stdout + again.stderr);
    for (const [h, row] of recap(again.stdout)) t.regex(row, /changed=0 .*failed=0 +unreachable=0/, `${lab.name} ${h}: ${row}`);
  }
});
