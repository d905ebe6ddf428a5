// The operator's pem_web_restart (and pem_web_health), run as given, as the become user, with
// its own timeout: deploy and rollback restart through this one function.

import type { Connection } from '../src/connection.ts';
import { HostError, UnreachableError } from '../src/errors.ts';
import { lastLines } from '../src/remote/run-command.ts';

export interface RestartOptions {
  user?: string;
  timeoutSec: number;
  step: string;
  /** What the web host's file is now, for the message when the restart did not complete. */
  fileState: string;
}

/** Runs pem_web_restart; throws when it failed, timed out or was cut off (the next deploy owes it). */
export async function restartWebApp(conn: Connection, command: string, o: RestartOptions): Promise<void> {
  const r = await conn.run(command, { ...(o.user ? { user: o.user } : {}), timeoutSec: o.timeoutSec });
  if (r.lost) {
    throw new UnreachableError(conn.host, o.step, 'the SSH connection dropped while pem_web_restart ran: whether the web app restarted is unknown',
      `${o.fileState}; the next deploy restarts the web app (or restart it by hand)`);
  }
  if (r.timedOut) {
    throw new HostError(conn.host, o.step, `pem_web_restart did not finish within ${r.timedOut} s (pem_web_restart_timeout) and was stopped`,
      `${o.fileState}; the next deploy restarts the web app (or restart it by hand)`);
  }
  if (r.code !== 0) {
    throw new HostError(conn.host, o.step, `pem_web_restart exited with ${r.code}: ${lastLines(r.stderr)}`, `${o.fileState}; restart the web app by hand`);
  }
}
