// Framing: several operations in one script (one round trip), each one's standard output,
// standard error and exit status kept apart. Each operation's script runs in a subshell; its
// standard output passes through between two marker lines, its standard error is captured and
// sent base64 after it, with its status. The markers carry a random nonce, so output that is
// not ours (a file's bytes, a server's message) can never be read as a frame.

import { nonce } from './shell.ts';

export interface Output {
  stdout: string;
  stderr: string;
  code: number;
}

/** The script of an operation that does nothing (op.ts `nothing`): framed without a subshell. */
export const NOTHING_SCRIPT = ':';

export interface Framed {
  /** The script: each part runs in turn, framed. */
  script: string;
  /** Splits the combined output back into one Output per part (missing: the script ended early). */
  split(stdout: string): (Output | undefined)[];
}

/**
 * `parts` are complete /bin/sh scripts (they may `exit`). fd 4 is the script's real standard
 * output while a part runs: its standard output goes there, its standard error into a variable.
 * With `chained`, a part runs only when the part before it exited 0 (the rest are left missing).
 */
export function frame(parts: string[], options: { chained?: boolean } = {}): Framed {
  const n = nonce((options.chained ? ['chained', ...parts] : parts).join('\u0000'));
  const lines = ['exec 4>&1', 'pems_s=0'];
  parts.forEach((part, i) => {
    if (part === NOTHING_SCRIPT && !options.chained) {
      // An operation that does nothing needs no subshell: its empty frame.
      lines.push(`printf '#%s %s begin\\n\\n#%s %s end 0 \\n' ${n} ${i} ${n} ${i}`);
      return;
    }
    lines.push(
      ...(options.chained && i > 0 ? ['if [ "$pems_s" = 0 ]; then'] : []),
      `printf '#%s %s begin\\n' ${n} ${i}`,
      // Inside $( ), fd 1 is the capture: standard error goes there, standard output to fd 4.
      `pems_e=$( ( ${'\n'}${part}${'\n'}) 2>&1 >&4 4>&- ); pems_s=$?`,
      `if [ -n "$pems_e" ]; then pems_e=$(printf '%s' "$pems_e" | base64 -w0); fi`,
      `printf '\\n#%s %s end %s %s\\n' ${n} ${i} "$pems_s" "$pems_e"`,
    );
  });
  if (options.chained) lines.push(...parts.slice(1).map(() => 'fi'));
  lines.push('exec 4>&-');
  return { script: lines.join('\n'), split: (stdout) => splitFrames(stdout, n, parts.length) };
}

function splitFrames(stdout: string, n: string, count: number): (Output | undefined)[] {
  const out: (Output | undefined)[] = [];
  let from = 0;
  for (let i = 0; i < count; i++) {
    const begin = `#${n} ${i} begin\n`;
    const at = stdout.indexOf(begin, from);
    if (at < 0) {
      out.push(undefined);
      continue;
    }
    const endTag = `\n#${n} ${i} end `;
    const end = stdout.indexOf(endTag, at + begin.length - 1);
    if (end < 0) {
      out.push(undefined);
      continue;
    }
    const lineEnd = stdout.indexOf('\n', end + endTag.length);
    const [status = '255', err = ''] = stdout.slice(end + endTag.length, lineEnd < 0 ? undefined : lineEnd).split(' ');
    out.push({ stdout: stdout.slice(at + begin.length, end), stderr: Buffer.from(err, 'base64').toString('utf8'), code: Number(status) });
    from = lineEnd < 0 ? stdout.length : lineEnd;
  }
  return out;
}
