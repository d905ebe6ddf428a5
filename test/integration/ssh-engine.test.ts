// The SSH engine on the lab (issue 9 item 1): strict host-key checking (plain and hashed
// known_hosts, unknown and changed keys, --accept-new-host-keys), ProxyJump through the
// outsider, and become with a sudo password — real sshd, real sudo, no mocks.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startLab, type Lab } from '../lab/lab.ts';
import { loadInventory, resolveAll } from '../../src/inventory/index.ts';
import { connect } from '../../src/ssh/connect.ts';
import { fingerprint } from '../../src/ssh/known-hosts.ts';
import { hostAccess } from '../../src/targets.ts';
import { cli, NASTY_PASSWORD, sudoPasswordUser } from './helpers.ts';

const run = promisify(execFile);
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD, PEM_BECOME_PASSWORD: undefined };
// A second login user whose sudo needs a password. /etc is the machine's, shared by every lab:
// a name no other test uses, removed again in after.always.
const PW_USER = 'pemsshpw';
const SUDOERS = '/etc/sudoers.d/pem-settings-ssh-engine-test';
const BECOME_PASSWORD = `s3cret sudo 'pw' ${process.pid}`;
let lab: Lab;
let work: string;

const pwUser = sudoPasswordUser(PW_USER, BECOME_PASSWORD, SUDOERS);

