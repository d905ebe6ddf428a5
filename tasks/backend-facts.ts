// Facts of one backend (SPEC 4 stage 1), in one round trip run as the cluster's OS user:
// which psql, the server's version / recovery state / hba_file / ssl, the pg_hba.conf bytes,
// and on the primary the catalog facts the database stage plans from.

import { createHash } from 'node:crypto';
import { heredoc, shellQuote, type RunResult } from '../src/connection.ts';
import { HostError } from '../src/errors.ts';
import { databaseFacts, type DbFacts, type DbTarget } from './database/facts.ts';
import type { BackendSettings } from './settings.ts';

export interface BackendFacts {
  psql: string;
  serverVersionNum: number;
  serverVersion: string;
  inRecovery: boolean;
  hbaFile: string;
  ssl: boolean;
  hbaText: string;
  hbaSha256: string;
  /** Catalog facts; only read on the primary. */
  db?: DbFacts;
}

export class BackendFactsError extends Error {}

const SERVER_SQL = `SELECT current_setting('server_version_num');
SELECT current_setting('server_version');
SELECT pg_is_in_recovery();
SELECT current_setting('hba_file');
SELECT current_setting('ssl');`;

/** psql invocation prefix, as a shell fragment using $PSQL. Statements always come on stdin. */
export function psqlCommand(b: Pick<BackendSettings, 'pgPort' | 'pgSocketDir'>, database = 'postgres'): string {
  return `"$PSQL" -X -q -At -v ON_ERROR_STOP=1 ${b.pgSocketDir ? `-h ${shellQuote(b.pgSocketDir)} ` : ''}-p ${b.pgPort} -d ${shellQuote(database)}`;
}

/** Shell fragment that sets PSQL: pg_bin_dir, else PATH, else the running server's own bin directory. */
export function findPsql(b: Pick<BackendSettings, 'pgBinDir'>): string {
  if (b.pgBinDir) return `PSQL=${shellQuote(b.pgBinDir + '/psql')}; [ -x "$PSQL" ] || { echo "psql not found at $PSQL (pg_bin_dir)" >&2; exit 3; }`;
  return [
    'PSQL=$(command -v psql 2>/dev/null || true)',
    'if [ -z "$PSQL" ]; then',
    // As the cluster's OS user we can read /proc/PID/exe of exactly its own processes: the server.
    '  for exe in /proc/[0-9]*/exe; do t=$(readlink "$exe" 2>/dev/null) || continue',
    '    case "$t" in */postgres|*/edb-postgres|*/postmaster) d=${t%/*}; if [ -x "$d/psql" ]; then PSQL="$d/psql"; break; fi;; esac',
    '  done',
    'fi',
    '[ -n "$PSQL" ] || { echo "psql is not on PATH and no running server of this user was found; set pg_bin_dir" >&2; exit 3; }',
  ].join('\n');
}

export function backendFactsScript(b: BackendSettings, target: DbTarget): string {
  const server = heredoc(SERVER_SQL);
  const dbFacts = heredoc(databaseFacts.script(target));
  return [
    'set -u',
    findPsql(b),
    'echo "#psql $PSQL"',
    `server=$(${psqlCommand(b)} ${server.open}`,
    `${server.body})`.replace(/\n\)$/, '\n)'),
    '[ $? -eq 0 ] || exit 4',
    'echo "#server"; printf "%s\\n" "$server"',
    `hba=${b.pgHbaFile ? shellQuote(b.pgHbaFile) : '$(printf "%s\\n" "$server" | sed -n 4p)'}`,
    'echo "#hba $hba"',
    'base64 -w0 < "$hba" || exit 5',
    'echo',
    'if [ "$(printf "%s\\n" "$server" | sed -n 3p)" = f ]; then',
    '  echo "#db"',
    `  ${psqlCommand(b)} ${dbFacts.open}`,
    `${dbFacts.body}  [ $? -eq 0 ] || exit 6`,
    'fi',
  ].join('\n');
}

export function parseBackendFacts(stdout: string): BackendFacts {
  const lines = stdout.split('\n');
  const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
  const psqlLine = lines[at('#psql ')];
  const serverAt = at('#server');
  const hbaAt = at('#hba ');
  if (!psqlLine || serverAt < 0 || hbaAt < 0) throw new BackendFactsError('the facts script printed something unexpected');
  const [versionNum, version, recovery, hbaFile, ssl] = lines.slice(serverAt + 1, serverAt + 6);
  const hbaText = Buffer.from(lines[hbaAt + 1] ?? '', 'base64').toString('utf8');
  const dbAt = at('#db');
  const facts: BackendFacts = {
    psql: psqlLine.slice(6),
    serverVersionNum: Number(versionNum),
    serverVersion: version ?? '',
    inRecovery: recovery === 't',
    hbaFile: lines[hbaAt]!.slice(5) || hbaFile || '',
    ssl: ssl === 'on',
    hbaText,
    hbaSha256: sha256(hbaText),
  };
  if (dbAt >= 0) facts.db = databaseFacts.parse(lines.slice(dbAt + 1).join('\n'));
  return facts;
}

/** The facts from the script's result, or the host's failure in the operator's words. */
export function backendFactsFrom(host: string, result: RunResult, hint?: string): BackendFacts {
  if (result.code !== 0) throw new HostError(host, 'facts', result.stderr.trim() || `the facts script exited with ${result.code}`, hint);
  try {
    return parseBackendFacts(result.stdout);
  } catch (e) {
    if (e instanceof BackendFactsError || (e as Error).name === 'DbFactsError') throw new HostError(host, 'facts', (e as Error).message);
    throw e;
  }
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Exactly one primary among the backends whose facts we have, or a clear message why not. */
export function primaryOf(facts: Map<string, BackendFacts>): { primary?: string; problem?: string } {
  const primaries = [...facts].filter(([, f]) => !f.inRecovery).map(([name]) => name);
  if (primaries.length === 1) return { primary: primaries[0] };
  if (primaries.length === 0) return { problem: `no primary among the backends: ${[...facts.keys()].join(', ')} are all in recovery (standbys)` };
  return { problem: `more than one primary among the backends: ${primaries.join(', ')} are all out of recovery; a split brain, or a backend listed that does not belong to this site` };
}
