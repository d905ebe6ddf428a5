// The runner on the lab (issue 9 item 2): the per-host run lock, unreachable hosts (web and
// backend), the retry file and `--limit @file`, --forks 1, and the --json document's shape.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { startLab, type Lab } from '../lab/lab.ts';
import { loadInventory, resolveAll } from '../../src/inventory/index.ts';
import { connect, type ConnectTarget } from '../../src/ssh/connect.ts';
import { hostAccess } from '../../src/targets.ts';
import { spawnCli } from './faults-shared.ts';
import { POSTGRES_LOCK, holdRunLock, cli, hostFile, NASTY_PASSWORD, sql } from './helpers.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HBA = '/var/lib/postgresql/15/main/pg_hba.conf';
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };
let lab: Lab;

test.before(async () => {
  lab = await startLab({ name: 'run21', subnet: '10.231.21.0/24' });
});
test.after.always(async () => {
  await lab?.stop();
});

interface JsonStep { stage: string; step: string; status: string; message: string }
interface JsonHost { ok: number; changed: number; failed: number; skipped: number; unreachable: boolean; steps: JsonStep[] }
const parse = (stdout: string) => JSON.parse(stdout) as { run: string; hosts: Record<string, JsonHost> };

function targetOf(host: string): ConnectTarget {
  const inventory = loadInventory(lab.inventoryPath);
  const resolved = resolveAll(inventory).find((h) => h.name === host)!;
  return hostAccess(resolved, { inventoryFile: lab.inventoryPath, acceptNewHostKeys: false, connectTimeoutMs: 10_000, commandTimeoutSec: 120 }, [])!.target;
}

/** True once nobody holds the host's run lock of postgres (checked on the host itself with flock). */
async function lockIsFree(host: string): Promise<boolean> {
  return (await lab.exec(host, ['flock', '-n', POSTGRES_LOCK, 'true'], { user: 'postgres' })).code === 0;
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.serial('--json prints one document: run id, and per host the counters, unreachable and every step', async (t) => {
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--json'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  const doc = parse(r.stdout); // the whole of stdout is the document: nothing before or after it
  t.regex(doc.run, /^\d{8}T\d{6}Z-[0-9a-f]{1,4}$/);
  t.deepEqual(Object.keys(doc.hosts), ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3']);
  for (const [name, h] of Object.entries(doc.hosts)) {
    t.deepEqual(Object.keys(h), ['ok', 'changed', 'failed', 'skipped', 'unreachable', 'steps'], name);
    t.is(h.unreachable, false, name);
    t.is(h.steps.length, h.ok + h.changed + h.failed + h.skipped, `${name}: every step is counted once`);
    for (const s of h.steps) {
      t.deepEqual(Object.keys(s).filter((k) => k !== 'warnings'), ['stage', 'step', 'status', 'message'], `${name}: ${s.step}`);
      t.true(['ok', 'changed', 'failed', 'skipped'].includes(s.status));
    }
  }
  t.deepEqual(doc.hosts['pg-primary']!.steps.filter((s) => s.stage === 'facts').map((s) => [s.step, s.status]), [['server', 'ok']]);
  t.true(doc.hosts['pg-primary']!.steps.some((s) => s.stage === 'database' && s.step === 'role pem_user_settings' && s.status === 'changed'));
  t.true(doc.hosts['pg-standby']!.steps.some((s) => s.stage === 'pg_hba' && s.status === 'changed'));
});

test.serial('--forks 1 works through every host one at a time', async (t) => {
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--json', '--forks', '1'], env);
  t.is(r.code, 0, r.stderr + r.stdout);
  for (const [name, h] of Object.entries(parse(r.stdout).hosts)) {
    t.is(h.failed, 0, name);
    t.false(h.unreachable, name);
  }
});

test.serial('a host whose lock another run holds is waited for up to --lock-timeout, naming the holder; then that host fails', async (t) => {
  const conn = await connect(targetOf('pg-primary'));
  try {
    const held = await holdRunLock(conn, 'test-holder', 'postgres');
    const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--lock-timeout', '2'], env);
    t.is(r.code, 1, r.stdout);
    t.regex(r.stdout, /pem-settings: pg-primary: waiting up to 2 s for the run lock of postgres, held by run test-holder by a test/);
    t.regex(r.stdout, /pg-primary: facts\/lock: another pem-settings run holds this host's run lock \(run test-holder by a test\) and did not finish within 2 s/);
    t.regex(r.stdout, /^pg-primary +: ok=0 +changed=0 +failed=1 +unreachable=0/m);
    t.regex(r.stdout, /^pg-standby +: ok=1 +changed=0 +failed=0 +unreachable=0/m, 'the other hosts went on');
    await held.release();
    t.true(await lockIsFree('pg-primary'));
  } finally {
    await conn.close();
  }
});

test.serial('a run that finds a lock held waits for it and goes on once it is released', async (t) => {
  const conn = await connect(targetOf('pg-primary'));
  try {
    const held = await holdRunLock(conn, 'test-holder', 'postgres');
    const run = spawnCli(['deploy', '-i', lab.inventoryPath, '--check', '--lock-timeout', '60'], env);
    await waitUntil('the run says it waits', 60_000, async () => run.stdout().includes('waiting up to 60 s'));
    await held.release();
    const r = await run.done;
    t.is(r.code, 0, r.stdout);
    t.regex(r.stdout, /waiting up to 60 s for the run lock of postgres, held by run test-holder/);
  } finally {
    await conn.close();
  }
});

test.serial('a lock holder that is killed frees the lock (the dead connection takes it along)', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/ssh/hold-lock.ts', JSON.stringify(targetOf('pg-primary'))], { cwd: REPO });
  try {
    const first = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()).includes('\n') && resolve(out.trim()));
      child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    t.is(first, 'locked');
    t.false(await lockIsFree('pg-primary'));
  } finally {
    child.kill('SIGKILL');
  }
  await waitUntil('the killed holder\'s lock is gone', 15_000, () => lockIsFree('pg-primary'));
  const r = await cli(['deploy', '-i', lab.inventoryPath, '--check'], env);
  t.is(r.code, 0, r.stdout);
  t.notRegex(r.stdout, /another pem-settings run/);
});

