// `pem-settings rollback`: undo one recorded deploy (SPEC 6), itself recorded.

import { UsageError } from '../errors.ts';
import type { Io } from '../io.ts';
import type { Job } from '../job.ts';
import { findDeployRecord, readRunRecords } from '../records.ts';
import { connectionsFor, execute, outputFor } from './execute.ts';
import { loginOf, newRunId, prepare, type CommonOptions } from './prepare.ts';

export async function rollbackCommand(job: Job, opts: CommonOptions, io: Io): Promise<number> {
  const prepared = prepare(job, 'rollback', opts);
  const read = readRunRecords(prepared.stateDir);
  for (const w of read.warnings) io.stderr(`pem-settings: warning: ${w.message}\n`);
  const record = findDeployRecord(prepared.stateDir, typeof opts['run'] === 'string' ? opts['run'] : undefined, read);
  const hosts = prepared.hosts.filter((h) => record.hosts[h]);
  if (hosts.length === 0) throw new UsageError(`run ${record.run} changed nothing on the selected hosts`);
  const runId = newRunId();
  const output = outputFor(io, prepared);
  const { notify, mask } = output;
  const connections = connectionsFor(prepared, runId, notify);
  const plan = prepared.job.rollback(
    { runId, connections, selected: hosts, login: loginOf(prepared), records: read.records, notify, mask, check: Boolean(opts.check) },
    { record, force: Boolean(opts['force']), purge: Boolean(opts['purge']) },
  );
  return execute(opts, prepared, connections, plan, { kind: 'rollback', runId, of: record.run, title: `rollback of run ${record.run}` }, io, output);
}
