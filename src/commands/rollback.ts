// `pem-settings rollback`: undo one recorded deploy (SPEC 6), itself recorded.

import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { UsageError } from '../errors.ts';
import { findDeployRecord } from '../records.ts';
import { rollbackStages } from '../../tasks/rollback.ts';
import { execute, newRunId, prepare, type JobOptions } from './job.ts';

export interface RollbackOptions extends JobOptions {
  run?: string;
  force?: boolean;
  purge?: boolean;
}

export async function rollbackCommand(opts: RollbackOptions, io: Io): Promise<number> {
  // The role's password is not needed to undo a run; a placeholder keeps validation uniform.
  const prepared = prepare({ ...opts, allowWeakPassword: true }, { passwordOptional: true });
  const record = findDeployRecord(prepared.stateDir, opts.run);
  const hosts = prepared.hosts.filter((h) => record.hosts[h]);
  if (hosts.length === 0) throw new UsageError(`run ${record.run} changed nothing on the selected hosts`);
  const runId = newRunId();
  const connections = new Connections(prepared.access, runId);
  const stages = rollbackStages({
    runId, record, settings: prepared.settings, connections, selected: hosts, force: Boolean(opts.force), purge: Boolean(opts.purge),
    becomeUser: (h) => prepared.access.get(h)?.becomeUser,
  });
  return execute(opts, prepared, connections, stages, { kind: 'rollback', runId, of: record.run, title: `rollback of run ${record.run}` }, io);
}
