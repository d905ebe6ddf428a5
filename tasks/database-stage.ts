// Stage 2 (SPEC 4): the settings database on the primary. Planning is pure (database/plan.ts);
// applying sends one psql script on standard input, as the cluster's OS user.

import type { Change } from '../src/change.ts';
import type { Connection } from '../src/connection.ts';
import { heredoc } from '../src/connection.ts';
import { HostError } from '../src/errors.ts';
import type { HostPlan } from '../src/runner.ts';
import { findPsql, psqlCommand, type BackendFacts } from './backend-facts.ts';
import { DatabasePlanError, planDatabase, renderPsqlScript, completedSteps, type DbStep, type DbDesired } from './database/plan.ts';
import type { BackendSettings } from './settings.ts';

export interface DatabaseChange extends Change {
  dbStep: DbStep;
}

export function planDatabaseStage(host: string, facts: BackendFacts, desired: DbDesired): DatabaseChange[] {
  if (!facts.db) throw new HostError(host, 'database', 'catalog facts were not read (is this the primary?)');
  let steps: DbStep[];
  try {
    steps = planDatabase(facts.db, desired);
  } catch (e) {
    if (e instanceof DatabasePlanError) throw new HostError(host, e.step, e.reason, e.hint);
    throw e;
  }
  return steps.map((s) => ({
    host, stage: 'database', step: s.step, target: s.target, changed: s.changed, summary: s.summary,
    ...(s.warnings?.length ? { warnings: s.warnings } : {}),
    ...(s.changed ? { sql: s.maskedSql.map((q) => (s.database === 'postgres' ? q : `-- in database ${s.database}\n${q}`)) } : {}),
    dbStep: s,
  }));
}

/** Masks a SCRAM verifier wherever psql might echo one (error context lines). */
export function maskVerifiers(text: string): string {
  return text.replace(/SCRAM-SHA-256\$[^'\s]*/g, '********');
}

export function databaseHostPlan(conn: Connection, backend: BackendSettings, changes: DatabaseChange[]): HostPlan {
  return {
    changes,
    async apply(changed, record) {
      const steps = (changed as DatabaseChange[]).map((c) => c.dbStep);
      const script = heredoc(renderPsqlScript(steps));
      const result = await conn.run(['set -u', findPsql(backend), `${psqlCommand(backend)} ${script.open}`, script.body].join('\n'),
        { becomeUser: backend.pgOsUser });
      // renderPsqlScript numbers the steps it is given; each number printed is a committed step.
      for (const i of completedSteps(result.stdout)) {
        const s = steps[i]!;
        record(s.step, { ...(s.record ?? {}) });
      }
      if (result.code !== 0) {
        const done = completedSteps(result.stdout).map((i) => steps[i]!.step);
        const failedStep = steps.find((s) => !done.includes(s.step))?.step ?? 'database';
        throw new HostError(conn.host, failedStep, maskVerifiers(result.stderr.trim() || `psql exited with ${result.code}`),
          done.length ? `already applied: ${done.join(', ')}` : undefined);
      }
    },
  };
}
