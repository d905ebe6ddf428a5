// The one interface every task talks to a host through (STYLE 6). The SSH implementation is in
// ssh/connect.ts; tests use the real thing against the lab.

import type { Duplex } from 'node:stream';

export interface RunOptions {
  /** Run as another user through sudo (Ansible's become). */
  becomeUser?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
  /** The connection dropped before the command reported how it ended: its outcome is unknown. */
  lost?: true;
}

export interface HoldResult extends RunResult {
  release(): Promise<void>;
}

export interface ConnectionStats {
  connections: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface Connection {
  readonly host: string;
  /** The login user on the host. */
  readonly user: string;
  /**
   * Runs a /bin/sh script on the host. The script travels on standard input (`sh -s`), never on
   * a command line, so whatever it carries in here-documents (SQL, file content, verifiers) is
   * invisible to `ps`. Never rejects for a non-zero exit: look at `code`.
   */
  run(script: string, options?: RunOptions): Promise<RunResult>;
  /**
   * Runs a script like `run`, but keeps its standard input open after the script: resolves with
   * what it printed before a line equal to `holdUntil` (or with its exit status if it ended
   * first), and the script may then wait on its input (`exec cat >/dev/null`) until `release()`.
   * Used to hold the run lock for the whole run while reading facts in the same round trip.
   */
  hold(script: string, holdUntil: string, options?: RunOptions): Promise<HoldResult>;
  /** A TCP stream to host:port opened from the remote host (SSH port forwarding). */
  forward(host: string, port: number): Promise<Duplex>;
  close(): Promise<void>;
  readonly stats: ConnectionStats;
}

/** Quotes a word for /bin/sh: everything inside single quotes, `'` as `'\''`. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A here-document with a delimiter that cannot occur in the content. */
export function heredoc(content: string): { open: string; body: string } {
  let tag = 'PEMS_EOF';
  while (content.includes(tag)) tag += '_X';
  const body = content.endsWith('\n') ? content : content + '\n';
  return { open: `<<'${tag}'`, body: `${body}${tag}\n` };
}
