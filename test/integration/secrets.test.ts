// Secrets on the lab (issue 6): with a distinctive role password and a sudo password, every mode
// of every command (deploy, --check --diff, --json, verify, a failing run, rollback) is run while
// each lab host's process arguments, process environments and file modes are sampled; then the
// password, in each form it travels in, must be in none of the places an operator or another
// local user could read: output, run records, retry files, backup names, process arguments and
// environments, the Postgres log with log_statement = 'all', and shell histories.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startLab, type Lab } from '../lab/lab.ts';
import type { RunResult } from '../lab/sh.ts';
import { cli, hostFile, sql, sudoPasswordUser, webAppRestart, webappConsumer } from './helpers.ts';

const run = promisify(execFile);
const PASSWORD = 'Zq9!distinct-p@ss "w0rd"/ä';
const BECOME_PASSWORD = `Bq7#sudo-unique 'pw' ${process.pid}`;
// A login user whose sudo needs a password. /etc is the machine's, shared by every lab: names no
// other test uses, removed again in after.always.
const PW_USER = 'pemsecpw';
const SUDOERS = '/etc/sudoers.d/pem-settings-secrets-test';
// Both secrets come from the .env beside the inventory, so no local process carries them in its
// environment either: any environment that holds one is a leak.
const env = { PEM_SETTINGS_PASSWORD: undefined, PEM_BECOME_PASSWORD: undefined };
const CONFIG = '/usr/edb/pem/web/config_local.py';
const WEBS = ['web-1', 'web-2', 'web-3'];
const RESTART_TAIL = `sleep 2; echo "restarted by $(id -un)" >> /tmp/restarts`;

let lab: Lab;
let work: string;
let site: string;
let failing: string;
const outputs: [string, string][] = [];
let samplers: Promise<RunResult>[] = [];

/** RFC 3986 percent-encoding, as config_local.py holds the password. */
const rfc3986 = (s: string) => [...Buffer.from(s, 'utf8')]
  .map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

/**
 * Every form a secret could leak in: as is, percent-encoded (both ways, either case) and, for each
 * of those, base64 at each of the three alignments (the run of base64 characters that encode only
 * the secret's bytes, whatever came before it in the encoded stream).
 */
function leakForms(secret: string): string[] {
  const plain = [secret, encodeURIComponent(secret), rfc3986(secret), rfc3986(secret).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())];
  const b64 = plain.flatMap((p) => [0, 1, 2].map((o) => {
    const bytes = Buffer.from(p, 'utf8').subarray(o);
    return bytes.subarray(0, bytes.length - (bytes.length % 3)).toString('base64');
  }));
  return [...new Set([...plain, ...b64])];
}
const FORMS = [...leakForms(PASSWORD), ...leakForms(BECOME_PASSWORD)];

/** Names the surface and the form (never the secret itself) of each leak found in text. */
function leaks(surface: string, text: string): string[] {
  return FORMS.flatMap((f, i) => (text.includes(f) ? [`${surface}: leak form #${i}`] : []));
}

const pwUser = sudoPasswordUser(PW_USER, BECOME_PASSWORD, SUDOERS);

/**
 * Runs on a lab host until /tmp/stop-sampler exists: the arguments (ps and /proc/N/cmdline) and
 * environments of every process, and the modes of the files that hold the password and of their
 * neighbours. awk keeps only lines not seen before, so the output stays small.
 */
function startSampler(host: string): Promise<RunResult> {
  const script = [
    'rm -f /tmp/stop-sampler',
    'while [ ! -e /tmp/stop-sampler ]; do',
    '  ps -eww -o args=',
    '  cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "; echo',
    '  cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"',
    '  stat -c "MODE %a %U:%G %n" /usr/edb/pem/web/* /usr/edb/pem/web/.[!.]* /var/lib/postgresql/15/main/*hba* /var/lib/postgresql/15/main/.*hba* 2>/dev/null',
    'done | awk \'!seen[$0]++\'',
  ].join('\n');
  return lab.exec(host, ['sh', '-c', script], { timeoutMs: 900_000 });
}

