// Shared by the fault-matrix tests (faults-*.test.ts, issue 6): looking at a host the way the
// host itself sees it (through mounts made inside it), killing its sshd, and running the CLI
// as a child process the test can signal.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../lab/lab.ts';
import { run, type RunResult } from '../lab/sh.ts';
import { NASTY_PASSWORD } from './helpers.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${REPO}bin/pem-settings.js`;

export const WEB_DIR = '/usr/edb/pem/web';
export const FILE = `${WEB_DIR}/config_local.py`;
export const PG_DATA = '/var/lib/postgresql/15/main';
export const HBA = `${PG_DATA}/pg_hba.conf`;
export const WEBS = ['web-1', 'web-2', 'web-3'];
export const BACKENDS = ['pg-primary', 'pg-standby'];

/** Each deploy in a test uses its own password, so that it has something to change (rotation). */
export const password = (n: number): string => `${NASTY_PASSWORD} #${n}`;

/** A file's bytes (base64) as the host sees them, or undefined when it does not exist. */
export async function fileOn(lab: Lab, host: string, path: string): Promise<string | undefined> {
  const r = await lab.exec(host, ['sh', '-c', '[ -e "$1" ] || exit 3; base64 -w0 < "$1"', 'sh', path]);
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new Error(`${host}: cannot read ${path}: ${r.stderr}`);
  return r.stdout;
}

/** Several files at once: host:path → base64 bytes. */
export async function filesOn(lab: Lab, hostPaths: [string, string][]): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const [h, p] of hostPaths) out[`${h}:${p}`] = await fileOn(lab, h, p);
  return out;
}

export const webFiles = (lab: Lab) => filesOn(lab, WEBS.map((h) => [h, FILE]));
export const hbaFiles = (lab: Lab) => filesOn(lab, BACKENDS.map((h) => [h, HBA]));

/** Names in a directory of a host, `ls -A` style. */
export async function namesIn(lab: Lab, host: string, dir: string): Promise<string[]> {
  const r = await lab.exec(host, ['ls', '-A', dir]);
  if (r.code !== 0) throw new Error(`${host}: ls ${dir}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Temporary files an interrupted write could leave: none may ever stay. */
export async function leftovers(lab: Lab, host: string, dir: string): Promise<string[]> {
  return (await namesIn(lab, host, dir)).filter((n) => /^\.(config_local|pg_hba)\.pem-settings\./.test(n));
}

/** `%a %U:%G` of a path on a host. */
export async function statOn(lab: Lab, host: string, path: string): Promise<string> {
  const r = await lab.exec(host, ['stat', '-c', '%a %U:%G %s %Y', path]);
  if (r.code !== 0) throw new Error(`${host}: stat ${path}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Every process of the host's network namespace whose command name matches. */
export async function processesOn(lab: Lab, host: string): Promise<{ pid: number; comm: string; args: string }[]> {
  const ns = lab.host(host).netns;
  if (!ns) throw new Error('these tests need the root lab (network namespaces)');
  const r = await run('ip', ['netns', 'pids', ns]);
  const out: { pid: number; comm: string; args: string }[] = [];
  for (const pid of r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    const args = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (comm) out.push({ pid, comm: comm.trim(), args: args.replace(/\0/g, ' ').trim() });
  }
  return out;
}

/**
 * Kills every sshd of a host: the listener and each session's sshd. Killing only the listener
 * is not enough: established SSH sessions live on in their own sshd processes.
 */
export async function killSshds(lab: Lab, host: string): Promise<number> {
  const sshds = (await processesOn(lab, host)).filter((p) => p.comm === 'sshd');
  for (const p of sshds) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return sshds.length;
}

export async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True while a process whose arguments contain `needle` runs on the host. */
export async function running(lab: Lab, host: string, needle: string): Promise<boolean> {
  return (await processesOn(lab, host)).some((p) => p.args.includes(needle));
}

export interface CliChild {
  child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  done: Promise<RunResult & { ms: number }>;
}

/** The real CLI as a child process the test can signal (helpers.cli does not expose it). */
export function spawnCli(args: string[], env: Record<string, string>): CliChild {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CI: 'true', ...env }, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<RunResult & { ms: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: out, stderr: err, code: code ?? (signal ? 128 : 1), ms: Date.now() - started });
    });
  });
  return { child, stdout: () => out, done };
}

/** A copy of the lab's inventory with extra variables on some hosts' lines (e.g. a slow pem_web_restart). */
export async function inventoryWith(lab: Lab, name: string, hostVars: Record<string, string>, extra = ''): Promise<string> {
  const lines = (await readFile(lab.inventoryPath, 'utf8')).split('\n').map((l) => {
    const host = l.split(' ')[0] ?? '';
    return hostVars[host] && l.includes('ansible_host=') ? `${l} ${hostVars[host]}` : l;
  });
  const path = join(lab.dir, `${name}.ini`);
  await writeFile(path, lines.join('\n') + extra);
  return path;
}

export interface JsonStep { stage: string; step: string; status: string; message: string }
export interface JsonHost { ok: number; changed: number; failed: number; skipped: number; unreachable: boolean; steps: JsonStep[] }
export interface JsonRun { run: string; record?: string; retry_file?: string; hosts: Record<string, JsonHost> }

export function parseJson(r: RunResult): JsonRun {
  try {
    return JSON.parse(r.stdout) as JsonRun;
  } catch {
    throw new Error(`not a JSON document (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** The steps of a host as "stage/step status" strings, for exact comparisons. */
export const stepsOf = (doc: JsonRun, host: string): string[] => (doc.hosts[host]?.steps ?? []).map((s) => `${s.stage}/${s.step} ${s.status}`);

/** Run records in the inventory's state directory. */
export async function runRecords(lab: Lab): Promise<string[]> {
  return (await readdir(join(lab.dir, '.pem-settings', 'runs')).catch(() => [] as string[])).sort();
}

/** Stops or starts a backend's Postgres as the cluster's OS user, inside its host. */
export async function pgCtl(lab: Lab, host: string, action: 'stop' | 'start'): Promise<void> {
  const argv = action === 'stop'
    ? ['/usr/lib/postgresql/15/bin/pg_ctl', '-D', PG_DATA, 'stop', '-m', 'fast', '-w', '-t', '30']
    : ['/usr/lib/postgresql/15/bin/pg_ctl', '-D', PG_DATA, 'start', '-w', '-t', '60', '-l', `${PG_DATA}/restarted.log`];
  const r = await lab.exec(host, argv, { user: 'postgres', timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`${host}: pg_ctl ${action}: ${r.stdout}${r.stderr}`);
}
