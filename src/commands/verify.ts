// `pem-settings verify` (SPEC 2, 5): validate everything, then check every selected host and
// report; nothing on any host is changed. Exit 0 only when every check holds.

import { Option, type Command } from 'commander';
import type { Io } from '../cli.ts';
import { Connections } from '../connections.ts';
import { recapJson, renderRecap } from '../output/recap.ts';
import { progressFor } from '../output/progress.ts';
import { redact } from '../secrets.ts';
import { desiredUri } from '../../tasks/deploy.ts';
import { verifyStages } from '../../tasks/verify.ts';
import { runChecks } from '../../tasks/verify/checks.ts';
import { newRunId, prepare } from './job.ts';

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

export async function verifyCommand(opts: VerifyOptions, io: Io): Promise<number> {
  // The same validation as deploy and rollback (exit 2, nothing contacted). The password's
  // length policy is deploy's business: verify judges the password that is in place.
  const { settings, secrets, hosts, access, forks } = prepare({ ...opts, allowWeakPassword: true, check: true });
  const timeoutMs = Number(opts.connectTimeout) * 1000;
  // The URI deploy would write: all backends whatever the limit (SPEC 2).
  const wanted = desiredUri(settings, secrets.password).uri;

  // Every byte written passes through redact; the URIs read from the hosts may carry other
  // passwords than PEM_SETTINGS_PASSWORD, and the checks mask those where they quote a URI.
  const secretList = [secrets.password, ...(secrets.becomePassword ? [secrets.becomePassword] : [])];
  const foundSecrets: string[] = [];
  const out = (text: string) => io.stdout(redact(text, [...secretList, ...foundSecrets]));
  const runId = newRunId();
  const connections = new Connections(access, runId);
  const stages = verifyStages({
    settings, secrets, connections, desiredUri: wanted, selected: hosts, timeoutMs,
    becomeUser: (h) => access.get(h)?.becomeUser,
    onSecret: (s) => foundSecrets.push(s),
  });
  const progress = progressFor({ json: opts.json, isTTY: io.isTTY, stages: stages.map((s) => s.name), write: out });
  let recaps;
  try {
    if (!opts.json) out(`pem-settings verify (changes nothing) run ${runId}\n`);
    recaps = await runChecks(stages, { forks, onEvent: progress.onEvent });
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
