// Stage 2 (SPEC 4): the settings database on the primary. Planning is pure (database/plan.ts);
// applying sends one psql script on standard input, as the cluster's OS user; psql prints a
// marker after each committed step, so a run that fails halfway still records what it did.

import type { Change, StepRecord } from '../../src/change.ts';
import { HostError } from '../../src/errors.ts';
import { runOp } from '../../src/remote/op.ts';
import { runPsqlRaw } from '../../src/remote/psql.ts';
import type { HostPlan, Stage } from '../../src/runner.ts';
import { psqlTarget, primaryOf, type BackendFacts } from '../facts/backend.ts';
import { DatabasePlanError, completedSteps, planDatabase, renderPsqlScript, type DbDesired, type DbRecord, type DbStep } from '../database/plan.ts';
import { opening } from '../site.ts';
import { STEP } from '../steps.ts';
import type { DeployContext } from './context.ts';

export interface DatabasePlan {
  changes: Change[];
  steps: DbStep[];
}

/** Pure: the catalog facts against the desired state, one change per item. */
export function planDatabaseStage(host: string, facts: BackendFacts, desired: DbDesired): DatabasePlan {
  if (!facts.db) throw new HostError(host, 'database', 'catalog facts were not read (is this the primary?)');
  let steps: DbStep[];
  try {
    steps = planDatabase(facts.db, desired);
  } catch (e) {
    if (e instanceof DatabasePlanError) throw new HostError(host, e.step, e.reason, e.hint);
    throw e;
  }
  const changes = steps.map((s): Change => ({
    host, stage: 'database', id: STEP.database(s.step), step: s.step, target: s.target, changed: s.changed, summary: s.summary,
    ...(s.warnings?.length ? { warnings: s.warnings } : {}),
    ...(s.changed ? { sql: s.maskedSql.map((q) => (s.database === 'postgres' ? q : `-- in database ${s.database}\n${q}`)) } : {}),
  }));
  return { changes, steps };
}

/** Masks a SCRAM verifier wherever psql might echo one (error context lines). */
export function maskVerifiers(text: string): string {
  return text.replace(/SCRAM-SHA-256\$[^'\s]*/g, '********');
}

export function databaseStage(d: DeployContext): Stage {
  return {
    name: 'database',
    // The facts stage has made sure there is at most one primary; none selected: nothing to do.
    get hosts() {
      const p = primaryOf(d.backendFacts).primary;
      return p ? [p] : [];
    },
    async plan(host): Promise<HostPlan> {
      const plan = planDatabaseStage(host, d.backendFacts.get(host)!, { ...d.target, password: d.secrets.password });
      return { changes: plan.changes, apply: (_changed, log) => applyDatabase(d, host, plan, log) };
    },
  };
}

async function applyDatabase(d: DeployContext, host: string, plan: DatabasePlan, log: { done(id: string, a: { record: StepRecord }): void }): Promise<void> {
  // Through the session that holds this backend's lock and read its facts: no new session, no sudo.
  const conn = await d.run.connections.session(opening.backend(host), host);
  const b = d.backends.get(host)!;
  const steps = plan.steps.filter((s) => s.changed);
  const out = await runOp(conn, runPsqlRaw(psqlTarget(b), renderPsqlScript(steps)), {
    user: b.pgOsUser, step: 'database', ifLost: 'the steps already committed stay; the next run finds them done',
  });
  // renderPsqlScript numbers the steps it is given; each number printed is a committed step.
  const done = completedSteps(out.stdout).map((i) => steps[i]!);
  for (const s of done) log.done(plan.changes[plan.steps.indexOf(s)]!.id, { record: dbRecord(s.record) });
  if (out.code !== 0) {
    const failedStep = steps.find((s) => !done.includes(s))?.step ?? 'database';
    throw new HostError(conn.host, failedStep, maskVerifiers(out.stderr.trim() || `psql exited with ${out.code}`),
      done.length ? `already applied: ${done.map((s) => s.step).join(', ')}` : undefined);
  }
}

function dbRecord(r: DbRecord | null): StepRecord {
  return r ? { ...r } : {};
}
