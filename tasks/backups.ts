// What every file replacement on a host shares: the guard that the file is still what the facts
// read, and where the copy of the replaced file is kept.

/** Beside the file, named after the run, so the run record can name it and rollback find it. */
export function backupPath(file: string, runId: string): string {
  return `${file}.pem-settings-${runId}.bak`;
}

/**
 * Shell: exit 10 unless the file at `path` (a shell word: a quoted path or "$f") still has the
 * sha256 the facts read — someone else's edit since then is never overwritten.
 */
export function sameAsRead(path: string, sha256: string): string {
  return `[ -f ${path} ] && set -- $(sha256sum < ${path}) && [ "\${1:-}" = ${sha256} ] || { echo ${path}" changed since it was read; run again" >&2; exit 10; }`;
}
