// An operator's command (pem_web_restart, pem_web_health), run as given: it is their shell
// text, never parsed. Its output is only shown, never read as data.

import type { Output, RemoteOp } from './op.ts';

export function runCommand(command: string): RemoteOp<Output> {
  return { script: command, read: (out) => out };
}

/** The last lines a command printed on standard error, on one line for a message. */
export function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' / ');
}
