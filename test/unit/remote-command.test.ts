// The command line sshd runs for every remote command: the script never on it, always started
// in `/`, under timeout(1), and as another user through runuser when logged in as root (hosts
// often have no sudo) or sudo otherwise.
import test from 'ava';
import { remoteCommand } from '../../src/ssh/channel.ts';

const cases: [string, Parameters<typeof remoteCommand>[0], string][] = [
  ['as the login user', { login: 'deploy', timeoutSec: 120, askPassword: false }, 'cd / && exec timeout -k 5 120 /bin/sh -s'],
  ['root becoming postgres: runuser, no sudo', { login: 'root', user: 'postgres', timeoutSec: 120, askPassword: false }, 'cd / && exec runuser -u postgres -- timeout -k 5 120 /bin/sh -s'],
  ['a sudo user becoming root', { login: 'deploy', user: 'root', timeoutSec: 300, askPassword: false }, 'cd / && exec sudo -n -H -u root -- timeout -k 5 300 /bin/sh -s'],
  ['a held command has no timeout', { login: 'deploy', user: 'postgres', askPassword: false }, 'cd / && exec sudo -n -H -u postgres -- /bin/sh -s'],
];
for (const [name, input, expected] of cases) {
  test(`remote command: ${name}`, (t) => t.is(remoteCommand(input), expected));
}

test('remote command: with a sudo password, sudo reads it from standard input and the shell says when it started', (t) => {
  const c = remoteCommand({ login: 'deploy', user: 'root', timeoutSec: 60, askPassword: true });
  t.regex(c, /^cd \/ && exec sudo -S -p '\[pem-settings sudo password\]' -H -u root -- \/bin\/sh -c '/);
  t.regex(c, /exec timeout -k 5 60 \/bin\/sh -s'$/);
});
