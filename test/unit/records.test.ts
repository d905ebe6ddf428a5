import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.ts';
import {
  buildRunRecord, findDeployRecord, formatRecordWriteError, listRunRecords, readRunRecords, RecordWriteError, recordedSteps, runsDir, writeRunRecord, type RunRecord,
} from '../../src/records.ts';
import { emptyRecap, type HostRecap } from '../../src/runner.ts';

function recap(steps: HostRecap['steps']): HostRecap {
  return { ...emptyRecap(), steps };
}

const base = (run: string, kind: RunRecord['kind'] = 'deploy', started = '2026-11-25T10:00:00.000Z') => ({
  run, kind, started, finished: started, inventory: { path: '/x/site.ini', sha256: 'ab' }, limit: null,
});

test('a run that changed nothing leaves no record', (t) => {
  const hosts = new Map([['web-1', recap([{ stage: 'web', step: 'config_local.py', status: 'ok', message: 'already set' }])]]);
  t.is(buildRunRecord(base('r1'), hosts), undefined);
});

test('a record keeps the changed and failed steps with what they did, nothing else', (t) => {
  const hosts = new Map([
    ['web-1', recap([
      { stage: 'facts', step: 'config_local.py', status: 'ok', message: 'present' },
      { stage: 'web', step: 'config_local.py', status: 'changed', message: 'set', record: { file: '/f', sha256After: 'cd' } },
    ])],
    ['web-2', recap([{ stage: 'facts', step: 'connect', status: 'failed', message: 'ECONNREFUSED' }])],
    ['web-3', recap([{ stage: 'web', step: 'config_local.py', status: 'ok', message: 'already set' }])],
  ]);
  const r = buildRunRecord(base('r2'), hosts)!;
  t.deepEqual(Object.keys(r.hosts), ['web-1', 'web-2']);
  t.deepEqual(r.hosts['web-1']!.steps, [{ stage: 'web', step: 'config_local.py', status: 'changed', message: 'set', record: { file: '/f', sha256After: 'cd' } }]);
  t.deepEqual(recordedSteps(r, 'web-1', 'web').map((s) => s.record), [{ file: '/f', sha256After: 'cd' }]);
  t.is(recordedSteps(r, 'web-2', 'web').length, 0);
});

test('rollback takes the latest deploy by default, or the one named; never a rollback', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pems-records-'));
  t.throws(() => findDeployRecord(dir), { instanceOf: UsageError, message: /no deploy run is recorded/ });
  const changed = new Map([['h', recap([{ stage: 'web', step: 's', status: 'changed', message: 'm' }])]]);
  writeRunRecord(dir, buildRunRecord(base('20261125T100000Z-aaaa', 'deploy', '2026-11-25T10:00:00.000Z'), changed)!);
  writeRunRecord(dir, buildRunRecord(base('20261125T110000Z-bbbb', 'deploy', '2026-11-25T11:00:00.000Z'), changed)!);
  writeRunRecord(dir, { ...buildRunRecord(base('20261125T120000Z-cccc', 'rollback', '2026-11-25T12:00:00.000Z'), changed)!, of: '20261125T110000Z-bbbb' });
  t.deepEqual(listRunRecords(dir).map((r) => r.run), ['20261125T100000Z-aaaa', '20261125T110000Z-bbbb', '20261125T120000Z-cccc']);
  t.is(findDeployRecord(dir).run, '20261125T110000Z-bbbb');
  t.is(findDeployRecord(dir, '20261125T100000Z-aaaa').run, '20261125T100000Z-aaaa');
  t.throws(() => findDeployRecord(dir, '20261125T120000Z-cccc'), { message: /is a rollback; only deploy runs can be rolled back/ });
  t.throws(() => findDeployRecord(dir, 'nope'), { message: /no run record nope/ });
});

