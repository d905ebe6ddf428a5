// Rolling back pg_hba.conf on a backend (SPEC 6): exactly the lines the run added are removed,
// if they are still there, with deploy's own writer (check, backup, validate, reload).

import type { Change } from '../../src/change.ts';
import { HostError } from '../../src/errors.ts';
import type { HbaRecord } from '../deploy/pg-hba.ts';
import type { BackendFacts } from '../facts/backend.ts';
import type { HbaWrite } from '../files/hba.ts';
import { bytesAsText, displayText, textAsBytes } from '../files/text.ts';
import { maskHbaSecrets, removeRuleLine } from '../pg-hba/plan.ts';
import { STEP } from '../steps.ts';

export interface HbaRollbackPlan {
  change: Change;
  write?: HbaWrite;
  removed: string[];
}

/** Pure: the run's record and the file's bytes now in, the lines to take out. */
export function planHbaRollback(host: string, r: HbaRecord, f: BackendFacts): HbaRollbackPlan {
  if (f.hbaFile !== r.file) throw new HostError(host, 'pg_hba.conf rule', `the server's hba_file is now ${f.hbaFile}; the run changed ${r.file}`, 'remove the rule by hand');
  let text = bytesAsText(f.hba);
  const removed: string[] = [];
  for (const line of r.added) {
    const result = removeRuleLine(text, line);
    if (result.removed) removed.push(line);
    text = result.newText;
  }
  const after = textAsBytes(text);
  const change: Change = {
    host, stage: 'pg_hba', id: STEP.hbaRule, step: 'pg_hba.conf rule', target: r.file, changed: removed.length > 0,
    summary: removed.length ? `remove ${removed.map((l) => `"${l}"`).join(', ')}; reload` : 'the rule the run added is gone already',
    ...(removed.length ? { diff: { path: r.file, before: maskHbaSecrets(displayText(f.hba)), after: maskHbaSecrets(displayText(after)) } } : {}),
  };
  const write: HbaWrite | undefined = removed.length
    ? { hbaFile: r.file, before: f.hba, beforeSha256: f.hbaSha256, after, addedLines: [], serverMajor: Math.floor(f.serverVersionNum / 10000) }
    : undefined;
  return { change, ...(write ? { write } : {}), removed };
}
