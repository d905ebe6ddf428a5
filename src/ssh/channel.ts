// One command on one SSH channel: the command line sshd runs (become, timeout, the directory it
// starts in) and the dialogue on the channel (sudo's password prompt, the script on standard
// input, the byte counters, a held command's line, how it ended). ssh/connect.ts opens the
// connection; this is what happens on each channel of it.

import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel } from 'ssh2';
import type { ConnectionStats, RunResult, SentInput } from '../connection.ts';
import { shellQuote } from '../remote/shell.ts';

const BECOME_MARK = '__pem_settings_become_ok__';
const SUDO_PROMPT = '[pem-settings sudo password]';

export interface CommandInput {
  /** The login user. */
  login: string;
  /** Another user to run as, if any. */
  user?: string;
  timeoutSec?: number;
  /** sudo will be given a password on standard input when it asks. */
  askPassword: boolean;
}

/**
 * The command line sshd runs: always `/bin/sh -s` reading the script from standard input, started
 * in `/` (a user switched to keeps the caller's directory, and psql run as postgres from root's
 * home complains on standard error), under timeout(1) (which stops the whole process group), as
 * another user through runuser when logged in as root (no sudo needed: many database servers
 * have none) and through sudo otherwise. It never carries a secret or the script itself.
 */
export function remoteCommand(c: CommandInput): string {
  const shell = c.timeoutSec === undefined ? '/bin/sh -s' : `timeout -k 5 ${c.timeoutSec} /bin/sh -s`;
  if (c.user === undefined) return `cd / && exec ${shell}`;
  const u = shellQuote(c.user);
  if (c.login === 'root') return `cd / && exec runuser -u ${u} -- ${shell}`;
  if (!c.askPassword) return `cd / && exec sudo -n -H -u ${u} -- ${shell}`;
  // sudo reads the password from standard input when it asks; the marker tells us the shell
  // itself has started, so the script never goes to sudo (nor the password to the shell).
  const inner = `echo ${BECOME_MARK} >&2; exec ${shell}`;
  return `cd / && exec sudo -S -p ${shellQuote(SUDO_PROMPT)} -H -u ${u} -- /bin/sh -c ${shellQuote(inner)}`;
}

/** What a command on a channel settles with: its result, and how to let a held command finish. */
export interface ChannelOutcome {
  result: RunResult;
  release: () => Promise<void>;
  send?: (sent: SentInput, timeoutSec: number) => Promise<RunResult>;
}

/** What one command needs besides its channel. */
export interface ChannelCommandSpec {
  script: string;
  /** The line that settles a held command (see SshConnection.exec). */
  holdUntil?: string;
  timeoutSec?: number;
  /** The password for sudo's prompt, when sudo will ask for one. */
  password?: string;
  /** Set when becoming another user: turns the standard error of a failed command into advice. */
  becomeFailure?: (stderr: string, refused: boolean) => string;
}

/**
 * One command on one ssh2 channel: gives it the script (after sudo's password, if any), counts
 * the bytes both ways, collects its output and settles exactly once — when a held command prints
 * its line, or when the channel closes.
 */
export class ChannelCommand {
  /** Standard output so far, decoded as it comes (a character split between chunks waits in the decoder). */
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  private errText = '';
  private settled = false;
  private safetyFired = false;
  private readonly sudo: SudoDialogue;
  private readonly closed: Promise<void>;
  /** After the held line: where the output of the next script sent starts, and who waits for it. */
  private heldAt = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: ((text: string | undefined) => void) | undefined;

  constructor(private readonly channel: ClientChannel, private readonly counts: ConnectionStats,
    private readonly spec: ChannelCommandSpec, private readonly settle: (outcome: ChannelOutcome) => void) {
    this.sudo = new SudoDialogue(channel, spec.password);
    this.closed = new Promise<void>((done) => channel.on('close', () => done()));
  }

  start(): void {
    this.armSafetyTimer();
    this.channel.on('data', (d: Buffer) => this.onStdout(d));
    this.channel.stderr.on('data', (d: Buffer) => this.onStderr(d));
    this.channel.on('close', (code: number | null | undefined) => this.onClose(code));
    // Without a password to give, standard input belongs to the script from the start.
    if (this.sudo.started) this.sendScript();
  }

  // timeout(1) on the host stops the command; should the host not even manage that, the
  // channel is closed from here a little later, so no step waits forever.
  private armSafetyTimer(): void {
    const { timeoutSec } = this.spec;
    const safety = timeoutSec === undefined ? undefined : setTimeout(() => {
      this.safetyFired = true;
      this.channel.close();
    }, (timeoutSec + 15) * 1000);
    void this.closed.then(() => clearTimeout(safety));
  }

  /** Ends a held command's standard input, so its script can finish, and waits for the channel to close. */
  private async release(): Promise<void> {
    this.channel.end();
    await this.closed;
  }

  private sendScript(): void {
    const data = Buffer.from(this.spec.script);
    this.counts.bytesSent += data.length;
    if (this.spec.holdUntil) this.channel.write(data);
    else this.channel.end(data);
  }

