// From Ansible's connection variables to where and how we connect: the defaults an operator
// expects from Ansible, and every bad value reported (with the inventory file) before connecting.
import test from 'ava';
import { homedir, userInfo } from 'node:os';
import { InventoryError } from '../../src/errors.ts';
import type { ResolvedHost, Vars } from '../../src/inventory/index.ts';
import { hostAccess, type AccessOptions, type HostAccess } from '../../src/targets.ts';

const OPTIONS: AccessOptions = { inventoryFile: 'site.ini', acceptNewHostKeys: false, connectTimeoutMs: 10_000, commandTimeoutSec: 120 };
const host = (vars: Vars, name = 'db1.example'): ResolvedHost => ({ name, groups: ['all', 'backends'], vars });

function access(vars: Vars, options: Partial<AccessOptions> = {}): HostAccess {
  const problems: Error[] = [];
  const a = hostAccess(host(vars), { ...OPTIONS, ...options }, problems);
  if (!a) throw new Error(`unexpected problems: ${problems.map((p) => p.message).join('; ')}`);
  return a;
}

test('with no connection variables a host is reached like ssh would: its name, port 22, the local user, default known_hosts', (t) => {
  t.deepEqual(access({}), {
    target: {
      name: 'db1.example', address: 'db1.example', port: 22, user: userInfo().username,
      knownHostsFiles: [`${homedir()}/.ssh/known_hosts`, '/etc/ssh/ssh_known_hosts'],
      acceptNewHostKeys: false, connectTimeoutMs: 10_000, commandTimeoutSec: 120,
    },
  });
});

const fields: [title: string, vars: Vars, options: Partial<AccessOptions>, expected: Record<string, unknown>][] = [
  ['ansible_host, ansible_port, ansible_user and the key file are used as given',
    { ansible_host: '10.0.0.5', ansible_port: 2222, ansible_user: 'ops', ansible_ssh_private_key_file: '~/.ssh/pem' }, {},
    { address: '10.0.0.5', port: 2222, user: 'ops', privateKeyFile: '~/.ssh/pem' }],
  ['a port given as a string works', { ansible_port: '2200' }, {}, { port: 2200 }],
  ['the older ansible_ssh_host / ansible_ssh_port / ansible_ssh_user names still work',
    { ansible_ssh_host: '10.0.0.6', ansible_ssh_port: 2201, ansible_ssh_user: 'legacy', ansible_private_key_file: '/k' }, {},
    { address: '10.0.0.6', port: 2201, user: 'legacy', privateKeyFile: '/k' }],
  ['the modern names win over the older ones', { ansible_host: 'new', ansible_ssh_host: 'old', ansible_user: 'u1', ansible_ssh_user: 'u0' }, {},
    { address: 'new', user: 'u1' }],
  ['an empty ansible_user falls back like an absent one', { ansible_user: '' }, {}, { user: userInfo().username }],
  ['ssh args supply port, user and key when the variables do not', { ansible_ssh_common_args: '-p 2022 -l ops -i /keys/id' }, {},
    { port: 2022, user: 'ops', privateKeyFile: '/keys/id' }],
  ['the variables win over the same settings in ssh args', { ansible_port: 22, ansible_user: 'root', ansible_ssh_common_args: '-p 2022 -l ops' }, {},
    { port: 22, user: 'root' }],
  ['UserKnownHostsFile replaces the default known_hosts files', { ansible_ssh_common_args: '-o UserKnownHostsFile="/a /b"' }, {},
    { knownHostsFiles: ['/a', '/b'] }],
  ['StrictHostKeyChecking=accept-new in ssh args accepts new keys', { ansible_ssh_common_args: '-o StrictHostKeyChecking=accept-new' }, {},
    { acceptNewHostKeys: true }],
  ['StrictHostKeyChecking=no does not turn host-key checking off', { ansible_ssh_common_args: '-o StrictHostKeyChecking=no' }, {},
    { acceptNewHostKeys: false }],
  ['--accept-new-host-keys accepts new keys', {}, { acceptNewHostKeys: true }, { acceptNewHostKeys: true }],
  ['ConnectTimeout in ssh args replaces --connect-timeout', { ansible_ssh_common_args: '-o ConnectTimeout=3' }, {}, { connectTimeoutMs: 3000 }],
  ['a ProxyJump chain is kept in order', { ansible_ssh_common_args: '-J a@j1:2201,j2' }, {},
    { proxyJump: [{ user: 'a', host: 'j1', port: 2201 }, { host: 'j2', port: 22 }] }],
  ['the sudo password travels with the target, for sudo\'s standard input', {}, { becomePassword: 'pw' }, { becomePassword: 'pw' }],
];

