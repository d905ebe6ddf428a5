// `pem-settings runs`: the recorded runs, oldest first, and which rollback undid which deploy.

import type { Io } from '../io.ts';
import { readRunRecords, stateDirFor, runsDir } from '../records.ts';

export async function runsCommand(opts: { inventory: string; stateDir?: string; json?: boolean }, io: Io): Promise<number> {
  const dir = stateDirFor(opts.inventory, opts.stateDir);
  const { records, warnings } = readRunRecords(dir);
  // A damaged record is named on stderr; the others are still listed.
  for (const w of warnings) io.stderr(`pem-settings: warning: ${w.message}\n`);
  if (opts.json) {
    io.stdout(JSON.stringify({ runs: records }, null, 2) + '\n');
    return 0;
  }
  if (records.length === 0) {
    io.stdout(`no runs recorded in ${runsDir(dir)}\n`);
    return 0;
  }
  const undone = new Map(records.filter((r) => r.kind === 'rollback' && r.of).map((r) => [r.of!, r.run]));
  io.stdout('RUN                     KIND      STARTED                   HOSTS  LIMIT  NOTE\n');
  for (const r of records) {
    const changed = Object.values(r.hosts).filter((h) => h.steps.some((s) => s.status === 'changed')).length;
    const failed = Object.values(r.hosts).some((h) => h.steps.some((s) => s.status === 'failed'));
    const note = [r.kind === 'rollback' ? `undoes ${r.of}` : '', undone.has(r.run) ? `rolled back by ${undone.get(r.run)}` : '',
      failed ? 'some steps failed' : '', r.interrupted ? 'interrupted' : ''].filter(Boolean).join('; ');
    io.stdout(`${r.run.padEnd(24)}${r.kind.padEnd(10)}${r.started.padEnd(26)}${String(changed).padEnd(7)}${(r.limit ?? '-').padEnd(7)}${note}\n`);
  }
  return 0;
}
