// Entry point: parse argv, dispatch to one async command function, and turn typed errors into
// one-line messages and exit codes (SPEC 2). Nothing else in the tool decides the exit status.

import { Command, CommanderError, Option } from 'commander';
import { HostError, InventoryError, ProblemsError, UsageError, isOperatorError } from './errors.ts';
import { hostsCommand } from './commands/hosts.ts';
import { deployCommand } from './commands/deploy.ts';
import { rollbackCommand } from './commands/rollback.ts';
import { runsCommand } from './commands/runs.ts';
import { verifyCommand } from './commands/verify.ts';
import { processIo, type Io } from './io.ts';
import type { Job } from './job.ts';

export type { Io } from './io.ts';

/** Runs the command line for a job (bin/ hands the PEM job in); returns the exit status. */
export async function main(argv: string[], job: Job, io: Io = processIo): Promise<number> {
  let status = 0;
  const program = buildProgram(job, io, (code) => (status = code));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (e) {
    return reportError(e, io);
  }
}

function buildProgram(job: Job, io: Io, setStatus: (code: number) => void): Command {
  const program = new Command('pem-settings')
    .description('Keep every PEM web-application instance\'s user settings in one shared Postgres database.')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .showHelpAfterError(false);

  program.command('hosts')
    .description('show the resolved hosts, their groups and merged variables')
    .addOption(inventoryOption())
    .addOption(limitOption())
    .option('--json', 'print one JSON document')
    .action(async (opts) => setStatus(await hostsCommand(opts, io)));

  runOptions(program.command('deploy')
    .description('bring every selected host to the desired state')
    .addOption(inventoryOption())
    .addOption(limitOption()))
    .option('--allow-weak-password', 'accept a PEM_SETTINGS_PASSWORD shorter than 12 characters')
    .option('--serial <n>', 'restart web hosts in batches of N or N% (default: all at once after the first)')
    .option('--max-fail-percentage <p>', 'stop the rollout after a batch with more than P% failed web hosts', '0')
    .action(async (opts) => setStatus(await deployCommand(job, opts, io)));

  runOptions(program.command('rollback')
    .description('undo a recorded deploy run (default: the latest)')
    .addOption(inventoryOption())
    .addOption(limitOption()))
    .option('--run <id>', 'the run to undo (pem-settings runs lists them)')
    .option('--force', 'restore files edited since the run too (the edited file is kept beside it)')
    .option('--purge', 'also dump, then drop, the settings database and role the run created')
    .action(async (opts) => setStatus(await rollbackCommand(job, opts, io)));

  program.command('runs')
    .description('list the recorded runs')
    .addOption(inventoryOption())
    .option('--state-dir <dir>', 'where run records are kept (default: .pem-settings beside the inventory)')
    .option('--json', 'print the records as JSON')
    .action(async (opts) => setStatus(await runsCommand(opts, io)));

  connectOptions(program.command('verify')
    .description('prove from each web host that the settings database works as the web app will use it; report drift (changes nothing)')
    .addOption(inventoryOption())
    .addOption(limitOption()))
    .action(async (opts) => setStatus(await verifyCommand(job, opts, io)));
  return program;
}

// Option factories: commander keeps each Option object it is given, so every command gets fresh ones.
function inventoryOption(): Option {
  return new Option('-i, --inventory <file>', 'Ansible INI inventory').makeOptionMandatory();
}

function limitOption(): Option {
  return new Option('-l, --limit <pattern>', 'select hosts with an Ansible host pattern');
}

/** Options of every command that connects: how the run reaches hosts and waits for them. */
function connectOptions(cmd: Command): Command {
  return cmd
    .option('-f, --forks <n>', 'hosts worked on at once', '50')
    .option('--json', 'print one JSON result document')
    .option('--accept-new-host-keys', 'record the keys of hosts not yet in known_hosts (changed keys are still refused)')
    .option('--connect-timeout <seconds>', 'SSH connect timeout', '10')
    .option('--command-timeout <seconds>', 'seconds a remote command may run before it is stopped', '120')
    .option('--lock-timeout <seconds>', 'seconds to wait for another run that holds a host\'s run lock', '300');
}

/** Options deploy and rollback share: how the run goes, not what it does. */
function runOptions(cmd: Command): Command {
  return connectOptions(cmd)
    .option('-C, --check', 'connect and read, change nothing; report what would change')
    .option('-D, --diff', 'print unified diffs of file changes and the SQL (secrets masked)')
    .option('--keep-going', 'run later stages even when a stage failed on some host')
    .option('--state-dir <dir>', 'where run records are kept (default: .pem-settings beside the inventory)');
}

function reportError(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0) return 0; // --help, --version
    io.stderr(`pem-settings: ${e.message.replace(/^error: /, '')}\n`);
    return 2;
  }
  if (e instanceof ProblemsError) {
    io.stderr(`pem-settings: ${e.problems.length} problems, nothing was changed:\n`);
    for (const p of e.problems) io.stderr(`  - ${p.message}\n`);
    return 2;
  }
  if (isOperatorError(e)) {
    io.stderr(`pem-settings: ${(e as UsageError | InventoryError).message}\n`);
    return 2;
  }
  if (e instanceof HostError) {
    io.stderr(`pem-settings: ${e.message}\n`);
    return 1;
  }
  io.stderr(`pem-settings: internal error, please report it with this output:\n${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}
