// `pem-settings verify` (SPEC 2, 5): validate everything, then check every selected host and
// report; nothing on any host is changed. Exit 0 only when every check holds.

import { Option, type Command } from 'commander';
import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { ProblemsError, UsageError } from '../errors.ts';
import { loadInventory, resolveAll, selectHosts } from '../inventory/index.ts';
import { plainReporter } from '../output/plain.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { treeReporter } from '../output/tree.ts';
import type { RunEvent } from '../runner.ts';
import { redact } from '../secrets.ts';
import { hostAccess, type HostAccess } from '../targets.ts';
import { settingsUri } from '../../tasks/config-local/uri.ts';
import { readJobSettings, readSecrets } from '../../tasks/settings.ts';
import { verifyStages } from '../../tasks/verify.ts';
import { runChecks } from '../../tasks/verify/checks.ts';
import { newRunId } from './deploy.ts';

export interface VerifyOptions {
  inventory: string;
  limit?: string;
  json?: boolean;
  acceptNewHostKeys?: boolean;
  connectTimeout: string;
  forks: string;
}

/** Adds the `verify` subcommand; cli.ts calls this (setStatus receives the exit status). */
export function registerVerify(program: Command, io: Io, setStatus: (code: number) => void): Command {
  return program.command('verify')
    .description('prove from each web host that the settings database works as the web app will use it; report drift (changes nothing)')
    .addOption(new Option('-i, --inventory <file>', 'Ansible INI inventory').makeOptionMandatory())
    .addOption(new Option('-l, --limit <pattern>', 'select hosts with an Ansible host pattern'))
    .option('--json', 'print one JSON result document')
    .option('--accept-new-host-keys', 'record the keys of hosts not yet in known_hosts (changed keys are still refused)')
    .option('--connect-timeout <seconds>', 'SSH and Postgres connect timeout', '10')
    .option('-f, --forks <n>', 'hosts worked on at once', '50')
    .action(async (opts: VerifyOptions) => setStatus(await verifyCommand(opts, io)));
}

export async function verifyCommand(opts: VerifyOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const forks = positive(opts.forks, '--forks');
  const timeout = positive(opts.connectTimeout, '--connect-timeout');
  const inventory = loadInventory(opts.inventory);
  const resolved = new Map(resolveAll(inventory).map((h) => [h.name, h]));
  const settings = readJobSettings(inventory, resolved);
  // verify judges the password in place; the length policy is deploy's business.
  const secrets = readSecrets(opts.inventory, { allowWeakPassword: true, env });
  const selected = opts.limit ? selectHosts(inventory, opts.limit) : [...inventory.hosts.keys()];
  const jobHosts = new Set([...settings.backends.map((b) => b.name), ...settings.webhosts.map((w) => w.name)]);
  const hosts = selected.filter((h) => jobHosts.has(h));
  if (hosts.length === 0) throw new UsageError(`--limit "${opts.limit}" selects no host of [backends] or [webhosts]`);
  // The URI deploy would write: all backends whatever the limit (SPEC 2). Bad settings: exit 2.
  const desiredUri = settingsUri({
    user: settings.user, password: secrets.password, database: settings.db,
    backends: settings.backends.map((b) => ({ host: b.dbAddress, port: b.pgPort })),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  }).uri;

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

  // Every byte written passes through redact; the URIs read from the hosts may carry other
  // passwords than PEM_SETTINGS_PASSWORD, and the checks mask those where they quote a URI.
  const secretList = [secrets.password, ...(secrets.becomePassword ? [secrets.becomePassword] : [])];
  const foundSecrets: string[] = [];
  const out = (text: string) => io.stdout(redact(text, [...secretList, ...foundSecrets]));
  const runId = newRunId();
  const connections = new Connections(access, runId);
  const stages = verifyStages({
    settings, secrets, connections, desiredUri, selected: hosts, timeoutMs: timeout * 1000,
    becomeUser: (h) => access.get(h)?.becomeUser,
    onSecret: (s) => foundSecrets.push(s),
  });
  const ui = opts.json ? undefined : io.isTTY ? treeReporter(stages.map((s) => s.name)) : undefined;
  const plain = opts.json || io.isTTY ? undefined : plainReporter(out);
  const onEvent = (e: RunEvent) => {
    ui?.onEvent(e);
    plain?.(e);
  };
  let recaps;
  try {
    if (!opts.json) out(`pem-settings verify (changes nothing) run ${runId}\n`);
    recaps = await runChecks(stages, { forks, onEvent });
  } finally {
    await ui?.done;
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

function positive(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} must be a positive number, got "${text}"`);
  return Number(text);
}