test('a restart that failed is owed by the next run while the file is as that run wrote it', async (t) => {
  const { pendingRestart } = await import('../../tasks/deploy/web.ts');
  const run = (id: string, restart: 'changed' | 'failed') => buildRunRecord(base(id, 'deploy', `2026-11-25T1${id.length}:00:00.000Z`), new Map([['web-2', recap([
    { stage: 'web', step: 'config_local.py', status: 'changed', message: 'set', record: { sha256After: `sha-${id}` } },
    { stage: 'web', step: 'restart web app', status: restart, message: restart === 'failed' ? 'dropped' : 'ok' },
  ])]]))!;
  t.deepEqual(pendingRestart([run('a', 'failed')], 'web-2'), { run: 'a', sha256After: 'sha-a' });
  t.is(pendingRestart([run('a', 'failed'), run('bb', 'changed')], 'web-2'), undefined, 'a later restart made up for it');
  t.is(pendingRestart([run('a', 'changed')], 'web-2'), undefined);
  t.is(pendingRestart([run('a', 'failed')], 'web-1'), undefined, 'another host owes nothing');
});

// ---- records that survive a crash, a full disk and a damaged file ----

const deployChanging = (run: string, started = '2026-11-25T10:00:00.000Z') => buildRunRecord(base(run, 'deploy', started), new Map([
  ['web-1', recap([
    { stage: 'web', step: 'config_local.py', status: 'changed', message: 'CONFIG_DATABASE_URI set', record: { file: '/usr/edb/pem/web/config_local.py', backup: '/usr/edb/pem/web/config_local.py.pem-settings-r1.bak' } },
    { stage: 'web', step: 'restart web app', status: 'failed', message: 'exited with 1' },
  ])],
  ['db-1', recap([{ stage: 'database', step: 'role pem_user_settings', status: 'changed', message: 'created', record: { kind: 'role', created: true } }])],
]))!;

test('a record is written whole through a temporary file: no temporary file stays, mode 0600', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pems-records-'));
  const path = writeRunRecord(dir, deployChanging('20261125T100000Z-aaaa'));
  t.deepEqual(readdirSync(runsDir(dir)), ['20261125T100000Z-aaaa.json']);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.is(statSync(runsDir(dir)).mode & 0o777, 0o700);
  t.deepEqual(JSON.parse(readFileSync(path, 'utf8')), deployChanging('20261125T100000Z-aaaa'));
  // Written again (a rollback recorded twice under one id): replaced whole, still one file.
  writeRunRecord(dir, { ...deployChanging('20261125T100000Z-aaaa'), interrupted: true });
  t.deepEqual(readdirSync(runsDir(dir)), ['20261125T100000Z-aaaa.json']);
  t.true(listRunRecords(dir)[0]!.interrupted);
});

test('a damaged record file is a warning naming it; the other records are still read', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pems-records-'));
  writeRunRecord(dir, deployChanging('20261125T100000Z-aaaa'));
  writeRunRecord(dir, deployChanging('20261125T110000Z-bbbb', '2026-11-25T11:00:00.000Z'));
  const runs = runsDir(dir);
  writeFileSync(join(runs, '20261125T120000Z-cut.json'), '{"version": 1, "run": "20261125T120000Z-cut", "hosts": {"web-1": {"st');
  writeFileSync(join(runs, '20261125T130000Z-empty.json'), '');
  writeFileSync(join(runs, 'notes.json'), '{"todo": ["rotate the password"]}');
  mkdirSync(join(runs, 'old.json'));
  writeFileSync(join(runs, 'README.txt'), 'not a record, not a .json');

  const { records, warnings } = readRunRecords(dir);
  t.deepEqual(records.map((r) => r.run), ['20261125T100000Z-aaaa', '20261125T110000Z-bbbb']);
  t.deepEqual(warnings.map((w) => [w.path.slice(runs.length + 1), w.reason]), [
    ['20261125T120000Z-cut.json', 'not valid JSON: cut short or edited'],
    ['20261125T130000Z-empty.json', 'empty file'],
    ['notes.json', 'not a pem-settings run record (version 1)'],
    ['old.json', 'EISDIR'],
  ]);
  t.is(warnings[0]!.message, `the run record ${join(runs, '20261125T120000Z-cut.json')} cannot be read (not valid JSON: cut short or edited); it is left out (move it away or restore it)`);
  t.false(warnings.some((w) => w.message.includes('rotate')), 'a warning never quotes the file');

  t.deepEqual(listRunRecords(dir).map((r) => r.run), ['20261125T100000Z-aaaa', '20261125T110000Z-bbbb']);
  t.is(findDeployRecord(dir).run, '20261125T110000Z-bbbb');
  t.throws(() => findDeployRecord(dir, '20261125T120000Z-cut'), { instanceOf: UsageError, message: /20261125T120000Z-cut\.json cannot be read \(not valid JSON: cut short or edited\), so run 20261125T120000Z-cut cannot be rolled back/ });
});

