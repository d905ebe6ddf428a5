// Where a run keeps the copy of a file it replaces: beside it, named after the run, so the run
// record can name it and rollback can find it. (Never named after anything secret.)
export function backupPath(file: string, runId: string): string {
  return `${file}.pem-settings-${runId}.bak`;
}
