// Bad input through the real entry point (main), the way an operator meets it: one clear line
// (or one list) naming the file:line, host and variable, exit 2, and no stack trace. Every
// inventory here points at TEST-NET addresses (192.0.2.0/24): nothing may be contacted.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../../src/cli.ts';
import { pemJob } from '../../tasks/job.ts';

// The password comes from a .env file beside each inventory; the worker's own environment must not interfere.
delete process.env['PEM_SETTINGS_PASSWORD'];
delete process.env['PEM_BECOME_PASSWORD'];

const GOOD_PASSWORD = 'a-long-enough-password';

const BASE = `# a site
[backends]
db1 ansible_host=192.0.2.11
db2 ansible_host=192.0.2.12

[webhosts]
web1 ansible_host=192.0.2.21
web2 ansible_host=192.0.2.22

[all:vars]
pem_web_subnet=192.0.2.0/24
`;

interface Outcome {
  code: number;
  out: string;
  err: string;
  file: string;
}

/** Writes the inventory (and a .env unless password is null) into a fresh directory and runs main. */
async function run(argv: string[], inventory: string, password: string | null = GOOD_PASSWORD): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'pem-cli-errors-'));
  const file = join(dir, 'site.ini');
  writeFileSync(file, inventory);
  if (password !== null) writeFileSync(join(dir, '.env'), `PEM_SETTINGS_PASSWORD=${JSON.stringify(password)}\n`, { mode: 0o600 });
  let out = '';
  let err = '';
  const io: Io = { stdout: (s) => void (out += s), stderr: (s) => void (err += s), isTTY: false };
  const code = await main(argv.map((a) => (a === 'INV' ? file : a)), pemJob, io);
  return { code, out, err, file };
}

const addVars = (vars: string) => BASE + vars + '\n';
const onHost = (host: string, extra: string) => BASE.replace(new RegExp(`^${host} .*$`, 'm'), (l) => `${l} ${extra}`);

// [what the operator did wrong, the inventory, what the message must say (FILE is the inventory path)]
const inventoryCases: [string, string, RegExp | string][] = [
  ['a host line that is not key=value', BASE.replace('db2 ansible_host=192.0.2.12', 'db2 ansible_host=192.0.2.12 oops'), 'FILE:4: expected key=value host variable, got "oops"'],
  ['an unterminated section header', BASE.replace('[webhosts]', '[webhosts'), 'FILE:6: '],
  ['an unterminated quote', onHost('web1', 'pem_web_restart="systemctl restart pem'), 'FILE:7: '],
  ['a :children group that is defined nowhere', addVars('[site:children]\nbackends\nmissing_group'), /FILE:\d+: \[site:children\] includes group "missing_group", which is not defined/],
  ['a cycle of :children groups', addVars('[a:children]\nb\n[b:children]\na'), /group cycle: (a -> b -> a|b -> a -> b)/],
  ['a host range whose start is after its end', BASE.replace('web2 ansible_host=192.0.2.22', 'web[5:1]'), 'FILE:8: '],
  ['a host range of a number and a letter', BASE.replace('web2 ansible_host=192.0.2.22', 'web[1:x]'), /FILE:8: .*both be numbers or both single letters/],
  ['a host listed twice with different addresses', addVars('[extra]\ndb1 ansible_host=192.0.2.99'), /FILE:\d+: .*conflicting with ansible_host=192\.0\.2\.11 on line 3/],
  ['no [backends] group', BASE.replace(/\[backends\]\n.*\n.*\n/, ''), 'no hosts in group [backends]'],
  ['an empty [webhosts] group', BASE.replace(/web1 .*\nweb2 .*\n/, ''), 'no hosts in group [webhosts]'],
  ['a prefix length of 33', BASE.replace('192.0.2.0/24', '192.0.2.0/33'), 'pem_web_subnet: "192.0.2.0/33" is not a CIDR'],
  ['a subnet that is a word', BASE.replace('192.0.2.0/24', 'webnet'), 'pem_web_subnet: "webnet" is not a CIDR'],
  ['SQL injection in pem_settings_db', addVars(`pem_settings_db='x"; DROP DATABASE pem; --'`), 'pem_settings_db "x\\"; DROP DATABASE pem; --" is not a plain name'],
  ['a role name that starts with a digit', addVars('pem_settings_user=1settings'), 'pem_settings_user "1settings" is not a plain name'],
  ['a role name longer than 63 bytes', addVars(`pem_settings_user=${'r'.repeat(64)}`), /pem_settings_user "r{64}" is 64 bytes long/],
  ['a reserved role name', addVars('pem_settings_user=public'), 'pem_settings_user "public" is a reserved word'],
  ['a grantee with a quote', addVars(`pem_settings_grantee="pem_user'--"`), `pem_settings_grantee "pem_user'--" is not a plain name`],
  ['a database to revoke from with a space', addVars(`pem_settings_revoke_connect='pem,my db'`), 'pem_settings_revoke_connect "my db" is not a plain name'],
  ['pem_config_local with a command separator', onHost('web2', `pem_config_local='/usr/edb/pem/web/config_local.py; touch /tmp/pwned'`),
    /FILE:8: host web2: pem_config_local must be an absolute path of plain characters/],
  ['pg_hba_file with command substitution', onHost('db1', `pg_hba_file='/etc/postgresql/$(reboot)/pg_hba.conf'`), /FILE:3: host db1: pg_hba_file must be an absolute path/],
  ['pg_bin_dir with backquotes', onHost('db2', 'pg_bin_dir=/usr/lib/postgresql/`id`/bin'), /FILE:4: host db2: pg_bin_dir must be an absolute path/],
  ['pg_socket_dir with a pipe', onHost('db2', `pg_socket_dir='/run/postgresql|nc'`), /FILE:4: host db2: pg_socket_dir must be an absolute path/],
  ['a relative pg_socket_dir', onHost('db1', 'pg_socket_dir=run/postgresql'), /FILE:3: host db1: pg_socket_dir must be an absolute path/],
  ['pg_os_user with a shell expansion', onHost('db1', `pg_os_user='$(id)'`), /FILE:3: host db1: pg_os_user "\$\(id\)" is not a valid user name/],
  ['pem_web_user with a semicolon', onHost('web1', `pem_web_user='www-data;id'`), /FILE:7: host web1: pem_web_user "www-data;id" is not a valid user name/],
  ['a pg_port out of range', onHost('db1', 'pg_port=70000'), /FILE:3: host db1: pg_port must be a port number, got "70000"/],
  ['ansible_port that is no number', onHost('web1', 'ansible_port=ssh'), /host web1: ansible_port must be a port number, got "ssh"/],
  ['ansible_become that is no boolean', onHost('db1', 'ansible_become=perhaps'), /host db1: ansible_become must be a boolean/],
];

