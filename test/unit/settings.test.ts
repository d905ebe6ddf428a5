import test from 'ava';
import { InventoryError, ProblemsError, UsageError } from '../../src/errors.ts';
import { parseInventory, resolveAll } from '../../src/inventory/index.ts';
import { readJobSettings, readSecrets } from '../../tasks/settings.ts';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = `[backends]
db1 ansible_host=10.0.0.1
db2 ansible_host=10.0.0.2 pg_port=5433
[webhosts]
web1
[all:vars]
pem_web_subnet=10.0.2.0/24,10.0.3.0/24
`;

function settingsOf(text: string) {
  const inv = parseInventory(text, 'site.ini');
  return readJobSettings(inv, new Map(resolveAll(inv).map((h) => [h.name, h])));
}

function problemsOf(text: string): string[] {
  try {
    settingsOf(text);
  } catch (e) {
    if (e instanceof ProblemsError) return e.problems.map((p) => p.message);
    if (e instanceof InventoryError) return [e.message];
    throw e;
  }
  throw new Error('expected problems');
}

test('defaults and inventory order of the backends', (t) => {
  const s = settingsOf(BASE);
  t.is(s.db, 'pem_user_settings');
  t.is(s.user, 'pem_user_settings');
  t.is(s.grantee, 'pem_user');
  t.deepEqual(s.revokeConnect, ['pem', 'postgres', 'edb']);
  t.deepEqual(s.backends.map((b) => [b.name, b.dbAddress, b.pgPort, b.pgOsUser]), [['db1', '10.0.0.1', 5432, 'postgres'], ['db2', '10.0.0.2', 5433, 'postgres']]);
  t.deepEqual(s.backends[0]!.webSubnets, ['10.0.2.0/24', '10.0.3.0/24']);
  t.is(s.webhosts[0]!.configLocal, '/usr/edb/pem/web/config_local.py');
});

test('pem_db_endpoint replaces the backend list', (t) => {
  t.deepEqual(settingsOf(BASE + 'pem_db_endpoint=lb.example.com:6432\n').endpoint, { host: 'lb.example.com', port: 6432 });
});

test('bad job variables are all reported together with the inventory file', (t) => {
  const problems = problemsOf(`[backends]
db1 pem_web_subnet=10.0.0.300/24 pg_port=99999 pg_hba_file="/etc/x;rm -rf /"
[webhosts]
web1 pem_config_local=relative/path.py pem_config_owner=root
[all:vars]
pem_settings_db=x"; DROP DATABASE pem; --
`);
  t.true(problems.every((p) => p.startsWith('site.ini')), problems.join('\n'));
  const all = problems.join('\n');
  t.regex(all, /pem_settings_db/);
  t.regex(all, /"10\.0\.0\.300\/24" is not a CIDR/);
  t.regex(all, /pg_port must be a port number/);
  t.regex(all, /pg_hba_file must be an absolute path of plain characters/);
  t.regex(all, /pem_config_local must be an absolute path/);
  t.regex(all, /pem_config_owner must be user:group/);
});

test('missing groups and a missing subnet are errors; a host in both groups is a backend and a web host', (t) => {
  t.regex(problemsOf('[webhosts]\nw\n').join('\n'), /no hosts in group \[backends\]/);
  t.regex(problemsOf('[backends]\nb pem_web_subnet=10.0.0.0/8\n').join('\n'), /no hosts in group \[webhosts\]/);
  t.regex(problemsOf('[backends]\nb\n[webhosts]\nw\n').join('\n'), /pem_web_subnet is required/);
  const both = settingsOf('[backends]\nb pem_web_subnet=10.0.0.0/8\n[webhosts]\nb\n');
  t.deepEqual([both.backends.map((x) => x.name), both.webhosts.map((x) => x.name)], [['b'], ['b']]);
  t.regex(problemsOf(BASE + '[webhosts:vars]\npem_settings_db=other\n').join('\n'), /pem_settings_db differs between hosts/);
});

