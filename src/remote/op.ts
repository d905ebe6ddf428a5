// A remote operation: the script that does it and the one function that reads its result. Every
// operation a task runs on a host is one of these, so each script is written in one place and
// read in one place, and the exit codes the script uses are constants the reader shares.

import type { Connection, ExecOptions } from '../connection.ts';
import { HostError, UnreachableError } from '../errors.ts';
import { NOTHING_SCRIPT, frame, type Output } from './frame.ts';

export type { Output } from './frame.ts';

export interface RemoteOp<T> {
  /** A complete /bin/sh script; it reads nothing from standard input. */
  script: string;
  /** Reads what the script printed; throws OpError when it says the operation failed. */
  read(out: Output): T;
}

/** An operation that failed on the host, in the operator's words (the caller names host and step). */
export class OpError extends Error {
  constructor(
    message: string,
    readonly code?: number,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** An operation that does nothing: the place of one a host does not need, in a batch. */
export const nothing: RemoteOp<undefined> = { script: NOTHING_SCRIPT, read: () => undefined };

/** An operation's failure message: what it printed on standard error, else its status. */
export function failure(out: Output, what: string): string {
  return out.stderr.trim() || `${what} exited with ${out.code}`;
}

/** Several operations in one script and one round trip; each one's output read by its own reader. */
export function batch<T extends unknown[]>(...ops: { [K in keyof T]: RemoteOp<T[K]> }): RemoteOp<T> {
  const framed = frame(ops.map((o) => o.script));
  return {
    script: framed.script,
    read(out) {
      const parts = framed.split(out.stdout);
      return ops.map((o, i) => {
        const part = parts[i];
        if (!part) throw new OpError(failure(out, 'the script'), out.code);
        return o.read(part);
      }) as T;
    },
  };
}

/**
 * Operations in one script and one round trip, each run only when the one before it succeeded:
 * the outputs, one per operation, undefined for those that did not run. Read each with `readOp`.
 */
export function sequence(...ops: RemoteOp<unknown>[]): RemoteOp<(Output | undefined)[]> {
  const framed = frame(ops.map((o) => o.script), { chained: true });
  return { script: framed.script, read: (out) => framed.split(out.stdout) };
}

export interface StepContext {
  /** The step named in messages. */
  step: string;
  /** What a dropped connection leaves behind, for the message (default: nothing was changed). */
  ifLost?: string;
}

/**
 * Runs an operation on a host and reads its result. A dropped connection is the host being
 * unreachable; a command past its timeout, or an operation that failed, is a failure of the step.
 */
export async function runOp<T>(conn: Connection, op: RemoteOp<T>, options: ExecOptions & StepContext): Promise<T> {
  const { step, ifLost, ...exec } = options;
  const r = await conn.run(op.script, exec);
  if (r.lost) {
    throw new UnreachableError(conn.host, step, `the SSH connection dropped during this step${ifLost ? `: ${ifLost}` : ''}`, 'run again once the host is reachable');
  }
  if (r.timedOut) throw new HostError(conn.host, step, `timed out after ${r.timedOut} s and was stopped`);
  return readOp(conn.host, step, op, r);
}

/** Reads an operation's output; its failure becomes the host's, in the operator's words. */
export function readOp<T>(host: string, step: string, op: RemoteOp<T>, out: Output): T {
  try {
    return op.read(out);
  } catch (e) {
    if (e instanceof OpError) throw new HostError(host, step, e.message, e.hint);
    throw e;
  }
}
