import { createHash, randomBytes } from 'node:crypto';

// Shell text for the scripts sent to hosts: every word from the inventory or a host is quoted
// here, and every payload (file bytes, SQL, a Python program) travels in a here-document whose
// delimiter cannot occur in it. Scripts go to `/bin/sh -s` on standard input, never on a command
// line, so what they carry is invisible to `ps`.

/** Quotes a word for /bin/sh: everything inside single quotes, `'` as `'\''`. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A here-document with a delimiter that cannot occur in the content: `cmd <<'TAG'` + body. */
export function heredoc(content: string): { open: string; body: string } {
  let tag = 'PEMS_EOF';
  while (content.includes(tag)) tag += '_X';
  const body = content.endsWith('\n') ? content : content + '\n';
  return { open: `<<'${tag}'`, body: `${body}${tag}` };
}

/**
 * `command <<'TAG' orElse` followed by its here-document: one piece of script. What runs when the
 * command fails must stand on the command's own line: after the body it would be read as data.
 */
export function withInput(command: string, content: string, orElse = ''): string {
  const h = heredoc(content);
  return `${command} ${h.open}${orElse ? ` ${orElse}` : ''}\n${h.body}`;
}

/** Bytes as a base64 here-document for `base64 -d` (lines of 76, as base64(1) writes them). */
export function base64Input(command: string, bytes: Buffer, orElse = ''): string {
  return withInput(command, bytes.toString('base64').replace(/(.{76})/g, '$1\n'), orElse);
}

const SALT = randomBytes(16);

/**
 * A marker for framing the output of `content`: unpredictable outside this process (data that is
 * not ours cannot forge it), and the same for the same script within it, so the code that reads
 * an operation's output can be built apart from the code that sent its script.
 */
export function nonce(content: string): string {
  return createHash('sha256').update(SALT).update(content).digest('hex').slice(0, 32);
}
