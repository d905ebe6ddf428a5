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
  /**
   * Stable id of the step, kept in run records: what rollback looks steps up by, so that a label
   * can be reworded without breaking the rollback of older records.
   */
  id: string;
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

/** What a step did, for the run record: secret-free JSON data that rollback reads. */
export type StepRecord = { [key: string]: unknown };

/** How an applied step turned out, when it says more than its plan did. */
export interface Applied {
  record?: StepRecord;
  summary?: string;
  warnings?: string[];
}

/**
 * Where an apply says what it has done, step by step as each is done: a run that fails halfway
 * still records exactly what it did (for the run record and rollback).
 */
export interface ApplyLog {
  done(id: string, applied?: Applied): void;
}
