// The boundary between the engine (src/) and a job (tasks/): the engine reads the inventory,
// selects hosts, connects, locks, runs stages, reports and records; the job says what the hosts
// should look like. A job is handed to the engine by bin/, and src/ imports nothing from tasks/.

import type { CheckStage } from './checks.ts';
import type { Connections, Opening } from './connections.ts';
import type { Inventory, ResolvedHost } from './inventory/index.ts';
import type { RunRecord } from './records.ts';
import type { Stage } from './runner.ts';

export type CommandName = 'deploy' | 'rollback' | 'verify';

export interface JobInput {
  command: CommandName;
  inventory: Inventory;
  inventoryPath: string;
  resolved: Map<string, ResolvedHost>;
  /** The command's options as parsed (the job reads its own: --allow-weak-password, --serial...). */
  options: Readonly<Record<string, unknown>>;
  env: NodeJS.ProcessEnv;
}

/** How the engine reaches a host, as the job needs to know it. */
export interface HostLogin {
  /** The SSH login user. */
  user: string;
  /** ansible_become_user when become is on. */
  becomeUser?: string;
}

export interface RunContext {
  runId: string;
  connections: Connections;
  /** Selected hosts of the job, in inventory order. */
  selected: string[];
  login(host: string): HostLogin;
  /** Earlier runs, oldest first. */
  records: RunRecord[];
  /** A line for the operator while the run goes on (a wait, a bootstrap). */
  notify(text: string): void;
  /** A secret found on a host (another password in a file): masked in all output from now on. */
  mask(secret: string): void;
  check: boolean;
}

export interface RollbackRequest {
  record: RunRecord;
  force: boolean;
  purge: boolean;
}

/** A job whose settings and secrets have been read and validated: nothing has connected yet. */
export interface PreparedJob {
  /** Hosts the job works on, in inventory order. */
  hosts: string[];
  /** Values to mask in everything written (passwords). */
  secrets: string[];
  /** The sudo password for become (PEM_BECOME_PASSWORD), when the operator gave one. */
  becomePassword?: string;
  deploy(ctx: RunContext): Plan<Stage>;
  rollback(ctx: RunContext, request: RollbackRequest): Plan<Stage>;
  verify(ctx: RunContext & { timeoutMs: number }): Plan<CheckStage>;
}

/** The stages of a command, and the first operation of each host's locked session. */
export interface Plan<S> {
  openings: Opening[];
  stages: S[];
}

export interface Job {
  /** Reads and checks the job's variables and secrets; throws UsageError/InventoryError/ProblemsError (exit 2). */
  prepare(input: JobInput): PreparedJob;
}