test('the password comes from the environment or .env beside the inventory, with a length policy', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pems-'));
  const inv = join(dir, 'site.ini');
  writeFileSync(inv, BASE);
  t.throws(() => readSecrets(inv, { allowWeakPassword: false, env: {} }), { instanceOf: UsageError, message: /PEM_SETTINGS_PASSWORD is not set: .*\.env/ });
  t.throws(() => readSecrets(inv, { allowWeakPassword: false, env: { PEM_SETTINGS_PASSWORD: '' } }), { message: /is empty/ });
  t.throws(() => readSecrets(inv, { allowWeakPassword: false, env: { PEM_SETTINGS_PASSWORD: 'short' } }), { message: /shorter than 12 characters/ });
  t.is(readSecrets(inv, { allowWeakPassword: true, env: { PEM_SETTINGS_PASSWORD: 'short' } }).password, 'short');
  writeFileSync(join(dir, '.env'), 'PEM_SETTINGS_PASSWORD="from-dotenv-file-1"\nPEM_BECOME_PASSWORD=sudo-pw\n');
  t.deepEqual(readSecrets(inv, { allowWeakPassword: false, env: {} }), { password: 'from-dotenv-file-1', becomePassword: 'sudo-pw' });
  t.is(readSecrets(inv, { allowWeakPassword: false, env: { PEM_SETTINGS_PASSWORD: 'from-the-environment' } }).password, 'from-the-environment');
  t.false(readFileSync(inv, 'utf8').includes('from-dotenv'));
});

/** Each problem as file:line and message, for tests that check where a value was set. */
function located(text: string): { line: number | undefined; message: string }[] {
  try {
    settingsOf(text);
  } catch (e) {
    const list = e instanceof ProblemsError ? e.problems : [e];
    return list.map((p) => ({ line: (p as InventoryError).line, message: (p as Error).message }));
  }
  throw new Error('expected problems');
}

test('subnets and addresses are written back canonical', (t) => {
  const s = settingsOf(`[backends]
db1 ansible_host=10.0.0.1 pem_web_subnet="10.0.2.0/24, 2001:DB8:0::/48"
db2 ansible_host=2001:DB8::0:12 pem_web_subnet=fd00:0:0:0::/64
db3 pem_db_address=pem-db3.example.com ansible_host=010.0.0.3 pem_web_subnet=192.0.2.7/32
[webhosts]
web1
`);
  t.deepEqual(s.backends.map((b) => [b.dbAddress, b.webSubnets]), [
    ['10.0.0.1', ['10.0.2.0/24', '2001:db8::/48']],
    ['2001:db8::12', ['fd00::/64']],
    ['pem-db3.example.com', ['192.0.2.7/32']],
  ], 'ansible_host is not the database address where pem_db_address is set, so it is not checked here');
  t.deepEqual(settingsOf(BASE + 'pem_db_endpoint=[2001:DB8::5]:6432\n').endpoint, { host: '2001:db8::5', port: 6432 });
});

