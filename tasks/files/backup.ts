// Where the copy of a replaced file is kept: beside it (beside the file a link leads to), named
// after the run, so the run record can name it and rollback find it.

export function backupSuffix(runId: string): string {
  return `.pem-settings-${runId}.bak`;
}
