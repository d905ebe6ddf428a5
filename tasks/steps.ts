// Stable ids of the job's steps. Run records keep them, and rollback looks steps up by them, so
// the labels printed (Change.step) can be reworded without breaking the rollback of a record
// written before.

export const STEP = {
  facts: 'facts',
  /**
   * One per catalog item (role, database, grants...). Rollback reads database records by their
   * own `kind`, not by id, so these ids only need to be unique within a run.
   */
  database: (item: string) => `database/${item}`,
  hbaRule: 'pg_hba/rule',
  hbaReload: 'pg_hba/reload',
  webFile: 'web/config_local',
  webPassfile: 'web/passfile',
  webRestart: 'web/restart',
  webHealth: 'web/health',
  webSchema: 'web/schema',
} as const;

/** Labels that records written before step ids existed used instead of the ids. */
const LEGACY: Record<string, string> = {
  'config_local.py': STEP.webFile,
  'restart web app': STEP.webRestart,
  'pg_hba.conf rule': STEP.hbaRule,
};

/** The id of a recorded step, from a record of any version. */
export function stepIdOf(step: { id?: string; stage: string; step: string }): string {
  return step.id ?? LEGACY[step.step] ?? `${step.stage}/${step.step}`;
}
