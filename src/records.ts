// Run records (SPEC 6): one JSON file per run that changed something, in a state directory
// beside the inventory (or --state-dir). They hold what rollback needs — paths, backups,
// checksums, catalog changes — and never a secret: only the steps' summaries and records.

import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

export function writeRunRecord(stateDir: string, record: RunRecord): string {
  const dir = runsDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${record.run}.json`);
  writeFileSync(path, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  return path;
}

export function listRunRecords(stateDir: string): RunRecord[] {
  const dir = runsDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => readRecord(join(dir, f)))
    .sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : a.run < b.run ? -1 : 1));
}

/** The run to roll back: the one named, else the latest deploy that changed something. */
export function findDeployRecord(stateDir: string, id?: string): RunRecord {
  const records = listRunRecords(stateDir);
  if (id) {
    const found = records.find((r) => r.run === id);
    if (!found) throw new UsageError(`no run record ${id} in ${runsDir(stateDir)} (pem-settings runs lists them)`);
    if (found.kind !== 'deploy') throw new UsageError(`run ${id} is a ${found.kind}; only deploy runs can be rolled back`);
    return found;
  }
  const latest = records.filter((r) => r.kind === 'deploy').at(-1);
  if (!latest) throw new UsageError(`no deploy run is recorded in ${runsDir(stateDir)}: nothing to roll back`);
  return latest;
}

function readRecord(path: string): RunRecord {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as RunRecord;
    if (r.version !== 1 || typeof r.run !== 'string') throw new Error('not a pem-settings run record');
    return r;
  } catch (e) {
    throw new UsageError(`cannot read the run record ${path}: ${(e as Error).message}`);
  }
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
