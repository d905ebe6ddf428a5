// A runner for checks: the deploy runner's stages → hosts → steps, its events and recaps (so the
// plain lines, the task tree, the recap and --json are the same code), but a step's outcome is
// a verdict (ok / failed / skipped) reported as soon as it is known, and nothing is applied.

import { forEachLimited } from './pool.ts';
import { emptyRecap, failureOf, type HostRecap, type RunEvent, type StepReport } from './runner.ts';
/** A check's outcome: ok, failed or skipped, with what the operator should read. */
export interface Verdict {
  status: 'ok' | 'failed' | 'skipped';
  message: string;
  warnings?: string[];
}

export type Report = (step: string, verdict: Verdict) => void;

export interface CheckStage {
  name: string;
  hosts: string[];
  /** Reports each step as it is decided; throws HostError when the host cannot be checked further. */
  check(host: string, report: Report): Promise<void>;
}

export interface CheckOptions {
  forks: number;
  onEvent?: (event: RunEvent) => void;
}

export async function runChecks(stages: CheckStage[], options: CheckOptions): Promise<Map<string, HostRecap>> {
  const hosts = new Map<string, HostRecap>();
  const emit = options.onEvent ?? (() => {});
  for (const stage of stages) {
    emit({ kind: 'stage-start', stage: stage.name, hosts: stage.hosts });
    await forEachLimited(stage.hosts, options.forks, async (host) => {
      let recap = hosts.get(host);
      if (!recap) hosts.set(host, (recap = emptyRecap()));
      const add = (step: StepReport, counts = true) => {
        recap.steps.push(step);
        if (counts) recap[step.status]++;
        emit({ kind: 'step', host, report: step });
      };
      const report: Report = (step, v) => add({ stage: stage.name, step, status: v.status, message: v.message, ...(v.warnings?.length ? { warnings: v.warnings } : {}) });
      if (recap.unreachable) {
        add({ stage: stage.name, step: stage.name, status: 'skipped', message: 'not run: this host was unreachable' });
      } else {
        try {
          await stage.check(host, report);
        } catch (e) {
          const { step, unreachable } = failureOf(stage.name, e);
          // Unreachable is counted apart from failed, as in Ansible's recap.
          if (unreachable) recap.unreachable = true;
          add(step, !unreachable);
        }
      }
      emit({ kind: 'host-end', stage: stage.name, host, recap });
    });
    // Checks never stop the run: every problem is worth seeing at once.
    emit({ kind: 'stage-end', stage: stage.name, stopsRun: false });
  }
  return hosts;
}
