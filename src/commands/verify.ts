// `pem-settings verify` (SPEC 2, 5): validate everything, then check every selected host and
// report; nothing on any host is changed. Exit 0 only when every check holds.

import { runChecks } from '../checks.ts';
import type { Io } from '../io.ts';
import type { Job } from '../job.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { progressFor } from '../output/progress.ts';
import { connectionsFor, outputFor } from './execute.ts';
import { loginOf, newRunId, prepare, type CommonOptions } from './prepare.ts';

export async function verifyCommand(job: Job, opts: CommonOptions, io: Io): Promise<number> {
  // The same validation as deploy and rollback (exit 2, nothing contacted).
  const prepared = prepare(job, 'verify', { ...opts, check: true });
  // Every byte written passes through redact; the URIs read from the hosts may carry other
  // passwords than the job's, and the checks mask those where they quote a URI.
  const { out, notify, mask } = outputFor(io, prepared);
  const runId = newRunId();
  const connections = connectionsFor(prepared, runId, notify);
  const plan = prepared.job.verify({
    runId, connections, selected: prepared.hosts, login: loginOf(prepared), records: [], check: true, timeoutMs: Number(opts.connectTimeout) * 1000, notify, mask,
  });
  const progress = progressFor({ json: opts.json, isTTY: io.isTTY, stages: plan.stages.map((s) => s.name), write: out });
  let recaps;
  try {
    if (!opts.json) out(`pem-settings verify (changes nothing) run ${runId}\n`);
    await connections.openAll(plan.openings, prepared.forks);
    recaps = await runChecks(plan.stages, { forks: prepared.forks, onEvent: progress.onEvent });
  } finally {
    await progress.finish();
    await connections.closeAll();
  }
  const failed = [...recaps].filter(([, r]) => r.failed > 0 || r.unreachable).map(([h]) => h);
  if (opts.json) out(recapJson(runId, recaps, { command: 'verify', ok: failed.length === 0 }));
  else {
    out(renderRecap(recaps));
    out(failed.length ? `\nverify: ${failed.length} host(s) failed: ${failed.join(', ')}\n` : '\nverify: every check holds\n');
  }
  return failed.length ? 1 : 0;
}
