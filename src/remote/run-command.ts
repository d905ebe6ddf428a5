// What an operator's command (pem_web_restart, pem_web_health) printed is only shown, never read
// as data: its last lines go into the step's message.

/** The last lines a command printed on standard error, on one line for a message. */
export function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' / ');
}
