// What deploy and rollback share: validate everything before connecting, run the stages with
// the right output, then write the recap, the run record and the retry file.

import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { ProblemsError, UsageError } from '../errors.ts';
import { loadInventory, resolveAll, selectHosts, type Inventory, type ResolvedHost } from '../inventory/index.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { progressFor } from '../output/progress.ts';
import { buildRunRecord, ensureRecordsWritable, inventoryChecksum, stateDirFor, writeRunRecord, type RunRecord } from '../records.ts';
import { runStages, type HostRecap, type Stage } from '../runner.ts';
import { redact, redactDeep } from '../secrets.ts';
import { hostAccess, type HostAccess } from '../targets.ts';
import { desiredUri } from '../../tasks/deploy.ts';
import { readJobSettings, readSecrets, type JobSettings, type Secrets } from '../../tasks/settings.ts';

export interface JobOptions {
  inventory: string;
  limit?: string;
  check?: boolean;
  diff?: boolean;
  forks: string;
  json?: boolean;
  keepGoing?: boolean;
  acceptNewHostKeys?: boolean;
  allowWeakPassword?: boolean;
  connectTimeout: string;
  stateDir?: string;
}

export interface Prepared {
  inventory: Inventory;
  resolved: Map<string, ResolvedHost>;
  settings: JobSettings;
  secrets: Secrets;
  /** Selected hosts of the job, in inventory order. */
  hosts: string[];
  access: Map<string, HostAccess>;
  forks: number;
  stateDir: string;
}

/** Everything checked before any connection: flags, inventory, variables, secrets (STYLE 8). */
export function prepare(opts: JobOptions, { passwordOptional = false } = {}): Prepared {
  const forks = positive(opts.forks, '--forks');
  const timeout = positive(opts.connectTimeout, '--connect-timeout');
  const inventory = loadInventory(opts.inventory);
  const resolved = new Map(resolveAll(inventory).map((h) => [h.name, h]));
  const settings = readJobSettings(inventory, resolved);
  const secrets = readSecrets(opts.inventory, { allowWeakPassword: Boolean(opts.allowWeakPassword), optional: passwordOptional });
  if (!passwordOptional) desiredUri(settings, secrets.password); // a URI the web app could not take is bad input: exit 2 before connecting
  const selected = opts.limit ? selectHosts(inventory, opts.limit) : [...inventory.hosts.keys()];
  const jobHosts = new Set([...settings.backends.map((b) => b.name), ...settings.webhosts.map((w) => w.name)]);
  const hosts = selected.filter((h) => jobHosts.has(h));
  if (hosts.length === 0) throw new UsageError(`--limit "${opts.limit}" selects no host of [backends] or [webhosts]`);
  const problems: Error[] = [];
  const access = new Map<string, HostAccess>();
  for (const h of hosts) {
    const a = hostAccess(resolved.get(h)!, {
      inventoryFile: opts.inventory, acceptNewHostKeys: Boolean(opts.acceptNewHostKeys), connectTimeoutMs: timeout * 1000,
      ...(secrets.becomePassword ? { becomePassword: secrets.becomePassword } : {}),
    }, problems);
    if (a) access.set(h, a);
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length) throw new ProblemsError(problems);
  const stateDir = stateDirFor(opts.inventory, opts.stateDir);
  if (!opts.check) ensureRecordsWritable(stateDir);
  return { inventory, resolved, settings, secrets, hosts, access, forks, stateDir };
}

export interface ExecuteOptions {
  kind: RunRecord['kind'];
  runId: string;
  /** For a rollback: the run it undoes. */
  of?: string;
  title: string;
}

/** Runs the stages, prints the outcome, writes the run record and the retry file; returns the exit status. */
export async function execute(opts: JobOptions, prepared: Prepared, connections: Connections, stages: Stage[], exec: ExecuteOptions, io: Io): Promise<number> {
  // Everything written passes through redact: a last guard that no secret reaches the screen.
  const secretList = [prepared.secrets.password, ...(prepared.secrets.becomePassword ? [prepared.secrets.becomePassword] : [])];
  const out = (text: string) => io.stdout(redact(text, secretList));
  const progress = progressFor({ json: opts.json, isTTY: io.isTTY, stages: stages.map((s) => s.name), write: out });
  const started = new Date().toISOString();
  // Ctrl-C: start nothing new, let the steps in flight finish (each is atomic on its host), then
  // record what was done. A second Ctrl-C abandons them: the connections close, and every
  // remote write is a rename of a finished temporary file, so nothing is left half-written.
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
  let outcome;
  let stats: Record<string, unknown> = {};
  const t0 = performance.now();
  try {
    if (!opts.json) out(`pem-settings ${exec.title} ${opts.check ? '(check mode: nothing will be changed) ' : ''}run ${exec.runId}\n`);
    outcome = await runStages(stages, {
      check: Boolean(opts.check), forks: prepared.forks, keepGoing: Boolean(opts.keepGoing), onEvent: progress.onEvent, interrupted: () => interrupted,
    });
  } finally {
    process.off('SIGINT', onSigint);
    await progress.finish();
    stats = { elapsedMs: Math.round(performance.now() - t0), hosts: await connections.statsByHost() };
    await connections.closeAll();
  }

  let recordPath: string | undefined;
  if (!opts.check) {
    const record = buildRunRecord({
      run: exec.runId, kind: exec.kind, ...(exec.of ? { of: exec.of } : {}), started, finished: new Date().toISOString(),
      inventory: { path: resolve(opts.inventory), sha256: inventoryChecksum(opts.inventory) }, limit: opts.limit ?? null,
      ...(interrupted ? { interrupted: true } : {}),
    }, outcome.hosts);
    // Step messages may quote what a host printed: the record gets the same guard as the screen.
    if (record) recordPath = writeRunRecord(prepared.stateDir, redactDeep(record, secretList));
  }
  const failed = [...outcome.hosts].filter(([, r]) => r.failed > 0 || r.unreachable).map(([h]) => h);
  let retryFile: string | undefined;
  if (failed.length) {
    retryFile = resolve(dirname(opts.inventory), `${opts.inventory.replace(/^.*\//, '').replace(/\.[^.]*$/, '')}.retry`);
    writeFileSync(retryFile, failed.join('\n') + '\n');
  }
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
    if (interrupted) out('\nInterrupted: the run stopped early; run it again to finish.\n');
  }
  if (interrupted) return 130;
  return failed.length ? 1 : 0;
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

function positive(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} must be a positive number, got "${text}"`);
  return Number(text);
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}