test('a record that cannot be written is a RecordWriteError listing what changed, and leaves no temporary file', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pems-records-'));
  // The state directory is a regular file: ENOTDIR, for root and other users alike.
  const stateDir = join(root, 'state');
  writeFileSync(stateDir, '');
  const e = t.throws(() => writeRunRecord(stateDir, deployChanging('r1')), { instanceOf: RecordWriteError })!;
  t.is(e.path, join(stateDir, 'runs', 'r1.json'));
  t.is(e.code, 'ENOTDIR');
  t.deepEqual(e.changes.map((c) => `${c.host} ${c.stage} ${c.step}`), ['web-1 web config_local.py', 'db-1 database role pem_user_settings']);
  t.is(e.message, formatRecordWriteError(e));
  t.is(e.message, [
    `could not write the run record ${join(stateDir, 'runs', 'r1.json')} (ENOTDIR: a part of the path is not a directory), so rollback cannot undo this run. It changed:`,
    '  web-1: web config_local.py: CONFIG_DATABASE_URI set (file /usr/edb/pem/web/config_local.py, backup /usr/edb/pem/web/config_local.py.pem-settings-r1.bak)',
    '  db-1: database role pem_user_settings: created',
    `Keep this list: it is the only record of these changes. Undo them by hand from the backups named above if needed, and fix ${join(stateDir, 'runs')} (or choose another place with --state-dir) before the next run.`,
  ].join('\n'));

  // The rename fails (a directory is where the record goes): the temporary file is removed.
  const dir = mkdtempSync(join(tmpdir(), 'pems-records-'));
  mkdirSync(join(runsDir(dir), 'r2.json', 'inside'), { recursive: true });
  const blocked = t.throws(() => writeRunRecord(dir, deployChanging('r2')), { instanceOf: RecordWriteError })!;
  t.regex(blocked.code, /^(EISDIR|ENOTEMPTY|EEXIST)$/);
  t.deepEqual(readdirSync(runsDir(dir)), ['r2.json']);
});

test('runs lists the readable records and names a damaged one on stderr', async (t) => {
  const { runsCommand } = await import('../../src/commands/runs.ts');
  const dir = mkdtempSync(join(tmpdir(), 'pems-records-'));
  const inventory = join(dir, 'site.ini');
  const stateDir = join(dir, '.pem-settings');
  writeRunRecord(stateDir, deployChanging('20261125T100000Z-aaaa'));
  writeFileSync(join(runsDir(stateDir), '20261125T110000Z-bbbb.json'), '{"version": 1, "ru');
  let stdout = '';
  let stderr = '';
  const code = await runsCommand({ inventory }, { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s), isTTY: false });
  t.is(code, 0);
  t.regex(stdout, /^20261125T100000Z-aaaa\s+deploy/m);
  t.is(stderr, `pem-settings: warning: the run record ${join(runsDir(stateDir), '20261125T110000Z-bbbb.json')} cannot be read (not valid JSON: cut short or edited); it is left out (move it away or restore it)\n`);
});