for (const [title, vars, options, expected] of fields) {
  test(`targets: ${title}`, (t) => {
    const { target } = access(vars, options);
    t.deepEqual(Object.fromEntries(Object.keys(expected).map((k) => [k, (target as unknown as Record<string, unknown>)[k]])), expected);
  });
}

const become: [title: string, vars: Vars, becomeUser: string | undefined][] = [
  ['become is off by default', {}, undefined],
  ['ansible_become=true becomes root by default', { ansible_become: true }, 'root'],
  ['ansible_become=yes (a string) counts as true', { ansible_become: 'yes' }, 'root'],
  ['ansible_become_user names the user to become', { ansible_become: 'True', ansible_become_user: 'enterprisedb' }, 'enterprisedb'],
  ['ansible_become_user alone does not turn become on', { ansible_become_user: 'postgres' }, undefined],
  ['ansible_become=false keeps it off', { ansible_become: 'false', ansible_become_user: 'postgres' }, undefined],
  ['ansible_become_method=sudo is accepted', { ansible_become: true, ansible_become_method: 'sudo' }, 'root'],
];
for (const [title, vars, becomeUser] of become) {
  test(`targets: ${title}`, (t) => {
    t.is(access(vars).becomeUser, becomeUser);
  });
}

const errors: [title: string, vars: Vars, message: string][] = [
  ['a port that is no number', { ansible_port: 'ssh' }, 'site.ini: host db1.example: ansible_port must be a port number, got "ssh"'],
  ['a port out of range', { ansible_port: 70000 }, 'site.ini: host db1.example: ansible_port must be a port number, got "70000"'],
  ['an ansible_become that is no boolean', { ansible_become: 'sometimes' },
    'site.ini: host db1.example: ansible_become must be a boolean (true/false/yes/no/1/0), got "sometimes"'],
  ['ProxyCommand in ssh args', { ansible_ssh_common_args: '-o ProxyCommand="nc %h %p"' },
    'site.ini: host db1.example: ansible_ssh_common_args: ProxyCommand is not supported; use ProxyJump (-J)'],
  ['ssh args that do not parse', { ansible_ssh_common_args: '-o Foo=bar' }, 'site.ini: host db1.example: ansible_ssh_common_args: unsupported ssh option "Foo"'],
  ['a become method other than sudo', { ansible_become: true, ansible_become_method: 'su' },
    'site.ini: host db1.example: ansible_become_method=su is not supported: become uses sudo'],
  ['a connection type other than ssh', { ansible_connection: 'local' },
    'site.ini: host db1.example: ansible_connection=local is not supported: pem-settings connects over SSH'],
  ['an ansible_host with spaces', { ansible_host: 'db 1' }, 'site.ini: host db1.example: ansible_host "db 1" is not a host name or address'],
];
for (const [title, vars, message] of errors) {
  test(`targets refuse ${title}, naming the inventory file and host`, (t) => {
    const problems: Error[] = [];
    t.is(hostAccess(host(vars), OPTIONS, problems), undefined);
    t.is(problems.length, 1);
    t.true(problems[0] instanceof InventoryError);
    t.is(problems[0]!.message, message);
  });
}

test('targets collect one problem per bad host and keep going, so all are reported together', (t) => {
  const problems: Error[] = [];
  hostAccess(host({ ansible_port: 'x' }, 'a'), OPTIONS, problems);
  hostAccess(host({ ansible_become: 'maybe' }, 'b'), OPTIONS, problems);
  t.truthy(hostAccess(host({}, 'c'), OPTIONS, problems));
  t.deepEqual(problems.map((p) => p.message.split(':')[1]!.trim()), ['host a', 'host b']);
});
