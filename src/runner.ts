// Stages in order, hosts within a stage concurrently (bounded by --forks). Each host's plan is
// read-and-compute only; the one check-mode guard lives here: a change is applied only when it
// changes something and we are not in check mode (STYLE 3).

import type { Applied, ApplyLog, Change, StepRecord, StepStatus } from './change.ts';
import { HostError, UnreachableError } from './errors.ts';
import { forEachLimited } from './pool.ts';
import { tooManyFailures } from './rollout.ts';

export interface HostPlan {
  changes: Change[];
  /**
   * Applies the changes that change something, in order, saying in `log` what each did as soon
   * as it is done. Throws HostError on failure.
   */
  apply?(changed: Change[], log: ApplyLog): Promise<void>;
}

export interface Stage {
  name: string;
  hosts: string[];
  plan(host: string): Promise<HostPlan>;
  /** An unreachable host stops the run after this stage when this says so (e.g. a backend). */
  unreachableStopsRun?(host: string): boolean;
  /**
   * Called when every host of the stage is done, before the next stage: a place to check what
   * the hosts together must satisfy (exactly one primary). Throwing ends the run there.
   */
  after?(): void;
  /** A rolling stage: its hosts in batches; a batch with too many failures stops it. */
  rollout?: Rollout;
}

export interface Rollout {
  /** The batches, in order (every host of the stage in exactly one). */
  batches(hosts: string[]): Promise<string[][]>;
  maxFailPercentage: number;
  /** Batches that stop the rollout on any failure (a first host that bootstraps a schema). */
  mustSucceed?: number[];
}

export type { StepRecord } from './change.ts';

export interface StepReport {
  stage: string;
  /** The step's stable id (see Change.id); absent on the runner's own "skipped" lines. */
  id?: string;
  step: string;
  status: StepStatus;
  message: string;
  warnings?: string[];
  /** Set when the step changed something on the host (not in check mode). */
  record?: StepRecord;
}

export interface HostRecap {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: boolean;
  steps: StepReport[];
  /** The changes as planned (for --diff, run records). */
  changes: Change[];
  /** Left untouched by a rollout that stopped: to be run again (the retry file lists it). */
  retry?: boolean;
}

export type RunEvent =
  | { kind: 'stage-start'; stage: string; hosts: string[] }
  | { kind: 'step'; host: string; report: StepReport }
  | { kind: 'host-end'; stage: string; host: string; recap: HostRecap }
  | { kind: 'stage-end'; stage: string; stopsRun: boolean };

export interface RunnerOptions {
  check: boolean;
  forks: number;
  keepGoing: boolean;
  onEvent?: (event: RunEvent) => void;
  /** Checked before each host starts: true once the operator interrupted the run. */
  interrupted?: () => boolean;
}

export interface RunOutcome {
  hosts: Map<string, HostRecap>;
  /** The stage after which the run stopped early, if it did. */
  stoppedAfter?: string;
}

export function emptyRecap(): HostRecap {
  return { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: false, steps: [], changes: [] };
}

export async function runStages(stages: Stage[], options: RunnerOptions): Promise<RunOutcome> {
  const hosts = new Map<string, HostRecap>();
  const recapOf = (host: string) => {
    let r = hosts.get(host);
    if (!r) hosts.set(host, (r = emptyRecap()));
    return r;
  };
  const emit = options.onEvent ?? (() => {});
  const report = (host: string, step: StepReport) => {
    const r = recapOf(host);
    r.steps.push(step);
    r[step.status]++;
    emit({ kind: 'step', host, report: step });
  };

  let stoppedAfter: string | undefined;
  for (const [index, stage] of stages.entries()) {
    if (stoppedAfter) {
      for (const host of stage.hosts) report(host, { stage: stage.name, step: stage.name, status: 'skipped', message: `not run: the run stopped after the ${stoppedAfter} stage` });
      continue;
    }
    emit({ kind: 'stage-start', stage: stage.name, hosts: stage.hosts });
    let stops = false;
    const runOne = async (host: string) => {
      const recap = recapOf(host);
      if (recap.failed > 0 || recap.unreachable) {
        report(host, { stage: stage.name, step: stage.name, status: 'skipped', message: 'not run: this host failed in an earlier stage' });
      } else if (options.interrupted?.()) {
        report(host, { stage: stage.name, step: stage.name, status: 'skipped', message: 'not run: interrupted' });
        stops = true;
      } else {
        const ok = await runHost(stage, host, options, report, recap);
        if (!ok && !(recap.unreachable && !stage.unreachableStopsRun?.(host))) stops = true;
      }
      emit({ kind: 'host-end', stage: stage.name, host, recap });
    };
    if (stage.rollout) {
      if (await runRollout(stage, stage.rollout, options, runOne, recapOf, report)) stops = true;
    } else await forEachLimited(stage.hosts, options.forks, runOne);
    emit({ kind: 'stage-end', stage: stage.name, stopsRun: stops });
    stage.after?.();
    if (stops && !options.keepGoing && index < stages.length - 1) stoppedAfter = stage.name;
    if (options.interrupted?.() && index < stages.length - 1) stoppedAfter ??= stage.name;
  }
  return { hosts, stoppedAfter };
}

