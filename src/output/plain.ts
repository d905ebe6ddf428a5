// Plain progress lines for logs and CI (not a terminal): one line per step, as it is known.

import type { RunEvent } from '../runner.ts';

export function plainReporter(write: (text: string) => void): (event: RunEvent) => void {
  return (event) => {
    if (event.kind === 'stage-start') write(`== ${event.stage} (${event.hosts.length} host${event.hosts.length === 1 ? '' : 's'})\n`);
    if (event.kind === 'step') {
      const { stage, step, status, message, warnings } = event.report;
      write(`[${stage}] ${event.host}: ${step}: ${status}${message ? ` - ${message}` : ''}\n`);
      for (const w of warnings ?? []) write(`[${stage}] ${event.host}: WARNING: ${w}\n`);
    }
    if (event.kind === 'stage-end' && event.stopsRun) write(`== ${event.stage}: failed on some host\n`);
  };
}
