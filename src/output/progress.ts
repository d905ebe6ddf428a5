// Which progress display a run gets: none with --json, the listr2 tree on a terminal, plain
// lines otherwise (logs, CI). Deploy, rollback and verify all show progress through this.

import type { RunEvent } from '../runner.ts';
import { plainReporter } from './plain.ts';
import { treeReporter } from './tree.ts';

export interface Progress {
  onEvent(event: RunEvent): void;
  /** Resolves once the display is complete (the tree drawn to its end). */
  finish(): Promise<void>;
}

export function progressFor(opts: { json?: boolean; isTTY: boolean; stages: string[]; write: (text: string) => void }): Progress {
  if (opts.json) return { onEvent: () => {}, finish: async () => {} };
  if (opts.isTTY) return treeReporter(opts.stages);
  return { onEvent: plainReporter(opts.write), finish: async () => {} };
}