/** A rolling stage, batch by batch; true when it stopped early (the hosts left are marked for retry). */
async function runRollout(stage: Stage, rollout: Rollout, options: RunnerOptions, runOne: (host: string) => Promise<void>,
  recapOf: (host: string) => HostRecap, report: (host: string, step: StepReport) => void): Promise<boolean> {
  const batches = await rollout.batches(stage.hosts);
  for (const [index, batch] of batches.entries()) {
    await forEachLimited(batch, options.forks, runOne);
    const failed = batch.filter((h) => recapOf(h).failed > 0 || recapOf(h).unreachable).length;
    const must = rollout.mustSucceed?.includes(index) ?? false;
    if (failed === 0 || (!must && !tooManyFailures(failed, batch.length, rollout.maxFailPercentage))) continue;
    const why = must ? `the rollout stopped: ${batch.join(', ')} had to succeed first` : `the rollout stopped after batch ${index + 1}: ${failed} of ${batch.length} failed (--max-fail-percentage ${rollout.maxFailPercentage})`;
    for (const host of batches.slice(index + 1).flat()) {
      report(host, { stage: stage.name, step: stage.name, status: 'skipped', message: `not run: ${why}` });
      recapOf(host).retry = true;
    }
    return true;
  }
  return false;
}

async function runHost(stage: Stage, host: string, options: RunnerOptions,
  report: (host: string, step: StepReport) => void, recap: HostRecap): Promise<boolean> {
  const check = options.check;
  let plan: HostPlan;
  try {
    plan = await stage.plan(host);
  } catch (e) {
    fail(stage.name, host, e, report, recap);
    return false;
  }
  recap.changes.push(...plan.changes);
  const changed = plan.changes.filter((c) => c.changed);
  const done = new Map<string, Applied>();
  if (!check && changed.length > 0 && options.interrupted?.()) {
    // Read but not yet written: after Ctrl-C no new change starts.
    for (const c of plan.changes) report(host, c.changed ? { ...stepOf(stage.name, c, 'skipped'), message: `not applied: interrupted (${c.summary})` } : stepOf(stage.name, c, 'ok'));
    return false;
  }
  if (!check && changed.length > 0 && plan.apply) {
    try {
      await plan.apply(changed, { done: (id, applied = {}) => done.set(id, applied) });
    } catch (e) {
      // Report what is known: unchanged steps ok, steps that were applied before the failure changed.
      for (const c of plan.changes) {
        if (!c.changed) report(host, stepOf(stage.name, c, 'ok'));
        else if (done.has(c.id)) report(host, stepOf(stage.name, c, 'changed', done.get(c.id)));
      }
      fail(stage.name, host, e, report, recap);
      return false;
    }
  }
  for (const c of plan.changes) report(host, stepOf(stage.name, c, c.changed ? 'changed' : 'ok', done.get(c.id)));
  return true;
}

function stepOf(stage: string, c: Change, status: StepStatus, applied: Applied = {}): StepReport {
  const warnings = [...(c.warnings ?? []), ...(applied.warnings ?? [])];
  const record: StepRecord | undefined = applied.record;
  return {
    stage, id: c.id, step: c.step, status, message: applied.summary ?? c.summary,
    ...(warnings.length ? { warnings } : {}),
    ...(record ? { record } : {}),
  };
}

/** What an error thrown by a host's step says in the recap; `unreachable` apart from `failed`. */
export function failureOf(stage: string, e: unknown): { step: StepReport; unreachable: boolean } {
  if (e instanceof HostError) {
    return {
      step: { stage, step: e.step, status: 'failed', message: e.reason + (e.hint ? ` (${e.hint})` : '') },
      unreachable: e instanceof UnreachableError,
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { step: { stage, step: stage, status: 'failed', message: `unexpected error: ${message}` }, unreachable: false };
}

function fail(stage: string, host: string, e: unknown, report: (host: string, step: StepReport) => void, recap: HostRecap): void {
  const { step, unreachable } = failureOf(stage, e);
  report(host, step);
  if (unreachable) {
    recap.unreachable = true;
    recap.failed--; // unreachable is counted apart from failed, as in Ansible's recap
  }
}