test('an address that inet_aton would read differently is refused at the line that set it, with its value', (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['[all:vars]', 'pem_web_subnet=010.0.2.0/24', 7, /pem_web_subnet: "010\.0\.2\.0\/24" is not a CIDR: .*would read it as 8\.0\.2\.0 \(set in \[all:vars\]\)/],
    ['[all:vars]', 'pem_web_subnet=0xa.0.2.0/24', 7, /"0xa\.0\.2\.0\/24" is not a CIDR: .*as 10\.0\.2\.0/],
    ['[all:vars]', 'pem_web_subnet=10.2/16', 7, /"10\.2\/16" is not a CIDR: .*as 10\.0\.0\.2/],
    ['[all:vars]', 'pem_web_subnet=167772672/24', 7, /"167772672\/24" is not a CIDR: .*as 10\.0\.2\.0/],
    ['[all:vars]', 'pem_web_subnet=10.0.2.5/24', 7, /host bits set; write 10\.0\.2\.0\/24 for the subnet, or 10\.0\.2\.5\/32/],
    ['[backends:vars]', 'pem_db_address=010.0.0.9', 7, /pem_db_address: "010\.0\.0\.9" looks like an IPv4 address .*as 8\.0\.0\.9 \(set in \[backends:vars\]\)/],
    ['[backends:vars]', 'ansible_host=0xa.0.0.9', 7, /ansible_host \(the database address when pem_db_address is not set\): "0xa\.0\.0\.9" .*as 10\.0\.0\.9/],
    ['[all:vars]', 'pem_db_endpoint=010.0.0.5:6432', 7, /pem_db_endpoint: .*"010\.0\.0\.5" looks like an IPv4 address .*as 8\.0\.0\.5/],
  ];
  for (const [section, assignment, line, message] of cases) {
    const subnet = assignment.startsWith('pem_web_subnet') ? '' : '[all:vars]\npem_web_subnet=10.0.2.0/24\n';
    const text = `[backends]\ndb1\ndb2\n[webhosts]\nweb1\n${section}\n${assignment}\n${subnet}`;
    const problems = located(text);
    t.is(problems.length, 1, `${assignment}: one problem for the one line, not one per host\n${problems.map((p) => p.message).join('\n')}`);
    t.is(problems[0]!.line, line, assignment);
    t.regex(problems[0]!.message, message, assignment);
    t.true(problems[0]!.message.startsWith(`site.ini:${line}: `), problems[0]!.message);
  }
});

test('a host\'s own bad address is reported at its host line, and an inventory name used as address too', (t) => {
  const problems = located(`[backends]
db1 ansible_host=10.0.0.1 pem_web_subnet=10.0.2.0/24
010.0.0.2 pem_web_subnet=10.0.2.0/24
db3 pem_db_address=10.0.0.256 pem_web_subnet=10.0.2.0/24
db4 pem_db_address=db_4.example pem_web_subnet=10.0.2.0/24
[webhosts]
web1
`);
  t.deepEqual(problems.map((p) => p.line), [3, 4, 5]);
  t.regex(problems[0]!.message, /host 010\.0\.0\.2: the inventory name \(the database address when neither pem_db_address nor ansible_host is set\): .*as 8\.0\.0\.2/);
  t.regex(problems[1]!.message, /host db3: pem_db_address: "10\.0\.0\.256" looks like an IPv4 address/);
  t.regex(problems[2]!.message, /host db4: pem_db_address: "db_4\.example" is not a host name/);
});

test('real host names stay accepted as database addresses', (t) => {
  const s = settingsOf(BASE.replace('db1 ansible_host=10.0.0.1', 'db1 pem_db_address=pem-db1.example.com')
    .replace('db2 ansible_host=10.0.0.2', 'db2 ansible_host=1e100.example'));
  t.deepEqual(s.backends.map((b) => b.dbAddress), ['pem-db1.example.com', '1e100.example']);
});

test('a group value is reported once at its [group:vars] line; a differing site value at the line of the second value', (t) => {
  const problems = located(`[backends]
db1
db2
[webhosts]
web1
web2 pem_settings_db=other
[all:vars]
pem_web_subnet=10.0.2.0/24
pg_port=99999
`);
  t.deepEqual(problems.map((p) => [p.line, p.message.replace(/^site\.ini:\d+: /, '')]), [
    [6, 'host web2: pem_settings_db differs between hosts (pem_user_settings, other); it must be one value for the site'],
    [9, 'pg_port must be a port number, got "99999" (set in [all:vars])'],
  ]);
});

test('a list or a dict where one value is expected is refused', (t) => {
  const problems = located(BASE + "pem_settings_db=['a', 'b']\n");
  t.regex(problems.map((p) => p.message).join('\n'), /site\.ini:8: pem_settings_db must be a single value, got \["a","b"\] \(set in \[all:vars\]\)/);
});