test.before(async () => {
  lab = await startLab({ name: 'sshe20', subnet: '10.231.20.0/24' });
  work = await mkdtemp(join(tmpdir(), 'pem-ssh-engine-'));
  await pwUser.create();
});
test.after.always(async () => {
  await pwUser.remove();
  await lab?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A copy of the lab inventory using `knownHosts` and extra text on some host lines. */
async function inventoryCopy(name: string, opts: { knownHosts?: string; hostExtra?: Record<string, string>; user?: string } = {}): Promise<string> {
  let text = await readFile(lab.inventoryPath, 'utf8');
  if (opts.knownHosts) text = text.split(lab.knownHostsPath).join(opts.knownHosts);
  if (opts.user) text = text.replace(/^ansible_user=.*$/m, `ansible_user=${opts.user}`);
  for (const [host, extra] of Object.entries(opts.hostExtra ?? {})) {
    text = text.replace(new RegExp(`^${host} .*$`, 'm'), (line) => `${line} ${extra}`);
  }
  const path = join(work, `${name}.ini`);
  await writeFile(path, text);
  return path;
}

async function knownHostsCopy(name: string, edit: (text: string) => string = (t) => t): Promise<string> {
  const path = join(work, name);
  await writeFile(path, edit(await readFile(lab.knownHostsPath, 'utf8')));
  return path;
}

const withoutHost = (address: string) => (text: string) => text.split('\n').filter((l) => !l.startsWith(`${address} `)).join('\n');
const hostKeyBlob = async (host: string) =>
  Buffer.from((await readFile(lab.knownHostsPath, 'utf8')).split('\n').find((l) => l.startsWith(`${lab.host(host).address} `))!.split(' ')[2]!, 'base64');

/** The recap row of a host as numbers: `web-1 : ok=1  changed=0  failed=0  unreachable=0  skipped=0`. */
function recap(stdout: string, host: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${host} `) && l.includes(' : ok=')) ?? '';
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}
const reached = { failed: 0, unreachable: 0 };
const pick = (r: Record<string, number>, ...keys: string[]) => Object.fromEntries(keys.map((k) => [k, r[k]]));

function json(stdout: string): { hosts: Record<string, { failed: number; unreachable: boolean; steps: { status: string; message: string }[] }> } {
  return JSON.parse(stdout);
}

test.serial('every host is reached with strict host-key checking against the lab known_hosts', async (t) => {
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--json'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  const doc = json(r.stdout);
  t.deepEqual(Object.keys(doc.hosts).sort(), ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3']);
  for (const [name, h] of Object.entries(doc.hosts)) t.false(h.unreachable, name);
});

test.serial('a known_hosts hashed by ssh-keygen -H is accepted', async (t) => {
  const kh = await knownHostsCopy('hashed_known_hosts');
  await run('ssh-keygen', ['-H', '-f', kh]);
  const hashed = await readFile(kh, 'utf8');
  t.false(hashed.includes(lab.host('web-1').address), 'no plain address left in the file');
  t.regex(hashed, /^\|1\|/m);
  const r = await cli(['deploy', '-i', await inventoryCopy('hashed', { knownHosts: kh }), '--check'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.deepEqual(pick(recap(r.stdout, 'web-3'), 'failed', 'unreachable'), reached);
});

test.serial('an unknown host is unreachable with its SHA256 fingerprint while the others go on', async (t) => {
  const kh = await knownHostsCopy('unknown_known_hosts', withoutHost(lab.host('web-3').address));
  const before = await readFile(kh, 'utf8');
  const r = await cli(['deploy', '-i', await inventoryCopy('unknown', { knownHosts: kh }), '--check'], env);
  t.is(r.code, 1, r.stderr + r.stdout);
  const fp = fingerprint(await hostKeyBlob('web-3'));
  t.deepEqual(pick(recap(r.stdout, 'web-3'), 'ok', 'changed', 'failed', 'unreachable'), { ok: 0, changed: 0, failed: 0, unreachable: 1 });
  t.true(r.stdout.includes(`web-3: facts/connect: host key of labadmin@${lab.host('web-3').address}:22 is unknown (ssh-ed25519 ${fp})`), r.stdout);
  for (const other of ['pg-primary', 'pg-standby', 'web-1', 'web-2']) t.deepEqual(pick(recap(r.stdout, other), 'failed', 'unreachable'), reached, other);
  t.true(recap(r.stdout, 'pg-primary')['changed']! > 0, 'the backends went through their stages');
  t.is(await readFile(kh, 'utf8'), before, 'nothing recorded without --accept-new-host-keys');
});

test.serial('--accept-new-host-keys records the new key in UserKnownHostsFile and the run succeeds', async (t) => {
  // No final newline: the new entry must still go on a line of its own.
  const kh = await knownHostsCopy('accept_known_hosts', (text) => withoutHost(lab.host('web-3').address)(text).trimEnd());
  const inv = await inventoryCopy('accept', { knownHosts: kh });
  const r = await cli(['deploy', '-i', inv, '--check', '--accept-new-host-keys'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  const lines = (await readFile(kh, 'utf8')).split('\n').filter(Boolean);
  const recorded = lines.filter((l) => l.startsWith(`${lab.host('web-3').address} `));
  t.deepEqual(recorded, [`${lab.host('web-3').address} ssh-ed25519 ${(await hostKeyBlob('web-3')).toString('base64')}`]);
  t.is(lines.length, 6, 'the other five entries are intact');
  const again = await cli(['deploy', '-i', inv, '--check'], env);
  t.is(again.code, 0, 'the recorded key is trusted afterwards without the flag');
});

test.serial('a changed host key is refused even with --accept-new-host-keys and says HOST KEY CHANGED', async (t) => {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'impostor')]);
  const impostor = (await readFile(join(work, 'impostor.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  const address = lab.host('web-2').address;
  const kh = await knownHostsCopy('changed_known_hosts', (text) => text.replace(new RegExp(`^${address.replace(/\./g, '\\.')} .*$`, 'm'), `${address} ${impostor}`));
  const before = await readFile(kh, 'utf8');
  const r = await cli(['deploy', '-i', await inventoryCopy('changed', { knownHosts: kh }), '--check', '--accept-new-host-keys'], env);
  t.is(r.code, 1, r.stderr + r.stdout);
  t.is(recap(r.stdout, 'web-2')['unreachable'], 1);
  t.true(r.stdout.includes(`web-2: facts/connect: HOST KEY CHANGED for labadmin@${address}:22: it presented ssh-ed25519 ${fingerprint(await hostKeyBlob('web-2'))}`), r.stdout);
  t.deepEqual(pick(recap(r.stdout, 'web-1'), 'failed', 'unreachable'), reached);
  t.is(await readFile(kh, 'utf8'), before, 'the changed key was not overwritten nor added');
});

test.serial('ProxyJump reaches web-1 through the outsider, checking known_hosts for both hops', async (t) => {
  const outsider = lab.host('outsider').address;
  const jumpVia = (kh: string) => ({ 'web-1': `ansible_ssh_common_args='-o ProxyJump=labadmin@${outsider} -o UserKnownHostsFile=${kh}'` });

  const inv = await inventoryCopy('jump', { hostExtra: jumpVia(lab.knownHostsPath) });
  const r = await cli(['deploy', '-i', inv, '--check', '--limit', 'web-1', '--json'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.false(json(r.stdout).hosts['web-1']!.unreachable);

  // The session really comes from the outsider: sshd on web-1 sees its address as the client.
  const inventory = loadInventory(inv);
  const host = resolveAll(inventory).find((h) => h.name === 'web-1')!;
  const access = hostAccess(host, { inventoryFile: inv, acceptNewHostKeys: false, connectTimeoutMs: 10_000, commandTimeoutSec: 120 }, [])!;
  t.deepEqual(access.target.proxyJump, [{ user: 'labadmin', host: outsider, port: 22 }]);
  const conn = await connect(access.target);
  try {
    const who = await conn.run('echo "$SSH_CONNECTION"');
    t.is(who.stdout.split(' ')[0], outsider);
    t.is(who.stdout.split(' ')[2], lab.host('web-1').address);
    t.is(conn.stats.connections, 2);
  } finally {
    await conn.close();
  }

  const noJumpKey = await knownHostsCopy('jump_unknown_outsider', withoutHost(outsider));
  const r1 = await cli(['deploy', '-i', await inventoryCopy('jump1', { hostExtra: jumpVia(noJumpKey) }), '--check', '--limit', 'web-1'], env);
  t.is(r1.code, 1, r1.stdout);
  t.true(r1.stdout.includes(`web-1: facts/connect: host key of jump host labadmin@${outsider}:22 is unknown (ssh-ed25519 SHA256:`), r1.stdout);

  const noTargetKey = await knownHostsCopy('jump_unknown_web1', withoutHost(lab.host('web-1').address));
  const r2 = await cli(['deploy', '-i', await inventoryCopy('jump2', { hostExtra: jumpVia(noTargetKey) }), '--check', '--limit', 'web-1'], env);
  t.is(r2.code, 1, r2.stdout);
  t.true(r2.stdout.includes(`web-1: facts/connect: host key of labadmin@${lab.host('web-1').address}:22 is unknown (ssh-ed25519 ${fingerprint(await hostKeyBlob('web-1'))})`), r2.stdout);
});

/** Every process argument list on the machine (the lab hosts share its process table), sampled until stopped. */
function watchProcessArguments(): { stop(): Promise<string[]> } {
  const seen = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      // All at once: a scan one process after another can take longer than a short run under load.
      const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
      for (const args of await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')))) {
        if (args) seen.add(args.split('\0').join(' '));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return { stop: async () => ((running = false), await loop, [...seen]) };
}

test.serial('become with a sudo password from PEM_BECOME_PASSWORD works and never shows the password', async (t) => {
  const inv = await inventoryCopy('become', { user: PW_USER });
  const watch = watchProcessArguments();
  const r = await cli(['deploy', '-i', inv, '--check', '--limit', 'backends'], { ...env, PEM_BECOME_PASSWORD: BECOME_PASSWORD });
  const args = await watch.stop();
  t.is(r.code, 0, r.stderr + r.stdout);
  t.deepEqual(pick(recap(r.stdout, 'pg-primary'), 'failed', 'unreachable'), reached);
  t.regex(r.stdout, /\[facts\] pg-standby: server: ok - 15\.\d+ standby/);
  t.true(args.some((a) => a.includes('sudo -S')), 'the watcher did see the sudo commands');
  t.deepEqual(args.filter((a) => a.includes('s3cret sudo')), []);
  t.false((r.stdout + r.stderr).includes('s3cret sudo'));
});

test.serial('a wrong sudo password fails the host with a clear message instead of hanging', async (t) => {
  const inv = await inventoryCopy('become-wrong', { user: PW_USER });
  const started = Date.now();
  const r = await cli(['deploy', '-i', inv, '--check', '--limit', 'pg-primary'], { ...env, PEM_BECOME_PASSWORD: 'not the sudo password' });
  t.is(r.code, 1, r.stderr + r.stdout);
  t.true(Date.now() - started < 60_000);
  t.deepEqual(pick(recap(r.stdout, 'pg-primary'), 'ok', 'failed', 'unreachable'), { ok: 0, failed: 1, unreachable: 0 });
  t.regex(r.stdout, /pg-primary: facts\/facts: sudo refused the password in PEM_BECOME_PASSWORD for pemsshpw/);
  t.false((r.stdout + r.stderr).includes('not the sudo password'));
});

test.serial('without PEM_BECOME_PASSWORD a password-requiring sudo fails fast and says what to set', async (t) => {
  const inv = await inventoryCopy('become-none', { user: PW_USER });
  const r = await cli(['deploy', '-i', inv, '--check', '--limit', 'pg-primary'], env);
  t.is(r.code, 1, r.stderr + r.stdout);
  t.regex(r.stdout, /pg-primary: facts\/facts: .*a password is required.*PEM_BECOME_PASSWORD/);
});
