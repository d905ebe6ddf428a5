// Real Postgres backends for the lab: a primary that looks like a PEM backend and a
// streaming hot standby cloned from it with pg_basebackup. Each runs as the OS user that
// owns it, inside its host (through the `exec` the caller hands in).
import { appendFile, chown, copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIMARY_SQL, pgHba, pgHostConf } from './files.ts';
import type { LabPlan, PlannedHost } from './plan.ts';
import type { RunResult } from './sh.ts';
import { run, waitFor } from './sh.ts';

export type HostExec = (argv: string[], opts?: { input?: string; user?: string; timeoutMs?: number }) => Promise<RunResult>;

// A step that hangs (a password prompt, a stuck server) fails the lab instead of the whole test run.
const STEP_TIMEOUT_MS = 120_000;

export interface Backend {
  host: PlannedHost;
  exec: HostExec;
  /** Data directory as the host sees it, and the same directory as the machine sees it. */
  dataDir: string;
  machineDataDir: string;
  socketDir: string;
  port: number;
  logFile: string; // machine path, writable by the OS user
}

export interface PgSetup {
  bin: string;
  osUser: string;
  owner: { uid: number; gid: number };
  certFile: string;
  keyFile: string;
}

async function check(what: string, host: string, r: RunResult): Promise<string> {
  if (r.code !== 0) throw new Error(`lab: ${host}: ${what} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

async function writeOwned(path: string, text: string, s: PgSetup, mode = 0o600): Promise<void> {
  await writeFile(path, text, { mode });
  await chown(path, s.owner.uid, s.owner.gid);
}

async function pgStart(b: Backend, s: PgSetup): Promise<void> {
  const r = await b.exec([`${s.bin}/pg_ctl`, '-D', b.dataDir, '-l', b.logFile, '-w', '-t', '60', 'start'], { user: s.osUser, timeoutMs: STEP_TIMEOUT_MS });
  await check('pg_ctl start', b.host.name, r);
}

/** psql over the host's unix socket as the OS user (peer authentication), statements on stdin. */
export function psql(b: Backend, s: PgSetup, sql: string, db = 'postgres'): Promise<RunResult> {
  return b.exec(
    [`${s.bin}/psql`, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', b.socketDir, '-p', String(b.port), '-d', db],
    { user: s.osUser, input: sql, timeoutMs: STEP_TIMEOUT_MS },
  );
}

export async function setUpPrimary(plan: LabPlan, b: Backend, s: PgSetup, seenAs?: { backends: string[]; subnet: string }): Promise<void> {
  await check('initdb', b.host.name, await b.exec(
    [`${s.bin}/initdb`, '-D', b.dataDir, '-U', s.osUser, '--auth-local=peer', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions'],
    { user: s.osUser, timeoutMs: STEP_TIMEOUT_MS },
  ));
  await writeOwned(join(b.machineDataDir, 'pg_hba.conf'), pgHba(plan, seenAs), s);
  await writeOwned(join(b.machineDataDir, 'lab-host.conf'), pgHostConf(b.host.address, b.port, b.socketDir), s);
  await appendFile(join(b.machineDataDir, 'postgresql.conf'), "\n# pem-settings lab\ninclude = 'lab-host.conf'\n");
  for (const [from, to] of [[s.certFile, 'server.crt'], [s.keyFile, 'server.key']] as const) {
    const dest = join(b.machineDataDir, to);
    await copyFile(from, dest);
    await chown(dest, s.owner.uid, s.owner.gid);
  }
  await pgStart(b, s);
  await check('creating the PEM roles and database', b.host.name, await psql(b, s, PRIMARY_SQL));
}

export async function setUpStandby(primary: Backend, b: Backend, s: PgSetup): Promise<void> {
  await check('pg_basebackup', b.host.name, await b.exec(
    [`${s.bin}/pg_basebackup`, '-h', primary.host.address, '-p', String(primary.port), '-U', 'replicator',
      '-D', b.dataDir, '-c', 'fast', '-R', '-X', 'stream', '--no-sync', '--no-password'],
    { user: s.osUser, timeoutMs: STEP_TIMEOUT_MS },
  ));
  // The copy carries the primary's listen address; this host listens on its own.
  await writeOwned(join(b.machineDataDir, 'lab-host.conf'), pgHostConf(b.host.address, b.port, b.socketDir), s);
  await pgStart(b, s);
  await waitFor(`${b.host.name} to stream from the primary`, 30_000, async () => {
    const r = await psql(b, s, 'SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver);');
    return r.code === 0 && r.stdout.trim() === 't|streaming' ? true : undefined;
  });
}

/** Stop a backend at once (the lab's data is thrown away); the caller kills whatever remains. */
/** Stops a backend; `where` puts the command inside its host (whose pids its pid file holds). */
export async function stopBackend(b: Pick<Backend, 'machineDataDir'>, s: Pick<PgSetup, 'bin' | 'osUser'>, asRoot: boolean,
  where: (argv: string[]) => string[] = (argv) => argv): Promise<void> {
  const argv = [`${s.bin}/pg_ctl`, '-D', b.machineDataDir, 'stop', '-m', 'immediate', '-w', '-t', '10'];
  const [cmd, ...args] = where(asRoot ? ['runuser', '-u', s.osUser, '--', ...argv] : argv);
  await run(cmd as string, args);
}
