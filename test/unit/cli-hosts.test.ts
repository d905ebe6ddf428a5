import test from 'ava';
import { main, type Io } from '../../src/cli.ts';
import { pemJob } from '../../tasks/job.ts';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { stdout: (s) => void (out += s), stderr: (s) => void (err += s), isTTY: false };
  const code = await main(argv, pemJob, io);
  return { code, out, err };
}

const site = 'test/fixtures/inventory/ansible-site.ini';

test('hosts --json prints hosts in inventory order with groups and merged vars', async (t) => {
  const { code, out } = await run(['hosts', '--inventory', site, '--limit', 'backends', '--json']);
  t.is(code, 0);
  const doc = JSON.parse(out);
  t.deepEqual(doc.hosts.map((h: { name: string }) => h.name), ['pem-db1.example.com', 'pem-db2.example.com', 'pem-db3.example.com']);
  t.deepEqual(doc.hosts[0].groups, ['backends', 'pem_primary', 'site']);
  t.is(doc.hosts[0].vars.ansible_host, '10.0.1.11');
  t.is(doc.hosts[0].vars.pg_port, 5444);
});

test('hosts prints a table and masks secret-looking variables', async (t) => {
  const { code, out } = await run(['hosts', '-i', 'test/fixtures/inventory/with-secret.ini']);
  t.is(code, 0);
  t.regex(out, /^HOST\s+GROUPS\s+VARS/);
  t.regex(out, /ansible_become_password="\*\*\*\*\*\*\*\*"/);
  t.notRegex(out, /hunter2/);
  t.regex(out, /1 host\n$/);
});

test('a bad inventory exits 2 with file and line, no stack trace', async (t) => {
  const { code, err } = await run(['hosts', '-i', 'test/fixtures/inventory/broken.ini']);
  t.is(code, 2);
  t.regex(err, /test\/fixtures\/inventory\/broken.ini:3: expected key=value host variable, got "oops"/);
  t.notRegex(err, /\bat .*\.ts:\d+/);
});

test('a limit that matches nothing exits 2 and suggests names', async (t) => {
  const { code, err } = await run(['hosts', '-i', site, '--limit', 'webhost']);
  t.is(code, 2);
  t.regex(err, /"webhost" matches no host; did you mean "webhosts"/);
});

test('a missing inventory file, unknown command or option exits 2', async (t) => {
  t.is((await run(['hosts', '-i', 'nope.ini'])).code, 2);
  t.regex((await run(['hosts', '-i', 'nope.ini'])).err, /nope.ini: cannot read the inventory: ENOENT/);
  t.is((await run(['frobnicate'])).code, 2);
  t.is((await run(['hosts', '-i', site, '--bogus'])).code, 2);
  t.is((await run(['hosts'])).code, 2);
});
