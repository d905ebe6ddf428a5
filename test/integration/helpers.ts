// Shared by the integration tests: run the real CLI as a child process, query the lab's
// Postgres as the cluster's superuser, read files as a host sees them.

import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../lab/lab.ts';
import type { Connection } from '../../src/connection.ts';
import { lockScript } from '../../src/remote/lock.ts';
import { run, type RunResult } from '../lab/sh.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${REPO}bin/pem-settings.js`;

/** A password with every character class that has bitten URI, SQL, shell and Python quoting. */
export const NASTY_PASSWORD = `Sup3r'S"ec\\ret @:/%$; pä ss€`;

export async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
  const merged: NodeJS.ProcessEnv = { ...process.env, CI: 'true', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  return run(process.execPath, [BIN, ...args], { env: merged, cwd: REPO, timeoutMs: 180_000 });
}

/** Runs SQL on a backend as the postgres superuser through the local socket; returns trimmed rows. */
export async function sql(lab: Lab, host: string, query: string, db = 'postgres'): Promise<string> {
  const r = await lab.exec(host, ['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', db], { input: query, user: 'postgres' });
  if (r.code !== 0) throw new Error(`psql on ${host} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Connects from a lab host (its own network namespace) to a backend with libpq, the password
 * given on standard input; returns psql's result.
 */
export async function connectFrom(lab: Lab, from: string, conninfo: string, password: string, query = 'SELECT 1'): Promise<RunResult> {
  const script = 'PGPASSWORD=$(cat) PGCONNECT_TIMEOUT=5 exec psql -XAtq -v ON_ERROR_STOP=1 "$0" -c "$1"';
  return lab.exec(from, ['sh', '-c', script, conninfo, query], { input: password, user: 'nobody' });
}

export function hostFile(lab: Lab, host: string, path: string): Promise<Buffer> {
  return readFile(lab.hostPath(host, path));
}

export function recapLine(stdout: string, host: string): string {
  return stdout.split('\n').find((l) => l.startsWith(host + ' ') && l.includes('changed=')) ?? '';
}

const SHARED_CONSUMER = fileURLToPath(new URL('../../../shared/webapp-consumer', import.meta.url));

/**
 * The web app's own parser (shared/webapp-consumer), copied into the lab's directory so that lab
 * hosts can run it: a checkout under /tmp is hidden inside hosts, which mount a /tmp of their own.
 */
export async function webappConsumer(lab: Lab): Promise<{ consumer: string; vendor: string }> {
  const dir = join(lab.dir, 'webapp-consumer');
  await cp(SHARED_CONSUMER, dir, { recursive: true, force: false, errorOnExist: false });
  return { consumer: join(dir, 'consumer.py'), vendor: join(dir, 'vendor') };
}

/**
 * A login user whose sudo asks for a password (for PEM_BECOME_PASSWORD tests). /etc is the
 * machine's, shared by every lab: each test file uses its own user and sudoers file names.
 */
export function sudoPasswordUser(user: string, password: string, sudoers: string): { create(): Promise<void>; remove(): Promise<void> } {
  const remove = async () => {
    await rm(sudoers, { force: true });
    await run('userdel', ['-r', user]).catch(() => {});
  };
  const create = async () => {
    await remove();
    await run('useradd', ['-m', '-s', '/bin/sh', user]);
    await run('chpasswd', [], { input: `${user}:${password}\n` });
    const tmp = `${sudoers}.tmp`; // sudo ignores names with a dot: never read half-written
    await writeFile(tmp, `${user} ALL=(ALL:ALL) ALL\n`, { mode: 0o440 });
    await run('visudo', ['-cf', tmp]);
    await run('mv', [tmp, sudoers]);
  };
  return { create, remove };
}

/** Where the run lock of the cluster's owner lives on a lab backend (its home, its own per host). */
export const POSTGRES_LOCK = '/var/lib/postgresql/.pem-settings/lock';

/** Takes a host's run lock for `user` as another run would, and holds it until released. */
export async function holdRunLock(conn: Connection, runId: string, user?: string): Promise<{ release(): Promise<void> }> {
  const lock = lockScript(':', { runId, holder: 'by a test', waitSec: 0, user: user ?? conn.user });
  const held = await conn.hold(lock.script, lock.heldMarker, user ? { user } : {});
  const state = lock.read(held.stdout).lock.state;
  if (state !== 'held') {
    await held.release();
    throw new Error(`holdRunLock: the lock is ${state}: ${held.stdout}${held.stderr}`);
  }
  return held;
}

/**
 * A pem_web_restart that does what the web app does at start in the settings database: connect
 * with config_local.py's URI and create a table (consumer.py), so that a first deploy's
 * bootstrap host sees the web app's schema appear.
 */
export function webAppRestart(consumer: string, then = 'echo restarted >> /tmp/restarts'): string {
  return `/usr/bin/python3 ${consumer} /usr/edb/pem/web/config_local.py >/dev/null 2>&1; ${then}`;
}

/** As if a web app had started once on the settings database: its schema is there. */
export async function webAppSchema(lab: Lab): Promise<void> {
  await sql(lab, 'pg-primary', 'CREATE TABLE IF NOT EXISTS public.webapp_started (id int); ALTER TABLE public.webapp_started OWNER TO pem_user_settings;', 'pem_user_settings');
}

/** Recap rows (`host : ok=… changed=…`) by host. */
export function recapRows(stdout: string): Map<string, string> {
  const rows = new Map<string, string>();
  const at = stdout.indexOf('\nRECAP\n');
  for (const line of stdout.slice(at + 7).split('\n')) {
    if (!line.trim()) break;
    rows.set(line.split(' ')[0]!, line);
  }
  return rows;
}
