// SPEC 3: with no key file in the inventory, the SSH agent (SSH_AUTH_SOCK) authenticates.
import test from 'ava';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/lab.ts';
import { run } from '../lab/sh.ts';
import { cli, NASTY_PASSWORD } from './helpers.ts';

let lab: Lab;
let agentPid = 0;
let sock = '';

test.before(async () => {
  lab = await startLab({ name: 'agt14', subnet: '10.231.14.0/24' });
  sock = join(await mkdtemp(join(tmpdir(), 'pems-agent-')), 'agent.sock');
  const agent = await run('ssh-agent', ['-a', sock]);
  agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
});
test.after.always(async () => {
  if (agentPid) process.kill(agentPid);
  await lab?.stop();
});

test('a key held by the SSH agent logs in when the inventory names no key file', async (t) => {
  const inventory = join(lab.dir, 'agent.ini');
  await writeFile(inventory, (await readFile(lab.inventoryPath, 'utf8')).replace(/^ansible_ssh_private_key_file=.*$/m, ''));
  const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD, HOME: lab.dir };
  const without = await cli(['deploy', '-i', inventory, '--check', '--limit', 'web-1'], { ...env, SSH_AUTH_SOCK: sock });
  t.is(without.code, 1, 'the agent holds no key yet');
  t.regex(without.stdout, /web-1: connect: failed - authentication failed for labadmin@/);
  const add = await run('ssh-add', [lab.keyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
  t.is(add.code, 0, add.stderr);
  const r = await cli(['deploy', '-i', inventory, '--check', '--limit', 'web-1'], { ...env, SSH_AUTH_SOCK: sock });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /web-1: config_local.py: ok/);
});
