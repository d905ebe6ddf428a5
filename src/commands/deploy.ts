// `pem-settings deploy`: validate everything, then run the stages and report (SPEC 2, 4).

import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { listRunRecords } from '../records.ts';
import { deployStages } from '../../tasks/deploy.ts';
import { execute, newRunId, prepare, type JobOptions } from './job.ts';

export async function deployCommand(opts: JobOptions, io: Io): Promise<number> {
  const prepared = prepare(opts);
  const runId = newRunId();
  const connections = new Connections(prepared.access, runId);
  const stages = deployStages({
    runId, settings: prepared.settings, secrets: prepared.secrets, connections, selected: prepared.hosts,
    becomeUser: (h) => prepared.access.get(h)?.becomeUser, records: listRunRecords(prepared.stateDir),
  });
  return execute(opts, prepared, connections, stages, { kind: 'deploy', runId, title: 'deploy' }, io);
}
export { newRunId } from './job.ts';