test.serial('an unreachable backend stops the run after facts; --keep-going runs the later stages', async (t) => {
  await lab.stopSshd('pg-standby');
  try {
    const r = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--json'], env);
    t.is(r.code, 1, r.stderr + r.stdout);
    const doc = parse(r.stdout);
    t.true(doc.hosts['pg-standby']!.unreachable);
    t.regex(doc.hosts['pg-standby']!.steps[0]!.message, /cannot connect: ECONNREFUSED labadmin@10\.231\.21\.11:22/);
    const primary = doc.hosts['pg-primary']!;
    t.deepEqual(primary.steps.filter((s) => s.stage !== 'facts').map((s) => [s.stage, s.status, s.message]), [
      ['database', 'skipped', 'not run: the run stopped after the facts stage'],
      ['pg_hba', 'skipped', 'not run: the run stopped after the facts stage'],
    ]);

    const going = await cli(['deploy', '-i', lab.inventoryPath, '--check', '--json', '--keep-going'], env);
    t.is(going.code, 1);
    const kept = parse(going.stdout).hosts['pg-primary']!;
    t.true(kept.steps.some((s) => s.stage === 'database' && s.status === 'changed'));
    t.true(kept.steps.some((s) => s.stage === 'pg_hba' && s.status === 'changed'));
    t.true(parse(going.stdout).hosts['pg-standby']!.unreachable);
  } finally {
    await lab.startSshd('pg-standby');
  }
});

test.serial('an unreachable web host: the backends are still deployed, a retry file names it, --limit @file retries exactly it', async (t) => {
  await lab.stopSshd('web-2');
  let retryFile: string;
  try {
    const r = await cli(['deploy', '-i', lab.inventoryPath], env);
    t.is(r.code, 1, r.stderr + r.stdout);
    t.regex(r.stdout, /^web-2 +: ok=0 +changed=0 +failed=0 +unreachable=1/m);
    t.regex(r.stdout, /^pg-primary +: ok=\d+ +changed=[1-9]\d* +failed=0 +unreachable=0/m);
    t.regex(r.stdout, /^pg-standby +: ok=\d+ +changed=1 +failed=0 +unreachable=0/m);
    // The backends really are deployed.
    t.is(await sql(lab, 'pg-primary', `SELECT count(*) FROM pg_database WHERE datname = 'pem_user_settings'`), '1');
    for (const h of ['pg-primary', 'pg-standby']) {
      t.true((await hostFile(lab, h, HBA)).toString().includes('hostssl pem_user_settings pem_user_settings 10.231.21.64/26 scram-sha-256\n'), h);
    }
    const m = /To retry the failed hosts: --limit @(\S+)/.exec(r.stdout);
    t.truthy(m, r.stdout);
    retryFile = m![1]!;
    t.is(retryFile, lab.inventoryPath.replace(/\.ini$/, '.retry'));
    t.is(await readFile(retryFile, 'utf8'), 'web-2\n');

    const stillDown = await cli(['deploy', '-i', lab.inventoryPath, '--limit', `@${retryFile}`, '--json'], env);
    t.is(stillDown.code, 1);
    const doc = parse(stillDown.stdout);
    t.deepEqual(Object.keys(doc.hosts), ['web-2'], 'the retry selects exactly the failed host');
    t.true(doc.hosts['web-2']!.unreachable);
  } finally {
    await lab.startSshd('web-2');
  }
  const retry = await cli(['deploy', '-i', lab.inventoryPath, '--limit', `@${retryFile!}`, '--json'], env);
  t.is(retry.code, 0, retry.stderr + retry.stdout);
  const doc = parse(retry.stdout);
  t.deepEqual(Object.keys(doc.hosts), ['web-2']);
  t.is(doc.hosts['web-2']!.failed, 0);
  t.false(doc.hosts['web-2']!.unreachable);
});