for (const [title, inventory, message] of inventoryCases) {
  test(`deploy refuses ${title}: exit 2, the place named, no stack trace`, async (t) => {
    const r = await run(['deploy', '-i', 'INV'], inventory);
    t.is(r.code, 2, r.err + r.out);
    const expected = typeof message === 'string' ? message.split('FILE').join(r.file) : new RegExp(message.source.split('FILE').join(r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    if (typeof expected === 'string') t.true(r.err.includes(expected), `expected ${JSON.stringify(expected)} in:\n${r.err}`);
    else t.regex(r.err, expected);
    t.true(r.err.startsWith('pem-settings: '), r.err);
    t.notRegex(r.err, /\bat .*\.ts:\d+|internal error/);
    t.is(r.out, '', 'nothing ran, so nothing was reported as run');
  });
}

test('every problem of the job variables is listed at once, each with the file and line of its host', async (t) => {
  const inventory = onHost('db1', `pg_port=0 pg_hba_file='x;y'`).replace('192.0.2.0/24', '192.0.2.0/99') + `pem_settings_db='bad name'\n`;
  const r = await run(['deploy', '-i', 'INV'], inventory);
  t.is(r.code, 2);
  t.regex(r.err, /^pem-settings: \d+ problems, nothing was changed:\n/);
  const lines = r.err.split('\n').filter((l) => l.startsWith('  - '));
  t.true(lines.length >= 4, r.err);
  t.true(lines.every((l) => l.startsWith(`  - ${r.file}`)), r.err);
  t.true(lines.some((l) => l.startsWith(`  - ${r.file}:3: host db1: pg_port must be a port number`)), r.err);
  t.true(lines.some((l) => l.startsWith(`  - ${r.file}:3: host db1: pg_hba_file must be an absolute path`)), r.err);
  t.true(lines.some((l) => l.includes('"192.0.2.0/99" is not a CIDR')), r.err);
  t.true(lines.some((l) => l.includes('pem_settings_db "bad name" is not a plain name')), r.err);
});

// [what is wrong with the password, its value (null: not set anywhere), extra flags, exit, stderr]
const passwordCases: [string, string | null, string[], number, RegExp][] = [
  ['is not set', null, [], 2, /PEM_SETTINGS_PASSWORD is not set: put it in the environment or in .*\/\.env/],
  ['is empty', '', [], 2, /PEM_SETTINGS_PASSWORD is empty/],
  ['is shorter than 12 characters', 'elevenchars', [], 2, /PEM_SETTINGS_PASSWORD is shorter than 12 characters \(use --allow-weak-password to accept it\)/],
  ['counts characters, not bytes (11 characters of 2 bytes each)', 'äääääääääää', [], 2, /shorter than 12 characters/],
  ['holds a line break', 'line one of it\nline two', [], 2, /must not contain NUL or line breaks/],
];

for (const [title, password, flags, code, message] of passwordCases) {
  test(`deploy refuses a PEM_SETTINGS_PASSWORD that ${title}, and never echoes it`, async (t) => {
    const r = await run(['deploy', '-i', 'INV', ...flags], BASE, password);
    t.is(r.code, code, r.err);
    t.regex(r.err, message);
    if (password) t.false(r.err.includes(password), 'the password is not in the message');
    t.is(r.out, '');
  });
}

test('--allow-weak-password lets a short password through validation (then the unreachable TEST-NET hosts fail, exit 1)', async (t) => {
  const inventory = BASE + 'ansible_ssh_common_args="-o ConnectTimeout=1"\n';
  const r = await run(['deploy', '-i', 'INV', '--allow-weak-password', '--check', '--json'], inventory, 'shortpw');
  t.is(r.code, 1, r.err + r.out);
  t.notRegex(r.err, /PEM_SETTINGS_PASSWORD/);
  const doc = JSON.parse(r.out) as { hosts: Record<string, { unreachable: boolean }> };
  t.true(Object.values(doc.hosts).some((h) => h.unreachable), 'validation passed: it went on to connect');
  t.false(r.out.includes('shortpw'));
});

// [command line (INV is the inventory), what stderr must say]
const flagCases: [string, string[], RegExp][] = [
  ['--forks 0', ['deploy', '-i', 'INV', '--forks', '0'], /--forks must be a positive number, got "0"/],
  ['--forks many', ['deploy', '-i', 'INV', '--forks', 'many'], /--forks must be a positive number, got "many"/],
  ['--forks -3', ['deploy', '-i', 'INV', '--forks=-3'], /--forks must be a positive number, got "-3"/],
  ['--forks 2.5', ['deploy', '-i', 'INV', '-f', '2.5'], /--forks must be a positive number, got "2\.5"/],
  ['--connect-timeout never', ['deploy', '-i', 'INV', '--connect-timeout', 'never'], /--connect-timeout must be a positive number/],
  ['an unknown option', ['deploy', '-i', 'INV', '--dry-run'], /unknown option '--dry-run'/],
  ['an unknown command', ['deplyo', '-i', 'INV'], /unknown command 'deplyo'/],
  ['a missing --inventory', ['deploy'], /required option '-i, --inventory <file>' not specified/],
  ['an inventory that does not exist', ['deploy', '-i', '/nonexistent/site.ini'], /\/nonexistent\/site\.ini: cannot read the inventory: ENOENT/],
  ['a --limit that matches nothing', ['deploy', '-i', 'INV', '--limit', 'web9'], /"web9" matches no host/],
  ['a --limit of only non-job hosts', ['deploy', '-i', 'INV', '--limit', 'ungrouped'], /selects no host of \[backends\] or \[webhosts\]|matches no host/],
  ['verify with --forks 0', ['verify', '-i', 'INV', '--forks', '0'], /--forks must be a positive number/],
  ['rollback with an unknown option', ['rollback', '-i', 'INV', '--yes'], /unknown option '--yes'/],
  ['rollback with --forks x', ['rollback', '-i', 'INV', '--forks', 'x'], /--forks must be a positive number/],
];

for (const [title, argv, message] of flagCases) {
  test(`${title} is bad input: exit 2 with one line`, async (t) => {
    const r = await run(argv, BASE);
    t.is(r.code, 2, r.err + r.out);
    t.regex(r.err, message);
    t.regex(r.err, /^pem-settings: /);
    t.notRegex(r.err, /\bat .*\.ts:\d+|internal error/);
    t.is(r.out, '');
  });
}

test('verify and rollback report a bad inventory the same way as deploy', async (t) => {
  const inventory = onHost('web1', `pem_config_local='/x/$(id)'`);
  for (const command of ['verify', 'rollback']) {
    const r = await run([command, '-i', 'INV'], inventory);
    t.is(r.code, 2, command);
    t.true(r.err.includes(`${r.file}:7: host web1: pem_config_local must be an absolute path`), `${command}: ${r.err}`);
  }
});

test('a deploy whose run records could not be kept is refused before anything connects', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { main } = await import('../../src/cli.ts');
  const dir = mkdtempSync(join(tmpdir(), 'pems-state-'));
  const inventory = join(dir, 'site.ini');
  writeFileSync(inventory, '[backends]\ndb ansible_host=192.0.2.1 pem_web_subnet=10.0.0.0/24\n[webhosts]\nweb ansible_host=192.0.2.2\n');
  writeFileSync(join(dir, '.env'), 'PEM_SETTINGS_PASSWORD=long-enough-password\n');
  writeFileSync(join(dir, 'blocked'), 'a file where the state directory would go');
  let err = '';
  const code = await main(['deploy', '-i', inventory, '--state-dir', join(dir, 'blocked')], pemJob,
    { stdout: () => {}, stderr: (s) => void (err += s), isTTY: false });
  t.is(code, 2);
  t.regex(err, /cannot keep run records in .*blocked\/runs: (ENOTDIR|EEXIST).*--state-dir/);
});
