// The run lock of one user on one host (SPEC 4): an flock held by a remote shell for as long as
// the run's SSH connection lives, so it cannot go stale — if this process or the connection
// dies, sshd ends the shell and the kernel drops the lock. It lives in the lock user's own home,
// in a 0700 directory: no other local user can create, replace, hold or even open it, and
// nothing there is followed if it is a link or opened if it is not a regular file. The shell that
// takes the lock also runs the host's first operation (its facts): no extra round trip.

import type { RunResult, SentInput } from '../connection.ts';
import { frame, type Output } from './frame.ts';
import { nonce, withInput } from './shell.ts';

export type LockOutcome =
  | { state: 'held' }
  /** Another session of this same run holds it (one machine under two inventory names). */
  | { state: 'self' }
  /** Another run holds it and did not let go within the wait. */
  | { state: 'busy'; holder: string }
  /** The lock cannot be used (its directory is not safe); the message says why. */
  | { state: 'refused'; reason: string };

export interface LockRequest {
  runId: string;
  /** Who holds it, shown to a run that has to wait (no secret, no control characters). */
  holder: string;
  /** Seconds to wait for another run's lock; 0: only long enough to tell our own run from another. */
  waitSec: number;
  /** Seconds the first operation may run once the lock is held (the lock's own wait is waitSec). */
  timeoutSec?: number;
  /** The user who takes the lock (its home holds it); or, in tests, `home`: that directory. */
  user?: string;
  home?: string;
}

export interface LockScript {
  script: string;
  /** The line printed once the lock is held and the first operation has run. */
  heldMarker: string;
  read(stdout: string): { lock: LockOutcome; body?: Output };
}

/** Removes control characters (a holder line is written by whoever holds the lock). */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, 300);
}

// The home comes from the password database through the shell's own ~user (no process: every
// host runs this at the start of every run); the checks are test(1) builtins.
const lockDir = (home: string) => [
  `h=${home}`,
  '[ -n "$h" ] && [ -d "$h" ] || { echo "#lock refused no home directory to keep the run lock in"; exit 0; }',
  'd="$h/.pem-settings"',
  '[ ! -L "$d" ] || { echo "#lock refused $d is a symbolic link"; exit 0; }',
  '[ -d "$d" ] || mkdir -m 700 "$d" 2>/dev/null || [ -d "$d" ] || { echo "#lock refused cannot create $d"; exit 0; }',
  '[ ! -L "$d" ] && [ -O "$d" ] || { echo "#lock refused $d is not owned by the user taking the lock"; exit 0; }',
  'f="$d/lock"',
  '[ ! -L "$f" ] || { echo "#lock refused $f is a symbolic link"; exit 0; }',
  '[ ! -e "$f" ] || [ -f "$f" ] || { echo "#lock refused $f is not a regular file"; exit 0; }',
  'exec 9>>"$f" || { echo "#lock refused cannot open $f"; exit 0; }',
];

/**
 * While the lock is held, the session's shell reads on from its standard input: each script the
 * run sends it (`servedScript`) is one more command of that shell — the later steps on this host
 * need no new session and no second sudo — and the shell ends, letting go of the lock, when its
 * standard input ends.
 */
const SERVE = 'exec 4>&1';

/**
 * What the run sends a held session to run `script`, and how its output is read: one command for
 * the session's shell, which runs the script under timeout(1) in a shell of its own (its text in
 * a here-document: it reads nothing else, and nothing it does ends the session), its standard
 * output passed through, then a line `#<nonce> ran STATUS STDERR-BASE64`. `heldMarker` is the
 * session's (LockScript.heldMarker).
 */
export function servedScript(heldMarker: string, script: string, timeoutSec: number): SentInput {
  const seconds = Math.max(1, Math.ceil(timeoutSec));
  const ran = `\n${heldMarker.replace(/ held$/, ' ran ')}`;
  const input = [
    // Without fd 9, the lock: nothing a script starts (a daemon) can hold the run lock after the run.
    withInput(`pems_e=$( timeout -k 5 ${seconds} /bin/sh -s 2>&1 >&4 4>&- 9>&-`, script),
    '); pems_s=$?',
    '[ -z "$pems_e" ] || pems_e=$(printf \'%s\' "$pems_e" | base64 -w0)',
    `printf '\\n#%s ran %s %s\\n' ${heldMarker.replace(/^#/, '').replace(/ held$/, '')} "$pems_s" "$pems_e"`,
    '',
  ].join('\n');
  return {
    input,
    read(output): RunResult | undefined {
      const at = output.indexOf(ran);
      const end = at < 0 ? -1 : output.indexOf('\n', at + ran.length);
      if (end < 0) return undefined;
      const [status = '255', err = ''] = output.slice(at + ran.length, end).split(' ');
      const code = Number(status);
      // timeout(1) exits 124 when it stopped the script (137 when it had to kill it).
      return { stdout: output.slice(0, at), stderr: Buffer.from(err, 'base64').toString('utf8'), code,
        ...(code === 124 || code === 137 ? { timedOut: seconds } : {}) };
    },
  };
}

export function lockScript(body: string, request: LockRequest): LockScript {
  const n = nonce(`lock\u0000${body}`);
  const heldMarker = `#${n} held`;
  // Like every remote command, the first operation has a timeout: under timeout(1), its text on
  // that shell's standard input (a here-document: the session's own input is for what comes later).
  const framed = frame([request.timeoutSec === undefined ? body : withInput(`timeout -k 5 ${request.timeoutSec} /bin/sh -s 9>&-`, body)]);
  const holder = printable(`run ${request.runId} ${request.holder}`).replace(/'/g, '');
  const script = [
    'set -u',
    ...lockDir(request.home ?? (request.user && /^[a-z_][a-z0-9_.-]*$/i.test(request.user) ? `~${request.user}` : '$HOME')),
    'got=',
    'if flock -n 9; then got=1; else',
    `  end=$(( $(date +%s) + ${Math.max(1, request.waitSec)} ))`,
    '  while :; do',
    '    who=$(head -c 300 "$f" 2>/dev/null | tr -cd "[:print:]")',
    `    case "$who" in 'run ${request.runId} '*) got=self; break;; esac`,
    '    [ "$(date +%s)" -lt "$end" ] || break',
    '    if flock -w 1 9; then got=1; break; fi',
    '  done',
    'fi',
    'case "$got" in',
    `  1) printf '%s\\n' '${holder}' > "$f"; echo "#lock held";;`,
    '  self) echo "#lock self";;',
    '  *) echo "#lock busy $who"; exit 0;;',
    'esac',
    framed.script,
    SERVE,
    `echo '${heldMarker}'`,
    // The shell reads this script from the same standard input as what it is sent later: the
    // last line must be complete, or the shell would read the first script sent as its own.
    '',
  ].join('\n');
  return {
    script,
    heldMarker,
    read(stdout) {
      const line = /^#lock (\w+) ?(.*)$/m.exec(stdout);
      const [, state = '', rest = ''] = line ?? [];
      const lock: LockOutcome = state === 'held' ? { state } : state === 'self' ? { state }
        : state === 'busy' ? { state, holder: printable(rest) || 'unknown' }
          : { state: 'refused', reason: printable(rest) || 'the lock script printed nothing' };
      const body = framed.split(stdout)[0];
      return { lock, ...(body ? { body } : {}) };
    },
  };
}
