// The per-host run lock (SPEC 4): an flock held by a remote shell for as long as the run's
// SSH connection lives. It cannot go stale: if this process or the connection dies, sshd ends
// the shell and the kernel drops the lock. The shell that takes the lock also runs the host's
// first script (its facts), so locking costs no extra round trip.

import { hostname, userInfo } from 'node:os';
import { HostError } from './errors.ts';
import type { Connection, RunOptions, RunResult } from './connection.ts';

export interface HeldLock {
  release(): Promise<void>;
}

export const LOCK_FILE = '/tmp/.pem-settings.lock';
const HELD = '__pem_settings_lock_held__';
const BUSY = '__pem_settings_lock_busy__';
const STDERR = '__pem_settings_stderr__';
const STATUS = '__pem_settings_status__';

/**
 * Takes the lock on fd 9, runs `body` in a subshell (its standard output passes through, its
 * standard error is captured and sent after it), reports its status, then waits on standard
 * input with the lock held.
 */
export function lockedScript(runId: string, body: string): string {
  const holder = `run ${runId} by ${userInfo().username}@${hostname()} pid ${process.pid} since ${new Date().toISOString()}`
    .replace(/[^A-Za-z0-9 @._:-]/g, '_');
  return [
    `f=${LOCK_FILE}`,
    // World-writable so that runs under different users (SSH or sudo) still exclude each other.
    `[ -e "$f" ] || (umask 0; : >> "$f") 2>/dev/null`,
    `exec 9<"$f" || { echo "${BUSY} cannot open $f"; exit 74; }`,
    `if ! flock -n 9; then echo "${BUSY} another pem-settings run holds this host ($(head -c 300 "$f" 2>/dev/null))"; exit 75; fi`,
    `printf '%s\\n' '${holder}' > "$f" 2>/dev/null`,
    'exec 3>&1',
    // Standard error into $err, standard output straight through (the form dash gets right).
    `err=$( (`,
    body,
    `) 2>&1 >&3 )`,
    'status=$?',
    `b64=; [ -z "$err" ] || b64=$(printf '%s' "$err" | base64 -w0)`,
    `printf '\\n${STDERR} %s\\n${STATUS} %s\\n${HELD}\\n' "$b64" "$status"`,
    'exec 3>&-',
    'exec cat >/dev/null',
  ].join('\n');
}

/** Connects the lock to a first script: the script's result, and the lock to release at the end. */
export async function lockAndRun(conn: Connection, runId: string, body: string, options: RunOptions = {}): Promise<{ result: RunResult; lock: HeldLock }> {
  const held = await conn.hold(lockedScript(runId, body), HELD, options);
  const busy = held.stdout.split('\n').find((l) => l.startsWith(BUSY));
  if (busy !== undefined) {
    await held.release();
    const why = busy.slice(BUSY.length).trim();
    throw new HostError(conn.host, 'lock', why.startsWith('another') ? why : `cannot take the run lock: ${why}`,
      why.startsWith('another') ? 'wait for it to finish; the lock is released when that run ends or its connection drops' : undefined);
  }
  if (held.stdout.indexOf(`\n${STATUS} `) < 0) {
    // The shell never started (sudo refused, say): what it printed is the whole story.
    await held.release();
    return { result: { stdout: held.stdout, stderr: held.stderr, code: held.code === 0 ? 255 : held.code }, lock: { release: async () => {} } };
  }
  // Framing written by lockedScript: BODY-OUTPUT \n STDERR b64 \n STATUS n \n
  const at = held.stdout.lastIndexOf(`\n${STDERR} `);
  const tail = held.stdout.slice(at + 1).split('\n');
  const stderr = Buffer.from(tail[0]!.slice(STDERR.length + 1), 'base64').toString('utf8');
  const code = Number(tail[1]!.slice(STATUS.length + 1));
  return { result: { stdout: held.stdout.slice(0, at), stderr, code }, lock: { release: held.release } };
}

export async function holdLock(conn: Connection, runId: string, options: RunOptions = {}): Promise<HeldLock> {
  return (await lockAndRun(conn, runId, ':', options)).lock;
}
