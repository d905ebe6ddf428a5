// `pem-settings deploy`: validate everything, then run the stages and report (SPEC 2, 4).

import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { ProblemsError, UsageError } from '../errors.ts';
import { loadInventory, resolveAll, selectHosts } from '../inventory/index.ts';
import { plainReporter } from '../output/plain.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { treeReporter } from '../output/tree.ts';
import { runStages, type HostRecap, type RunEvent } from '../runner.ts';
import { redact } from '../secrets.ts';
import { hostAccess, type HostAccess } from '../targets.ts';
import { deployStages, desiredUri } from '../../tasks/deploy.ts';
import { maskHbaSecrets } from '../../tasks/pg-hba/plan.ts';
import { readJobSettings, readSecrets } from '../../tasks/settings.ts';

export interface DeployOptions {
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
}

export async function deployCommand(opts: DeployOptions, io: Io): Promise<number> {
  const forks = positive(opts.forks, '--forks');
  const timeout = positive(opts.connectTimeout, '--connect-timeout');
  const inventory = loadInventory(opts.inventory);
  const resolved = new Map(resolveAll(inventory).map((h) => [h.name, h]));
  const settings = readJobSettings(inventory, resolved);
  const secrets = readSecrets(opts.inventory, { allowWeakPassword: Boolean(opts.allowWeakPassword) });
  desiredUri(settings, secrets.password); // a URI the web app could not take is bad input: exit 2 before connecting
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

  // Everything written passes through redact: a last guard that no secret reaches the screen.
  const secretList = [secrets.password, ...(secrets.becomePassword ? [secrets.becomePassword] : [])];
  const out = (text: string) => io.stdout(redact(text, secretList));
  const runId = newRunId();
  const connections = new Connections(access, runId);
  const stages = deployStages({ runId, settings, secrets, connections, selected: hosts, becomeUser: (h) => access.get(h)?.becomeUser });
  const ui = opts.json ? undefined : io.isTTY ? treeReporter(stages.map((s) => s.name)) : undefined;
  const plain = opts.json || io.isTTY ? undefined : plainReporter(out);
  const onEvent = (e: RunEvent) => {
    ui?.onEvent(e);
    plain?.(e);
  };
  let outcome;
  try {
    if (!opts.json) out(`pem-settings deploy ${opts.check ? '(check mode: nothing will be changed) ' : ''}run ${runId}\n`);
    outcome = await runStages(stages, { check: Boolean(opts.check), forks, keepGoing: Boolean(opts.keepGoing), onEvent });
  } finally {
    await ui?.done;
    await connections.closeAll();
  }
  const failed = [...outcome.hosts].filter(([, r]) => r.failed > 0 || r.unreachable).map(([h]) => h);
  let retryFile: string | undefined;
  if (failed.length) {
    retryFile = resolve(dirname(opts.inventory), `${opts.inventory.replace(/^.*\//, '').replace(/\.[^.]*$/, '')}.retry`);
    writeFileSync(retryFile, failed.join('\n') + '\n');
  }
  if (opts.json) {
    out(recapJson(runId, outcome.hosts, { check: Boolean(opts.check), ...(retryFile ? { retry_file: retryFile } : {}) }));
  } else {
    if (opts.diff) out(renderDiffs(outcome.hosts));
    out(renderRecap(outcome.hosts));
    if (outcome.stoppedAfter) out(`\nThe run stopped after the ${outcome.stoppedAfter} stage (a host failed there); later stages were not run.\n`);
    if (retryFile) out(`\nTo retry the failed hosts: --limit @${retryFile}\n`);
  }
  return failed.length ? 1 : 0;
}

function renderDiffs(hosts: Map<string, HostRecap>): string {
  const parts: string[] = [];
  for (const [host, r] of hosts) {
    for (const c of r.changes.filter((c) => c.changed)) {
      if (c.diff) parts.push(`--- ${host}: ${c.step}\n` + createTwoFilesPatch(c.diff.path, c.diff.path, maskHbaSecrets(c.diff.before), maskHbaSecrets(c.diff.after), 'before', 'after'));
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
