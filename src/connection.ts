// The one interface every operation talks to a host through (STYLE 6). The SSH implementation is
// in ssh/connect.ts; tests use the real thing against the lab, and the remote operations'
// scripts are also run under a local /bin/sh in unit tests.

import type { Duplex } from 'node:stream';

export interface ExecOptions {
  /** Run as this user (sudo, or runuser when logged in as root); default: the login user. */
  user?: string;
  /** Seconds before the command is stopped (default: the connection's command timeout). */
  timeoutSec?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** The connection dropped before the command reported how it ended: its outcome is unknown. */
  lost?: true;
  /** The command ran past its timeout (seconds) and was stopped. */
  timedOut?: number;
}

/** Input for a held session, and the reader that tells from its output so far whether it has ended. */
export interface SentInput {
  input: string;
  /** The result once `output` (everything printed since the input was sent) holds all of it; else undefined. */
  read(output: string): RunResult | undefined;
}

export interface HoldResult extends RunResult {
  release(): Promise<void>;
  /**
   * Sends more input to the held session, when the held script reads further commands (the run
   * lock's does: remote/lock.ts `servedScript`): no new session, no second sudo. `timeoutSec`
   * bounds the wait: past it (and a grace), the session is closed.
   */
  send?(sent: SentInput, timeoutSec: number): Promise<RunResult>;
}

export interface ConnectionStats {
  connections: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface Connection {
  /** Inventory name. */
  readonly host: string;
  /** The login user on the host. */
  readonly user: string;
  /**
   * Runs a /bin/sh script on the host, in `/` (a directory every user can read), with a timeout.
   * The script travels on standard input (`sh -s`), never on a command line. Standard output and
   * standard error are kept apart. Never rejects for a non-zero exit: look at `code`.
   */
  run(script: string, options?: ExecOptions): Promise<RunResult>;
  /**
   * Runs a script like `run`, with no timeout, and keeps its standard input open after it:
   * resolves with what it printed before a line equal to `holdUntil` (or with its exit status
   * if it ended first); the script may then wait on its input until `release()`. Holds the run lock.
   */
  hold(script: string, holdUntil: string, options?: ExecOptions): Promise<HoldResult>;
  /** A TCP stream to host:port opened from the remote host (SSH port forwarding). */
  forward(host: string, port: number): Promise<Duplex>;
  close(): Promise<void>;
  readonly stats: ConnectionStats;
}
