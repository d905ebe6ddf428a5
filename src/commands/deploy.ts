// `pem-settings deploy`: validate everything, then take the locks, run the job's stages and report (SPEC 2, 4).

import type { Io } from '../io.ts';
import type { Job } from '../job.ts';
import { readRunRecords } from '../records.ts';
import { connectionsFor, execute, outputFor } from './execute.ts';
import { loginOf, newRunId, prepare, type CommonOptions } from './prepare.ts';

export async function deployCommand(job: Job, opts: CommonOptions, io: Io): Promise<number> {
  const prepared = prepare(job, 'deploy', opts);
  const runId = newRunId();
  const output = outputFor(io, prepared);
  const { notify, mask } = output;
  const connections = connectionsFor(prepared, runId, notify);
  const { records, warnings } = readRunRecords(prepared.stateDir);
  for (const w of warnings) io.stderr(`pem-settings: warning: ${w.message}\n`);
  const plan = prepared.job.deploy({
    runId, connections, selected: prepared.hosts, login: loginOf(prepared), records, notify, mask, check: Boolean(opts.check),
  });
  return execute(opts, prepared, connections, plan, { kind: 'deploy', runId, title: 'deploy' }, io, output);
}
