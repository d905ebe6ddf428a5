// The operator's pem_web_restart (and pem_web_health), run as given, as the become user, with
// its own timeout: deploy and rollback restart through this one function.

import type { Connection } from '../src/connection.ts';
import { HostError, UnreachableError } from '../src/errors.ts';
import { runOp } from '../src/remote/op.ts';
import { lastLines, runCommand } from '../src/remote/run-command.ts';

export interface RestartOptions {
  user?: string;
  timeoutSec: number;
  step: string;
  /** What the web host's file is now, for the message when the restart did not complete. */
  fileState: string;
}

/** Runs pem_web_restart; throws when it failed, timed out or was cut off (the next deploy owes it). */
export async function restartWebApp(conn: Connection, command: string, o: RestartOptions): Promise<void> {
  let out;
  try {
    out = await runOp(conn, runCommand(command), {
      ...(o.user ? { user: o.user } : {}), timeoutSec: o.timeoutSec, step: o.step,
      ifLost: 'whether the web app restarted is unknown',
    });
  } catch (e) {
    if (e instanceof HostError) {
      const Same = e instanceof UnreachableError ? UnreachableError : HostError;
      throw new Same(conn.host, o.step, `pem_web_restart: ${e.reason}`, `${o.fileState}; the next deploy restarts the web app (or restart it by hand)`);
    }
    throw e;
  }
  if (out.code !== 0) {
    throw new HostError(conn.host, o.step, `pem_web_restart exited with ${out.code}: ${lastLines(out.stderr)}`, `${o.fileState}; restart the web app by hand`);
  }
}
