import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.ts';
import { buildRunRecord, findDeployRecord, listRunRecords, recordedSteps, writeRunRecord, type RunRecord } from '../../src/records.ts';
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