test.before(async () => {
  lab = await startLab({ name: 'sec51', subnet: '10.231.51.0/24' });
  await pwUser.create();

  for (const h of ['pg-primary', 'pg-standby']) {
    await sql(lab, h, "ALTER SYSTEM SET log_statement = 'all'").catch(() => {}); // the standby may refuse: it runs no changes anyway
    await sql(lab, h, 'SELECT pg_reload_conf()');
  }
  work = join(lab.dir, 'secrets');
  await mkdir(work, { recursive: true });
  // dotenv takes single-quoted values literally and unescapes nothing but \n in double quotes:
  // each secret is quoted with the quote it does not contain.
  await writeFile(join(work, '.env'), `PEM_SETTINGS_PASSWORD='${PASSWORD}'\nPEM_BECOME_PASSWORD="${BECOME_PASSWORD}"\n`, { mode: 0o600 });
  const text = (await readFile(lab.inventoryPath, 'utf8'))
    .replace(/^ansible_user=.*$/m, `ansible_user=${PW_USER}`)
    .replace('[all:vars]\n', `[webhosts:vars]\npem_web_user=www-data\npem_web_restart='${webAppRestart((await webappConsumer(lab)).consumer, RESTART_TAIL)}'\n\n[all:vars]\n`);
  site = join(work, 'site.ini');
  await writeFile(site, text);
  // web-1's restart fails, printing the file it was given and its environment: still no secret on screen.
  failing = join(work, 'failing.ini');
  await writeFile(failing, text.replace(/^web-1 .*$/m, (l) => `${l} pem_web_restart='env >&2; grep CONFIG_DATABASE_URI ${CONFIG} >&2; exit 3'`));
  samplers = lab.hosts.map((h) => startSampler(h.name));
});

test.after.always(async () => {
  if (lab) for (const h of lab.hosts) await writeFile(lab.hostPath(h.name, '/tmp/stop-sampler'), '').catch(() => {});
  await Promise.allSettled(samplers);
  await pwUser.remove();
  await lab?.stop();
});

async function step(title: string, args: string[], inventory = site): Promise<RunResult> {
  const r = await cli([...args, '-i', inventory], env);
  outputs.push([`${title} (stdout)`, r.stdout], [`${title} (stderr)`, r.stderr]);
  return r;
}

test.serial('deploy --check --diff shows the masked diff and SQL, with the verifier never the password', async (t) => {
  const r = await step('deploy --check --diff', ['deploy', '--check', '--diff']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /\+CONFIG_DATABASE_URI = "postgresql:\/\/pem_user_settings:\*{8}@/);
  t.regex(r.stdout, /CREATE ROLE .*PASSWORD .*\*{3}/, 'the SQL is shown, its password part masked');
  t.deepEqual(leaks('output', r.stdout + r.stderr), []);
});

test.serial('deploy --diff changes every host, restarts the web app with the operator\'s command as given', async (t) => {
  const r = await step('deploy --diff', ['deploy', '--diff']);
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const h of WEBS) {
    t.is((await lab.exec(h, ['cat', '/tmp/restarts'])).stdout, 'restarted by root\n', `${h}: the shell command ran once, as root through sudo`);
    const text = (await hostFile(lab, h, CONFIG)).toString();
    t.true(text.includes(rfc3986(PASSWORD)), `${h} holds the percent-encoded password: ${JSON.stringify(text)}`);
  }
  t.deepEqual(leaks('output', r.stdout + r.stderr), []);
});

