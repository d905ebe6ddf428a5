// What every command that connects does first (STYLE 8): check the flags, read the inventory,
// let the job read and check its settings and secrets, select the hosts and work out how to
// reach each — all problems reported together (exit 2) before anything connects.

import { hostname, userInfo } from 'node:os';
import { ProblemsError, UsageError } from '../errors.ts';
import { loadInventory, resolveAll, selectHosts, type Inventory } from '../inventory/index.ts';
import type { CommandName, HostLogin, Job, PreparedJob } from '../job.ts';
import { ensureRecordsWritable, stateDirFor } from '../records.ts';
import { hostAccess, type HostAccess } from '../targets.ts';

export interface CommonOptions {
  inventory: string;
  limit?: string;
  check?: boolean;
  diff?: boolean;
  forks: string;
  json?: boolean;
  keepGoing?: boolean;
  acceptNewHostKeys?: boolean;
  connectTimeout: string;
  commandTimeout?: string;
  lockTimeout?: string;
  stateDir?: string;
  [option: string]: unknown;
}

export interface Prepared {
  inventory: Inventory;
  job: PreparedJob;
  /** Selected hosts of the job, in inventory order. */
  hosts: string[];
  access: Map<string, HostAccess>;
  forks: number;
  lockTimeoutSec: number;
  stateDir: string;
}

export function prepare(job: Job, command: CommandName, opts: CommonOptions): Prepared {
  const forks = positive(opts.forks, '--forks');
  const connectTimeout = positive(opts.connectTimeout, '--connect-timeout');
  const commandTimeout = positive(opts.commandTimeout ?? '120', '--command-timeout');
  const lockTimeoutSec = positive(opts.lockTimeout ?? '300', '--lock-timeout', 0);
  const inventory = loadInventory(opts.inventory);
  const resolved = new Map(resolveAll(inventory).map((h) => [h.name, h]));
  const prepared = job.prepare({ command, inventory, inventoryPath: opts.inventory, resolved, options: opts, env: process.env });
  const selected = opts.limit ? selectHosts(inventory, opts.limit) : [...inventory.hosts.keys()];
  const ofJob = new Set(prepared.hosts);
  const hosts = selected.filter((h) => ofJob.has(h));
  if (hosts.length === 0) throw new UsageError(`--limit "${opts.limit}" selects no host this job works on`);
  const problems: Error[] = [];
  const access = new Map<string, HostAccess>();
  const becomePassword = prepared.becomePassword;
  for (const h of hosts) {
    const a = hostAccess(resolved.get(h)!, {
      inventoryFile: opts.inventory, acceptNewHostKeys: Boolean(opts.acceptNewHostKeys), connectTimeoutMs: connectTimeout * 1000,
      commandTimeoutSec: commandTimeout, ...(becomePassword ? { becomePassword } : {}),
    }, problems);
    if (a) access.set(h, a);
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length) throw new ProblemsError(problems);
  const stateDir = stateDirFor(opts.inventory, opts.stateDir);
  if (!opts.check && command !== 'verify') ensureRecordsWritable(stateDir);
  return { inventory, job: prepared, hosts, access, forks, lockTimeoutSec, stateDir };
}

export function loginOf(prepared: Prepared): (host: string) => HostLogin {
  return (host) => {
    const a = prepared.access.get(host);
    return { user: a?.target.user ?? userInfo().username, ...(a?.becomeUser ? { becomeUser: a.becomeUser } : {}) };
  };
}

/** Who holds a run lock, as another run waiting for it is told. */
export function lockHolder(): string {
  return `by ${userInfo().username}@${hostname()} pid ${process.pid} since ${new Date().toISOString()}`;
}

function positive(text: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${flag} must be a ${min ? 'positive' : 'whole'} number, got "${text}"`);
  return Number(text);
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}
