// File content is bytes end to end (SPEC 7): a file is edited as a "binary string", one
// character per byte (latin1), so every byte outside the edit survives whatever the file's
// encoding (UTF-8, Latin-1 with a coding line, anything); what is inserted is written as UTF-8
// bytes (the URI and the pg_hba.conf rule are ASCII in practice). Diffs are shown decoded as
// UTF-8 where the bytes are valid UTF-8, and as Latin-1 otherwise.

/** Bytes as a string of one character per byte, for the pure editors. */
export function bytesAsText(bytes: Buffer): string {
  return bytes.toString('latin1');
}

/** Back to bytes: exactly the bytes read, plus what the editor inserted. */
export function textAsBytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A (UTF-8) string to insert into a byte-string text. */
export function insertable(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** Bytes as an operator reads them, for diffs and messages. */
export function displayText(bytes: Buffer): string {
  const utf8 = bytes.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(bytes) ? utf8 : bytes.toString('latin1');
}