test.serial('deploy --json: one document, changed=0, no secret', async (t) => {
  const r = await step('deploy --json', ['deploy', '--json']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as { hosts: Record<string, { changed: number }> };
  t.true(Object.values(doc.hosts).every((h) => h.changed === 0), r.stdout);
});

test.serial('verify and verify --json connect with the password from every web host and never show it', async (t) => {
  const plain = await step('verify', ['verify']);
  t.is(plain.code, 0, plain.stdout + plain.stderr);
  const json = await step('verify --json', ['verify', '--json']);
  t.is(json.code, 0, json.stdout + json.stderr);
  JSON.parse(json.stdout);
});

test.serial('a failing run (a web host unreachable, a restart that prints the file and its environment) shows no secret', async (t) => {
  // Make both web-1 and web-3 need a change; web-3 cannot be reached, web-1's restart fails.
  for (const h of ['web-1', 'web-3']) await writeFile(lab.hostPath(h, CONFIG), "CONFIG_DATABASE_URI = 'sqlite:////var/lib/pem/pem.db'\n");
  await lab.stopSshd('web-3');
  try {
    const r = await step('failing deploy', ['deploy', '--diff'], failing);
    t.is(r.code, 1, r.stdout + r.stderr);
    t.regex(r.stdout, /web-1: restart web app: failed - pem_web_restart exited with 3: .*CONFIG_DATABASE_URI = "postgresql:\/\/pem_user_settings:\*{8}@/);
    t.regex(r.stdout, /^web-3 .*unreachable=1/m);
    t.is(await readFile(join(work, 'failing.retry'), 'utf8'), 'web-1\nweb-3\n');
    const json = await step('failing deploy --json', ['deploy', '--json'], failing);
    t.is(json.code, 1);
    t.true(JSON.parse(json.stdout).hosts['web-3'].unreachable);
  } finally {
    await lab.startSshd('web-3');
  }
});

test.serial('rollback --check --diff and rollback show no secret', async (t) => {
  const check = await step('rollback --check --diff', ['rollback', '--check', '--diff']);
  t.is(check.code, 0, check.stdout + check.stderr);
  const r = await step('rollback', ['rollback']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is((await hostFile(lab, 'web-1', CONFIG)).toString(), "CONFIG_DATABASE_URI = 'sqlite:////var/lib/pem/pem.db'\n", 'rolled back to the file before the failing run');
});

test.serial('no surface holds the password or the sudo password, in any form', async (t) => {
  for (const h of lab.hosts) await writeFile(lab.hostPath(h.name, '/tmp/stop-sampler'), '');
  const samples = await Promise.all(samplers);
  const found: string[] = [];

  for (const [title, text] of outputs) found.push(...leaks(title, text));

  const runs = join(work, '.pem-settings', 'runs');
  const records = await readdir(runs);
  t.true(records.length >= 3, `run records: ${records.join(' ')}`);
  for (const f of records) found.push(...leaks(`run record ${f}`, f + (await readFile(join(runs, f), 'utf8'))));
  for (const f of (await readdir(work)).filter((n) => n.endsWith('.retry'))) found.push(...leaks(`retry file ${f}`, await readFile(join(work, f), 'utf8')));

  for (const h of WEBS) found.push(...leaks(`${h} web dir names`, (await lab.exec(h, ['ls', '-a', '/usr/edb/pem/web'])).stdout));
  for (const h of ['pg-primary', 'pg-standby']) found.push(...leaks(`${h} data dir names`, (await lab.exec(h, ['ls', '-a', '/var/lib/postgresql/15/main'])).stdout));

  // The process table: the samplers saw the tool's remote commands (sudo, sh -s) and environments.
  const seen = samples.map((s) => s.stdout).join('\n');
  t.true(seen.includes('sudo -S'), 'the samplers saw sudo being run');
  t.regex(seen, /^SSH_CONNECTION=/m, 'the samplers saw the remote commands\' environments');
  samples.forEach((s, i) => found.push(...leaks(`process arguments/environments on ${lab.hosts[i]!.name}`, s.stdout)));

  // Postgres logged every statement; the SCRAM verifier may appear, the password may not.
  for (const h of ['pg-primary', 'pg-standby']) {
    const log = await readFile(join(lab.dir, 'hosts', h, 'pglog', 'postgresql.log'), 'utf8');
    if (h === 'pg-primary') {
      t.regex(log, /statement: .*pem_user_settings/, 'log_statement = all is in effect');
      t.regex(log, /SCRAM-SHA-256\$4096:/, 'the verifier is what was sent');
    }
    found.push(...leaks(`${h} postgres log`, log));
  }

  const histories = ['/root/.bash_history', '/home/labadmin/.bash_history', `/home/${PW_USER}/.bash_history`, `/home/${PW_USER}/.sh_history`,
    '/var/lib/postgresql/.bash_history', '/var/lib/postgresql/.psql_history', '/root/.psql_history'];
  for (const h of lab.hosts) {
    for (const path of histories) {
      const r = await lab.exec(h.name, ['cat', path]);
      if (r.code === 0) found.push(...leaks(`${h.name}:${path}`, r.stdout));
    }
  }
  t.deepEqual(found, []);
});

test.serial('files holding the password were never readable by others, during the run and after', async (t) => {
  const samples = await Promise.all(samplers);
  const modes = samples.flatMap((s) => s.stdout.split('\n').filter((l) => l.startsWith('MODE ')));
  const secretFiles = modes.filter((l) => /\/\.?config_local\.py|config_local\.pem-settings/.test(l));
  t.true(secretFiles.some((l) => /config_local\.py\.pem-settings-.*\.bak$/.test(l)), 'the samplers saw the backups');
  t.deepEqual(secretFiles.filter((l) => !/^MODE [0-7]*[0-7][0-7]0 /.test(l)), [], 'no file with the password had permissions for others');
  for (const h of WEBS) {
    const r = await lab.exec(h, ['sh', '-c', 'stat -c "%a %n" /usr/edb/pem/web/config_local.py*']);
    const lines = r.stdout.trim().split('\n');
    t.true(lines.length >= 2, `${h}: the file and its backups: ${r.stdout}`);
    t.deepEqual(lines.filter((l) => !/^[0-7]?[0-7][0-7]0 /.test(l)), [], h);
  }
});
