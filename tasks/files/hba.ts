// The one writer of pg_hba.conf, for deploy and rollback alike: replace the file (only if it is
// still what the facts read; a link is followed; a backup is kept), have the server check it
// through pg_hba_file_rules (an invalid file is put back at once, the backup removed, nothing
// reloaded), then reload and confirm the server loaded it — and, for a rule added, that the
// rule is among the server's rules. Everything runs as the cluster's OS user.

import type { Connection } from '../../src/connection.ts';
import { HostError } from '../../src/errors.ts';
import { OpError, failure, readOp, runOp, sequence, type RemoteOp } from '../../src/remote/op.ts';
import { findPsql, psqlCommand } from '../../src/remote/psql.ts';
import { sha256 as sha } from '../../src/remote/read-files.ts';
import { deleteFile, replaceFile, type Replaced } from '../../src/remote/replace-file.ts';
import { withInput } from '../../src/remote/shell.ts';
import { psqlTarget } from '../facts/backend.ts';
import type { BackendSettings } from '../settings.ts';
import { backupSuffix } from './backup.ts';

export interface HbaWrite {
  /** pg_hba.conf as the server names it (it may be a link). */
  hbaFile: string;
  /** The bytes the facts read: the file must still be them. */
  before: Buffer;
  beforeSha256: string;
  after: Buffer;
  /** 1-based lines of the new file that must be among the server's rules after the reload. */
  addedLines: number[];
  serverMajor: number;
}

/** Exit statuses of the check-and-reload script, shared with its reader. */
export const RELOAD_EXIT = { invalid: 20, cannotCheck: 21, notReloaded: 22, ruleNotLoaded: 23 } as const;

/** Checks the file the server would load, reloads, and waits until the server has. */
export function checkAndReload(b: BackendSettings, addedLines: number[], serverMajor: number): RemoteOp<void> {
  const psql = psqlCommand(psqlTarget(b));
  // From Postgres 16 the view also lists the rules of included files: count only this file's.
  const sameFile = serverMajor >= 16 ? ` AND file_name = current_setting('hba_file')` : '';
  const lines = addedLines.length ? addedLines.join(', ') : '0';
  const E = RELOAD_EXIT;
  // One psql session checks the file and, only when it is valid, asks for the reload; then new
  // sessions (a new server process sees the postmaster's reload) wait until it is done.
  const checkThenReload = [
    'SELECT coalesce(string_agg(line_number || \': \' || error, \'; \' ORDER BY line_number), \'-\') AS pems_errors,',
    '  pg_conf_load_time() AS pems_before, count(*) = 0 AS pems_valid FROM pg_hba_file_rules WHERE error IS NOT NULL \\gset',
    '\\echo :pems_errors',
    '\\echo :pems_before',
    '\\if :pems_valid',
    'SELECT pg_reload_conf();',
    '\\endif',
  ].join('\n');
  const script = [
    'set -u',
    findPsql(psqlTarget(b)),
    withInput(`state=$(${psql}`, checkThenReload) + `\n) || { echo "the server could not check pg_hba.conf" >&2; exit ${E.cannotCheck}; }`,
    // The three lines into variables with builtins (a here-document, not a process per line).
    'errors=; before=; reloaded=',
    '{ IFS= read -r errors; IFS= read -r before; IFS= read -r reloaded; } <<PEMS_STATE\n$state\nPEMS_STATE',
    `[ "$errors" = - ] || { printf '%s\\n' "$errors"; exit ${E.invalid}; }`,
    `[ "$reloaded" = t ] || { echo "the server could not be asked to reload" >&2; exit ${E.cannotCheck}; }`,
    'i=0; now=',
    'while [ $i -lt 500 ]; do',
    withInput(`  now=$(${psql} -v before="$before"`, `SELECT (pg_conf_load_time() > :'before'::timestamptz)::text || ' ' || (SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND type = 'hostssl' AND line_number IN (${lines})${sameFile});`) + '\n)',
    '  case "$now" in true*) break;; esac; i=$((i+1)); sleep 0.01',
    'done',
    `case "$now" in true*) ;; *) echo "the server did not reload within 5 seconds" >&2; exit ${E.notReloaded};; esac`,
    ...(addedLines.length ? [`[ "\${now#true }" = ${addedLines.length} ] || { echo "the rule is not among the server's rules after the reload" >&2; exit ${E.ruleNotLoaded}; }`] : []),
  ].join('\n');
  return {
    script,
    read(out) {
      if (out.code === E.invalid) throw new OpError(`the server finds the new file invalid: ${out.stdout.trim()}`, out.code);
      if (out.code !== 0) throw new OpError(failure(out, 'the reload'), out.code);
    },
  };
}

/**
 * Puts a new pg_hba.conf in place and reloads. `written` is called as soon as the new file is in
 * place and valid, whatever the reload then does: from then on the file has changed.
 */
export async function writeHbaFile(conn: Connection, b: BackendSettings, w: HbaWrite, runId: string, step: string,
  written: (r: Replaced) => void): Promise<void> {
  const as = { user: b.pgOsUser };
  const replace = replaceFile({ path: w.hbaFile, expect: { sha256: w.beforeSha256 }, bytes: w.after, backupSuffix: backupSuffix(runId), tempStem: '.pg_hba' });
  const check = checkAndReload(b, w.addedLines, w.serverMajor);
  // One round trip: the check and reload run only once the new file is in place.
  const [replacedOut, checkedOut] = await runOp(conn, sequence(replace, check), {
    ...as, step, ifLost: `${w.hbaFile} holds either its old or its new content (one rename), and the server may not have reloaded it`,
  });
  const replaced = readOp(conn.host, step, replace, replacedOut ?? { stdout: '', stderr: 'the replacement did not run', code: 255 });
  try {
    readOp(conn.host, step, check, checkedOut ?? { stdout: '', stderr: 'the check and reload did not run', code: 255 });
  } catch (e) {
    if (!(e instanceof HostError) || !e.reason.startsWith('the server finds the new file invalid')) {
      written(replaced);
      throw e;
    }
    // Put back as it was; then nothing changed, and no backup stays behind either.
    await runOp(conn, replaceFile({ path: replaced.target, expect: { sha256: sha(w.after) }, bytes: w.before, tempStem: '.pg_hba' }), { ...as, step });
    if (replaced.backup) await runOp(conn, deleteFile(replaced.backup), { ...as, step });
    throw new HostError(conn.host, step, `${e.reason}; the file was put back as it was and nothing was reloaded`);
  }
  written(replaced);
}
