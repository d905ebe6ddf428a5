// What deploy and rollback share once prepared: take the locks and read the facts, run the
// stages with the right output, then write the recap, the run record and the retry file.

import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { Connections } from '../connections.ts';
import type { Io } from '../io.ts';
import type { Plan } from '../job.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { progressFor } from '../output/progress.ts';
import { buildRunRecord, inventoryChecksum, RecordWriteError, writeRunRecord, type RunRecord } from '../records.ts';
import { runStages, type HostRecap, type RunOutcome, type Stage } from '../runner.ts';
import { mapStrings, maskSecretsInText, redact, redactDeep } from '../secrets.ts';
import { lockHolder, type CommonOptions, type Prepared } from './prepare.ts';

export interface ExecuteOptions {
  kind: RunRecord['kind'];
  runId: string;
  /** For a rollback: the run it undoes. */
  of?: string;
  title: string;
}

/** The run's connections: locks held under this run's id, waits told to the operator. */
export function connectionsFor(prepared: Prepared, runId: string, notify: (text: string) => void): Connections {
  return new Connections(prepared.access, { runId, holder: lockHolder(), waitSec: prepared.lockTimeoutSec, notify });
}

export interface Output {
  /** Writes to standard output through redact: a last guard that no secret reaches the screen. */
  out(text: string): void;
  /** A line for the operator while the run goes on. */
  notify(text: string): void;
  /** Masks one more secret from now on. */
  mask(secret: string): void;
  secrets: string[];
}

export function outputFor(io: Io, prepared: Prepared): Output {
  const secrets = [...prepared.job.secrets, ...(prepared.job.becomePassword ? [prepared.job.becomePassword] : [])];
  // The run's own passwords in every form they travel in, then anything shaped like a secret
  // that a host printed (a restart that echoes MAIL_PASSWORD, a URI with a password).
  const out = (text: string) => io.stdout(maskSecretsInText(redact(text, secrets)));
  return { out, notify: (text) => out(`pem-settings: ${text}\n`), mask: (s) => void (s && secrets.push(s)), secrets };
}

/** Runs the plan, prints the outcome, writes the run record and the retry file; returns the exit status. */
export async function execute(opts: CommonOptions, prepared: Prepared, connections: Connections, plan: Plan<Stage>, exec: ExecuteOptions,
  io: Io, output: Output): Promise<number> {
  const { out } = output;
  const started = new Date().toISOString();
  const interrupt = onInterrupt(io, connections);
  let outcome: RunOutcome;
  let stats: Record<string, unknown> = {};
  const t0 = performance.now();
  const progress = progressFor({ json: opts.json, isTTY: io.isTTY, stages: plan.stages.map((s) => s.name), write: out });
  try {
    if (!opts.json) out(`pem-settings ${exec.title} ${opts.check ? '(check mode: nothing will be changed) ' : ''}run ${exec.runId}\n`);
    await connections.openAll(plan.openings, prepared.forks);
    outcome = await runStages(plan.stages, {
      check: Boolean(opts.check), forks: prepared.forks, keepGoing: Boolean(opts.keepGoing), onEvent: progress.onEvent, interrupted: interrupt.interrupted,
    });
  } finally {
    interrupt.stop();
    await progress.finish();
    stats = { elapsedMs: Math.round(performance.now() - t0), hosts: await connections.statsByHost() };
    await connections.closeAll();
  }
  let recordPath: string | undefined;
  try {
    recordPath = opts.check ? undefined : keepRecord(opts, prepared, exec, started, outcome, interrupt.interrupted(), output.secrets);
  } catch (e) {
    // Changes were made and cannot be recorded: say what they were, so they can be undone by hand.
    if (!(e instanceof RecordWriteError)) throw e;
    out(renderRecap(outcome.hosts));
    io.stderr(`pem-settings: ${redact(e.message, output.secrets)}\n`);
    return 1;
  }
  const retryFile = writeRetryFile(opts.inventory, outcome.hosts);
  if (opts.json) {
    out(recapJson(exec.runId, outcome.hosts, {
      kind: exec.kind, check: Boolean(opts.check), ...(exec.of ? { of: exec.of } : {}),
      ...(recordPath ? { record: recordPath } : {}), ...(retryFile ? { retry_file: retryFile } : {}),
      stats: { ...stats, maxRssKb: process.resourceUsage().maxRSS },
    }));
  } else {
    if (opts.diff) out(renderDiffs(outcome.hosts));
    out(renderRecap(outcome.hosts));
    if (outcome.stoppedAfter) out(`\nThe run stopped after the ${outcome.stoppedAfter} stage (a host failed there); later stages were not run.\n`);
    if (recordPath) out(`\nRun record: ${recordPath}\n`);
    if (retryFile) out(`\nTo retry the failed hosts: --limit @${retryFile}\n`);
    if (interrupt.interrupted()) out('\nInterrupted: the run stopped early; run it again to finish.\n');
  }
  if (interrupt.interrupted()) return 130;
  return retryFile ? 1 : 0;
}

