// What a task's plan produces and what the runner, the recap, --diff, the run record and
// rollback consume. Plans are pure: a Change is a value, nothing runs while planning.

export type StepStatus = 'ok' | 'changed' | 'failed' | 'skipped';

/** A unified diff as data: header plus before/after text, secrets already masked. */
export interface FileDiff {
  path: string;
  before: string;
  after: string;
}

export interface Change {
  /** Inventory host name. */
  host: string;
  /** Stage of the run: facts, database, pg_hba, web. */
  stage: string;
  /** Operator-facing step name, e.g. "role pem_user_settings", "pg_hba rule". */
  step: string;
  /** What is changed: a file path, a database object. */
  target: string;
  /** True when applying this change would modify the host. */
  changed: boolean;
  /** One line for the operator: what is (or would be) done. No secrets. */
  summary: string;
  /** Warnings to carry into the recap (e.g. roles that would be locked out). */
  warnings?: string[];
  /** For --diff: the file before and after, or the SQL — secrets already masked by the task. */
  diff?: FileDiff;
  sql?: string[];
}
