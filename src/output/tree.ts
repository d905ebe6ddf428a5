// The live task tree on a terminal (listr2): stage → host → step. It only observes the runner's
// events; the runner does the work, so the terminal and the plain output tell the same story.

import { Listr } from 'listr2';

// listr2's task wrapper generics do not survive being stored in a map; the tree only sets titles and output.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TaskWrapper = any;
import type { HostRecap, RunEvent } from '../runner.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export function treeReporter(stageNames: string[]): { onEvent: (event: RunEvent) => void; finish: () => Promise<void> } {
  const started = new Map(stageNames.map((s) => [s, deferred<string[] | undefined>()]));
  const hostEnds = new Map<string, Deferred<HostRecap>>();
  const hostTasks = new Map<string, TaskWrapper>();
  const key = (stage: string, host: string) => `${stage}\u0000${host}`;
  const hostEnd = (stage: string, host: string) => {
    let d = hostEnds.get(key(stage, host));
    if (!d) hostEnds.set(key(stage, host), (d = deferred()));
    return d;
  };

  const listr = new Listr(
    stageNames.map((stage) => ({
      title: stage,
      task: async (_ctx: unknown, task: TaskWrapper) => {
        const hosts = await started.get(stage)!.promise;
        if (!hosts) return task.skip(`${stage}: not run`);
        return task.newListr(
          hosts.map((host) => ({
            title: host,
            task: async (_c: unknown, hostTask: TaskWrapper) => {
              hostTasks.set(key(stage, host), hostTask);
              const recap = await hostEnd(stage, host).promise;
              const mine = recap.steps.filter((s) => s.stage === stage);
              const changed = mine.filter((s) => s.status === 'changed').length;
              const failed = mine.find((s) => s.status === 'failed');
              if (failed) throw new Error(`${host}: ${failed.step}: ${failed.message}`);
              if (mine.every((s) => s.status === 'skipped')) return hostTask.skip(`${host}: skipped`);
              hostTask.title = `${host}: ${changed ? `changed=${changed}` : 'ok'}`;
            },
          })),
          { concurrent: true, exitOnError: false },
        );
      },
    })),
    { concurrent: false, exitOnError: false, renderer: 'default', rendererOptions: { collapseSubtasks: false } },
  );
  const done = listr.run().then(() => undefined, () => undefined);

  const onEvent = (event: RunEvent) => {
    if (event.kind === 'stage-start') started.get(event.stage)?.resolve(event.hosts);
    if (event.kind === 'step') {
      const task = hostTasks.get(key(event.report.stage, event.host));
      if (task) task.output = `${event.report.step}: ${event.report.status}`;
    }
    if (event.kind === 'host-end') hostEnd(event.stage, event.host).resolve(event.recap);
  };
  /** Stages the run never reached are shown as not run; resolves when the tree is drawn. */
  const finish = async () => {
    for (const d of started.values()) d.resolve(undefined);
    await done;
  };
  return { onEvent, finish };
}