/**
 * Ctrl-C: start nothing new, let the steps in flight finish (each is atomic on its host), then
 * record what was done. A second Ctrl-C abandons them: the connections close, and every remote
 * write is a rename of a finished temporary file, so nothing is left half-written.
 */
function onInterrupt(io: Io, connections: Connections): { interrupted: () => boolean; stop: () => void } {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      io.stderr('pem-settings: interrupted again: abandoning the steps in flight\n');
      void connections.closeAll().finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    io.stderr('\npem-settings: interrupted: finishing the steps in flight, starting no new ones (Ctrl-C again to abandon them)\n');
  };
  process.on('SIGINT', onSigint);
  return { interrupted: () => interrupted, stop: () => process.off('SIGINT', onSigint) };
}

function keepRecord(opts: CommonOptions, prepared: Prepared, exec: ExecuteOptions, started: string, outcome: RunOutcome, interrupted: boolean,
  secrets: string[]): string | undefined {
  const record = buildRunRecord({
    run: exec.runId, kind: exec.kind, ...(exec.of ? { of: exec.of } : {}), started, finished: new Date().toISOString(),
    inventory: { path: resolve(opts.inventory), sha256: inventoryChecksum(opts.inventory) }, limit: opts.limit ?? null,
    ...(interrupted ? { interrupted: true } : {}),
  }, outcome.hosts);
  // Step messages may quote what a host printed: the record gets the same guard as the screen.
  return record ? writeRunRecord(prepared.stateDir, mapStrings(redactDeep(record, secrets), (text) => maskSecretsInText(text))) : undefined;
}

/** `<inventory>.retry` beside the inventory, listing the hosts that failed; usable as --limit @file. */
function writeRetryFile(inventory: string, hosts: Map<string, HostRecap>): string | undefined {
  const failed = [...hosts].filter(([, r]) => r.failed > 0 || r.unreachable || r.retry).map(([h]) => h);
  if (failed.length === 0) return undefined;
  const file = resolve(dirname(inventory), `${inventory.replace(/^.*\//, '').replace(/\.[^.]*$/, '')}.retry`);
  writeFileSync(file, failed.join('\n') + '\n');
  return file;
}

function renderDiffs(hosts: Map<string, HostRecap>): string {
  const parts: string[] = [];
  for (const [host, r] of hosts) {
    for (const c of r.changes.filter((c) => c.changed)) {
      // Diffs arrive with their secrets masked by the task that knows the file (Change.diff).
      if (c.diff) parts.push(`--- ${host}: ${c.step}\n` + createTwoFilesPatch(c.diff.path, c.diff.path, c.diff.before, c.diff.after, 'before', 'after'));
      if (c.sql?.length) parts.push(`--- ${host}: ${c.step} (SQL)\n${c.sql.join('\n')}\n`);
    }
  }
  return parts.length ? `\nDIFF\n${parts.join('\n')}` : '';
}