  private onStdout(d: Buffer): void {
    this.counts.bytesReceived += d.length;
    this.text += this.decoder.write(d);
    if (this.spec.holdUntil && !this.settled) this.settleIfHeld(this.spec.holdUntil);
    else if (this.waiting) this.waiting(this.text);
  }

  /** More input for the held session; `sent.read` says when its output is complete (see SentInput). */
  private send(sent: SentInput, timeoutSec: number): Promise<RunResult> {
    const run = this.queue.then(() => new Promise<RunResult>((resolve) => {
      const from = this.heldAt;
      // As for a command of its own: should timeout(1) on the host not stop it, the session goes.
      const safety = setTimeout(() => {
        this.safetyFired = true;
        this.channel.close();
      }, (timeoutSec + 15) * 1000);
      const settle = (result: RunResult) => {
        clearTimeout(safety);
        this.waiting = undefined;
        resolve(result);
      };
      // Called with the output so far as it grows, and with undefined when the channel closed.
      this.waiting = (text) => {
        if (text === undefined) {
          return settle(this.safetyFired ? { stdout: '', stderr: '', code: 124, timedOut: timeoutSec }
            : { stdout: '', stderr: 'the SSH connection dropped before the command finished\n', code: 255, lost: true });
        }
        const result = sent.read(text.slice(from));
        if (!result) return;
        // The session prints nothing more until it is sent something else.
        this.heldAt = text.length;
        settle(result);
      };
      const data = Buffer.from(sent.input);
      this.counts.commands++;
      this.counts.bytesSent += data.length;
      this.channel.write(data);
    }));
    this.queue = run.catch(() => {});
    return run;
  }

  /** A held command settles once `holdUntil` is printed on a line of its own; what came before is its output. */
  private settleIfHeld(holdUntil: string): void {
    const text = this.text;
    const at = text.indexOf(`${holdUntil}\n`);
    if (at >= 0 && (at === 0 || text[at - 1] === '\n')) {
      this.settled = true;
      this.heldAt = at + holdUntil.length + 1;
      this.settle({ result: { stdout: text.slice(0, at), stderr: this.errText, code: 0 }, release: () => this.release(),
        send: (sent, timeoutSec) => this.send(sent, timeoutSec) });
    }
  }

  private onStderr(d: Buffer): void {
    this.counts.bytesReceived += d.length;
    this.errText += d.toString('utf8');
    if (this.sudo.started) return;
    const { stderr, shellStarted } = this.sudo.answer(this.errText);
    this.errText = stderr;
    if (shellStarted) this.sendScript();
  }

  // ssh2 closes a channel with no exit status at all (undefined, not null as for a signal)
  // only when the connection itself went away: the command's outcome is then unknown.
  private onClose(code: number | null | undefined): void {
    this.waiting?.(undefined);
    if (this.settled) return;
    this.settled = true;
    const { timeoutSec, becomeFailure } = this.spec;
    const lost = code === undefined && !this.safetyFired;
    const status = code ?? 255;
    const stderr = lost ? `${this.errText}the SSH connection dropped before the command finished\n`
      : becomeFailure && status !== 0 ? becomeFailure(this.errText, this.sudo.refused) : this.errText;
    // timeout(1) exits 124 when it stopped the command (137 when it had to kill it).
    const timedOut = !lost && timeoutSec !== undefined && (status === 124 || status === 137 || this.safetyFired) ? timeoutSec : undefined;
    const stdout = this.text + this.decoder.end();
    this.settle({ result: { stdout, stderr, code: status, ...(lost ? { lost: true } : {}), ...(timedOut ? { timedOut } : {}) }, release: async () => {} });
  }
}

/**
 * sudo's side of a become with a password (see remoteCommand): answers sudo's prompt on the
 * channel's standard input, and tells when the shell itself has started — only then may the
 * script be sent, so the script never goes to sudo nor the password to the shell.
 */
class SudoDialogue {
  /** Whether standard input now belongs to the script; from the start when there is no password to give. */
  started: boolean;
  /** sudo asked a second time: the password was wrong. */
  refused = false;
  private sentPassword = false;

  constructor(private readonly channel: ClientChannel, private readonly password: string | undefined) {
    this.started = password === undefined;
  }

  /** Reads standard error so far; returns it without sudo's prompt and our marker, and whether the shell just started. */
  answer(stderr: string): { stderr: string; shellStarted: boolean } {
    if (this.started || this.password === undefined) return { stderr, shellStarted: false };
    let text = stderr;
    if (text.includes(SUDO_PROMPT)) {
      text = text.replace(SUDO_PROMPT, '');
      // A second prompt means the password was wrong: end input so sudo gives up instead of waiting.
      if (this.sentPassword) {
        this.refused = true;
        this.channel.end();
      } else this.channel.write(this.password + '\n');
      this.sentPassword = true;
    }
    if (text.includes(BECOME_MARK + '\n')) {
      this.started = true;
      return { stderr: text.replace(BECOME_MARK + '\n', ''), shellStarted: true };
    }
    return { stderr: text, shellStarted: false };
  }
}
