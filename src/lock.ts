// The per-host run lock (SPEC 4): an flock held by a remote shell for as long as the run's
// SSH connection lives. It cannot go stale: if this process or the connection dies, sshd ends
// the shell and the kernel drops the lock.

import { hostname, userInfo } from 'node:os';
import { HostError } from './errors.ts';
import type { Connection } from './connection.ts';

export interface HeldLock {
  release(): Promise<void>;
}

export const LOCK_FILE = '/tmp/.pem-settings.lock';

export function lockScript(runId: string): string {
  const holder = `run ${runId} by ${userInfo().username}@${hostname()} pid ${process.pid} since ${new Date().toISOString()}`
    .replace(/[^A-Za-z0-9 @._:-]/g, '_');
  return [
    `f=${LOCK_FILE}`,
    // World-writable so that runs under different SSH users still exclude each other.
    `[ -e "$f" ] || (umask 0; : >> "$f") 2>/dev/null`,
    `exec 9<"$f" || { echo "error cannot open $f"; exit 74; }`,
    `if ! flock -n 9; then echo "busy $(head -c 300 "$f" 2>/dev/null)"; exit 75; fi`,
    `printf '%s\\n' '${holder}' > "$f" 2>/dev/null`,
    `echo locked`,
    `exec cat >/dev/null`,
  ].join('\n');
}

export async function holdLock(conn: Connection, runId: string): Promise<HeldLock> {
  const { firstLine, release } = await conn.hold(lockScript(runId));
  if (firstLine === 'locked') return { release };
  if (firstLine.startsWith('busy')) {
    throw new HostError(conn.host, 'lock', `another pem-settings run holds this host (${firstLine.slice(5).trim() || 'holder unknown'})`,
      'wait for it to finish; the lock is released when that run ends or its connection drops');
  }
  throw new HostError(conn.host, 'lock', `cannot take the run lock: ${firstLine || 'no answer'}`);
}
