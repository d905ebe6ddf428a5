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

export interface HealthOptions {
  user?: string;
  timeoutSec: number;
  step: string;
}

/**
 * pem_web_health, retried until it succeeds or its time is up: after a restart the web app may
 * take a while (a lazily started one starts on this first request).
 */
export async function waitHealthy(conn: Connection, command: string, o: HealthOptions): Promise<number> {
  const started = Date.now();
  let last = '';
  for (let attempt = 1; ; attempt++) {
    const left = o.timeoutSec - (Date.now() - started) / 1000;
    const r = await conn.run(command, { ...(o.user ? { user: o.user } : {}), timeoutSec: Math.max(1, Math.min(30, Math.ceil(left))) });
    if (r.lost) throw new UnreachableError(conn.host, o.step, 'the SSH connection dropped while pem_web_health ran', 'check the web app by hand');
    if (r.code === 0) return attempt;
    last = r.timedOut ? `timed out after ${r.timedOut} s` : `exited with ${r.code}${r.stderr.trim() ? `: ${lastLines(r.stderr)}` : ''}`;
    if ((Date.now() - started) / 1000 + 2 >= o.timeoutSec) break;
    await new Promise((done) => setTimeout(done, 2000));
  }
  throw new HostError(conn.host, o.step, `pem_web_health did not succeed within ${o.timeoutSec} s (pem_web_health_timeout); last attempt ${last}`,
    'the web app restarted with the new file: look at its log; the rollout stopped here');
}
