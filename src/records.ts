// Run records (SPEC 6): one JSON file per run that changed something, in a state directory
// beside the inventory (or --state-dir). They hold what rollback needs — paths, backups,
// checksums, catalog changes — and never a secret: only the steps' summaries and records.

import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.ts';
import type { HostRecap, StepReport } from './runner.ts';

export interface RunRecord {
  version: 1;
  run: string;
  kind: 'deploy' | 'rollback';
  /** For a rollback: the run it undid. */
  of?: string;
  started: string;
  finished: string;
  inventory: { path: string; sha256: string };
  limit: string | null;
  interrupted?: boolean;
  /** Per host, the steps that changed something or failed, in order. */
  hosts: Record<string, { steps: StepReport[] }>;
}

export function stateDirFor(inventoryPath: string, override?: string): string {
  return resolve(override ?? join(dirname(inventoryPath), '.pem-settings'));
}

export function runsDir(stateDir: string): string {
  return join(stateDir, 'runs');
}

/**
 * Makes sure run records can be written before anything is changed: a run whose record cannot
 * be kept could not be rolled back.
 */
export function ensureRecordsWritable(stateDir: string): void {
  const dir = runsDir(stateDir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot keep run records in ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)} (choose another place with --state-dir)`);
  }
}

export function inventoryChecksum(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The record of a run, or undefined when it changed nothing (nothing to undo, nothing to keep). */
export function buildRunRecord(base: Omit<RunRecord, 'version' | 'hosts'>, hosts: Map<string, HostRecap>): RunRecord | undefined {
  const kept: RunRecord['hosts'] = {};
  let changed = false;
  for (const [name, recap] of hosts) {
    const steps = recap.steps.filter((s) => s.status === 'changed' || s.status === 'failed');
    if (steps.some((s) => s.status === 'changed')) changed = true;
    if (steps.length) kept[name] = { steps: steps.map(({ stage, id, step, status, message, record }) => ({ stage, ...(id ? { id } : {}), step, status, message, ...(record ? { record } : {}) })) };
  }
  return changed ? { version: 1, ...base, hosts: kept } : undefined;
}

/** A step that changed something on a host, as an operator needs it to undo it by hand. */
export interface ChangedStep {
  host: string;
  stage: string;
  step: string;
  message: string;
  file?: string;
  backup?: string;
}

/**
 * The run changed hosts but its record could not be written: rollback will not know of these
 * changes. Exit 1; the message (formatRecordWriteError) lists every change, never a stack.
 */
export class RecordWriteError extends Error {
  override name = 'RecordWriteError';
  constructor(
    readonly path: string,
    /** The OS error code (ENOSPC, EACCES, EROFS...), or the error's message when it has none. */
    readonly code: string,
    readonly changes: ChangedStep[],
  ) {
    super(formatRecordWriteError({ path, code, changes }));
  }
}

/**
 * Writes the record atomically: a temporary file (mode 0600) in the same directory, flushed to
 * disk, then renamed over the final name — a crash or a full disk leaves the old state or the
 * whole record, never half of one that would make `runs` and `rollback` fail later.
 * Throws RecordWriteError, and leaves no temporary file behind.
 */
export function writeRunRecord(stateDir: string, record: RunRecord): string {
  const dir = runsDir(stateDir);
  const path = join(dir, `${record.run}.json`);
  // Not ending in .json, so a reader never takes it for a record.
  const tmp = join(dir, `.${record.run}.json.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fd = openSync(tmp, 'wx', 0o600);
    writeFileSync(fd, JSON.stringify(record, null, 2) + '\n');
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(tmp);
    throw new RecordWriteError(path, (e as NodeJS.ErrnoException).code ?? (e as Error).message, changedSteps(record));
  }
  syncDirectory(dir);
  return path;
}

/** The rename is durable only once the directory is flushed; a file system that cannot do that still has the record. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // EINVAL/EISDIR on file systems without directory fsync: the record is written all the same.
  }
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // nothing was created there (the directory itself is missing or not one)
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing: the first error is the one to report
  }
}

/** Every step of the record that changed something, host by host. */
export function changedSteps(record: RunRecord): ChangedStep[] {
  const out: ChangedStep[] = [];
  for (const [host, { steps }] of Object.entries(record.hosts)) {
    for (const s of steps) {
      if (s.status !== 'changed') continue;
      const file = s.record?.['file'];
      const backup = s.record?.['backup'];
      out.push({
        host, stage: s.stage, step: s.step, message: s.message,
        ...(typeof file === 'string' ? { file } : {}), ...(typeof backup === 'string' ? { backup } : {}),
      });
    }
  }
  return out;
}

const CODE_MEANS: Record<string, string> = {
  ENOSPC: 'the disk is full', EDQUOT: 'the disk quota is used up', EACCES: 'permission denied', EPERM: 'permission denied',
  EROFS: 'the file system is read-only', ENOTDIR: 'a part of the path is not a directory', EISDIR: 'a directory is in the way', EIO: 'an I/O error',
};

