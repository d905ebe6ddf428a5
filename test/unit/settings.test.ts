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
