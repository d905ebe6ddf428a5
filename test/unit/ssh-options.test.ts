// ansible_ssh_common_args as an existing Ansible inventory carries them: the options that decide
// where we connect and what we trust are honoured, harmless tuning is ignored, and anything we
// cannot honour faithfully (ProxyCommand, unknown options) is refused before connecting.
import test from 'ava';
import { parseJumpHost, parseSshCommonArgs, SshOptionsError, type SshOptions } from '../../src/ssh/options.ts';

const parsed: [title: string, args: string, expected: SshOptions][] = [
  ['-o Key=Value', '-o ProxyJump=ops@bastion.example:2222', { proxyJump: [{ user: 'ops', host: 'bastion.example', port: 2222 }] }],
  ['-oKey=Value without a space', '-oProxyJump=bastion', { proxyJump: [{ host: 'bastion', port: 22 }] }],
  ['"-o Key Value" with a space instead of =', '-o "ProxyJump bastion"', { proxyJump: [{ host: 'bastion', port: 22 }] }],
  ['option names in any case', '-o proxyjump=bastion', { proxyJump: [{ host: 'bastion', port: 22 }] }],
  ['a ProxyJump chain of user@host:port hops, in order', "-o 'ProxyJump a@j1:2201,b@j2'",
    { proxyJump: [{ user: 'a', host: 'j1', port: 2201 }, { user: 'b', host: 'j2', port: 22 }] }],
  ['-J with a chain', '-J a@j1,j2:2222', { proxyJump: [{ user: 'a', host: 'j1', port: 22 }, { host: 'j2', port: 2222 }] }],
  ['-J joined to its value', '-Jjump', { proxyJump: [{ host: 'jump', port: 22 }] }],
  ['a bracketed IPv6 jump host with a port', "-J 'ops@[2001:db8::1]:2222'", { proxyJump: [{ user: 'ops', host: '2001:db8::1', port: 2222 }] }],
  ['an ssh:// jump host', '-o ProxyJump=ssh://ops@bastion:2222', { proxyJump: [{ user: 'ops', host: 'bastion', port: 2222 }] }],
  ['ProxyJump=none means no jump host', '-o ProxyJump=none', {}],
  ['UserKnownHostsFile with several files', '-o UserKnownHostsFile="/a/kh /b/kh"', { userKnownHostsFiles: ['/a/kh', '/b/kh'] }],
  ['UserKnownHostsFile with several files, space form', '-o "UserKnownHostsFile /a/kh ~/.ssh/kh"', { userKnownHostsFiles: ['/a/kh', '~/.ssh/kh'] }],
  ['a quoted known_hosts path keeps its spaces', `-o 'UserKnownHostsFile="/srv/my files/kh" /b/kh'`, { userKnownHostsFiles: ['/srv/my files/kh', '/b/kh'] }],
  ['the first value of a repeated option wins, as in OpenSSH', '-o UserKnownHostsFile=/a -o UserKnownHostsFile=/b', { userKnownHostsFiles: ['/a'] }],
  ['the first ProxyJump wins over a later -J', '-o ProxyJump=first -J second', { proxyJump: [{ host: 'first', port: 22 }] }],
  ['StrictHostKeyChecking=accept-new', '-o StrictHostKeyChecking=accept-new', { strictHostKeyChecking: 'accept-new' }],
  ['StrictHostKeyChecking=no is read (and never honoured: targets keep checking)', '-o StrictHostKeyChecking=no', { strictHostKeyChecking: 'no' }],
  ['StrictHostKeyChecking=yes', '-o StrictHostKeyChecking=yes', { strictHostKeyChecking: 'yes' }],
  ['ConnectTimeout in seconds', '-o ConnectTimeout=5', { connectTimeoutSeconds: 5 }],
  ['-p, -i and -l', '-p 2222 -i ~/.ssh/deploy -l ops', { port: 2222, identityFile: '~/.ssh/deploy', user: 'ops' }],
  ['Port, User and IdentityFile as -o options', '-o Port=2200 -o User=ops -o IdentityFile=/k', { port: 2200, user: 'ops', identityFile: '/k' }],
  ['harmless client tuning is ignored', '-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=30 -o IdentitiesOnly=yes -o Compression=yes',
    {}],
  ['valueless flags are ignored', '-C -4 -tt -v -A', {}],
  ['an empty string', '', {}],
  ['an Ansible-style combination', '-o ControlMaster=auto -o ControlPersist=60s -o ProxyJump=ops@10.0.0.1 -o UserKnownHostsFile=/etc/pem/kh -o StrictHostKeyChecking=accept-new',
    { proxyJump: [{ user: 'ops', host: '10.0.0.1', port: 22 }], userKnownHostsFiles: ['/etc/pem/kh'], strictHostKeyChecking: 'accept-new' }],
];

for (const [title, args, expected] of parsed) {
  test(`ssh args: ${title}`, (t) => {
    t.deepEqual(parseSshCommonArgs(args), expected);
  });
}

const refused: [title: string, args: string, message: RegExp][] = [
  ['ProxyCommand (it would run an arbitrary local command)', '-o ProxyCommand="ssh -W %h:%p bastion"', /ProxyCommand is not supported; use ProxyJump/],
  ['ProxyCommand even after an earlier ProxyJump', '-J bastion -o ProxyCommand=nc', /ProxyCommand is not supported/],
  ['an option we do not know', '-o Foo=bar', /unsupported ssh option "Foo"/],
  ['an argument we do not know', '-F ~/.ssh/config', /unsupported ssh argument "-F"/],
  ['-o without a value', '-o', /-o needs a value/],
  ['a zero ConnectTimeout', '-o ConnectTimeout=0', /ConnectTimeout must be a positive number, got "0"/],
  ['a non-numeric Port', '-o Port=ssh', /Port must be a positive number, got "ssh"/],
  ['a jump host port out of range', '-o ProxyJump=ops@bastion:99999', /invalid ProxyJump host "ops@bastion:99999"/],
  ['a jump host with an empty user', '-o ProxyJump=@bastion', /invalid ProxyJump host "@bastion"/],
];

for (const [title, args, message] of refused) {
  test(`ssh args refuse ${title}`, (t) => {
    const e = t.throws(() => parseSshCommonArgs(args), { instanceOf: SshOptionsError });
    t.regex(e!.message, message);
  });
}

test('a jump host without user or port takes port 22 and leaves the user to the target', (t) => {
  t.deepEqual(parseJumpHost(' bastion.example '), { host: 'bastion.example', port: 22 });
});