/** What the operator reads when a run's record could not be kept (pure: for the command and its tests). */
export function formatRecordWriteError(e: Pick<RecordWriteError, 'path' | 'code' | 'changes'>): string {
  const why = CODE_MEANS[e.code] ? `${e.code}: ${CODE_MEANS[e.code]}` : e.code;
  const lines = [`could not write the run record ${e.path} (${why}), so rollback cannot undo this run. It changed:`];
  for (const c of e.changes) {
    const where = [c.file ? `file ${c.file}` : '', c.backup ? `backup ${c.backup}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${c.host}: ${c.stage} ${c.step}: ${c.message}${where ? ` (${where})` : ''}`);
  }
  if (e.changes.length === 0) lines.push('  (no step reported a change)');
  lines.push('Keep this list: it is the only record of these changes. Undo them by hand from the backups named above if needed,'
    + ` and fix ${dirname(e.path)} (or choose another place with --state-dir) before the next run.`);
  return lines.join('\n');
}

/** A record file that could not be read; the other records are used all the same. */
export interface RecordWarning {
  path: string;
  reason: string;
  /** One line for stderr, naming the file. */
  message: string;
}

export interface RunRecordsRead {
  /** The readable records, oldest first. */
  records: RunRecord[];
  warnings: RecordWarning[];
}

/**
 * The run records of a state directory, oldest first, with a warning for each file that cannot
 * be read (truncated, edited, not a record): one bad file must not stop every command.
 */
export function readRunRecords(stateDir: string): RunRecordsRead {
  const dir = runsDir(stateDir);
  if (!existsSync(dir)) return { records: [], warnings: [] };
  const records: RunRecord[] = [];
  const warnings: RecordWarning[] = [];
  for (const f of readdirSync(dir).filter((name) => name.endsWith('.json')).sort()) {
    const path = join(dir, f);
    const read = readRecord(path);
    if (typeof read === 'string') {
      warnings.push({ path, reason: read, message: `the run record ${path} cannot be read (${read}); it is left out (move it away or restore it)` });
    } else records.push(read);
  }
  records.sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : a.run < b.run ? -1 : 1));
  return { records, warnings };
}

/** The readable run records, oldest first (readRunRecords for the warnings about the others). */
export function listRunRecords(stateDir: string): RunRecord[] {
  return readRunRecords(stateDir).records;
}

/**
 * The run to roll back: the one named, else the latest deploy that changed something.
 * `read` lets a command that already read the records (to print their warnings) pass them.
 */
export function findDeployRecord(stateDir: string, id?: string, read: RunRecordsRead = readRunRecords(stateDir)): RunRecord {
  const { records, warnings } = read;
  if (id) {
    const found = records.find((r) => r.run === id);
    const unreadable = warnings.find((w) => w.path === join(runsDir(stateDir), `${id}.json`));
    if (!found && unreadable) throw new UsageError(`the run record ${unreadable.path} cannot be read (${unreadable.reason}), so run ${id} cannot be rolled back`);
    if (!found) throw new UsageError(`no run record ${id} in ${runsDir(stateDir)} (pem-settings runs lists them)`);
    if (found.kind !== 'deploy') throw new UsageError(`run ${id} is a ${found.kind}; only deploy runs can be rolled back`);
    return found;
  }
  const latest = records.filter((r) => r.kind === 'deploy').at(-1);
  if (!latest) throw new UsageError(`no deploy run is recorded in ${runsDir(stateDir)}: nothing to roll back`);
  return latest;
}

/** The record in the file, or why it is not one. Never quotes the file: say what is wrong, not what is there. */
function readRecord(path: string): RunRecord | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text.trim() === '' ? 'empty file' : 'not valid JSON: cut short or edited';
  }
  return isRunRecord(value) ? value : 'not a pem-settings run record (version 1)';
}

/** The fields rollback and runs rely on, so a wrong file is a warning here and not a crash there. */
function isRunRecord(v: unknown): v is RunRecord {
  if (!v || typeof v !== 'object') return false;
  const r = v as Partial<RunRecord>;
  const hostsOk = !!r.hosts && typeof r.hosts === 'object' && Object.values(r.hosts).every((h) =>
    !!h && Array.isArray(h.steps) && h.steps.every((s) => !!s && typeof s.stage === 'string' && typeof s.step === 'string' && typeof s.status === 'string'));
  return r.version === 1 && typeof r.run === 'string' && (r.kind === 'deploy' || r.kind === 'rollback') && typeof r.started === 'string' && hostsOk;
}

/** The steps of one host in one stage that recorded what they did, in order. */
export function recordedSteps(record: RunRecord, host: string, stage: string): StepReport[] {
  return (record.hosts[host]?.steps ?? []).filter((s) => s.stage === stage && s.record);
}

/**
 * The newest run (deploy or rollback) in which `host` ran a step `is` picks, with how it went:
 * for a step whose failure a later run must make up for (a restart that never completed).
 */
export function lastRunOfStep(records: RunRecord[], host: string, is: (step: StepReport) => boolean): { record: RunRecord; status: StepReport['status'] } | undefined {
  for (const record of [...records].reverse()) {
    const found = record.hosts[host]?.steps.find(is);
    if (found) return { record, status: found.status };
  }
  return undefined;
}
