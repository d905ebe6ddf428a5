// SQL on a backend through psql, run as the cluster's OS user: statements on standard input,
// never on a command line; only standard output is read as data (psql's notices and warnings
// go to standard error and stay there).

import { OpError, failure, type RemoteOp } from './op.ts';
import { shellQuote, withInput } from './shell.ts';

export interface PsqlTarget {
  port: number;
  /** Socket directory (pg_socket_dir); default: psql's own. */
  socketDir?: string;
  /** Where psql lives (pg_bin_dir); default: PATH, else the running server's bin directory. */
  binDir?: string;
}

/** Exit statuses of psql scripts, shared with their readers. */
export const PSQL_EXIT = { noPsql: 3 } as const;

/**
 * Shell: on Debian, /usr/bin/psql is pg_wrapper, a Perl program whose start costs five times what
 * psql's does, on every call. For psql it runs the newest installed psql, with the socket
 * directory of the cluster on the port asked for: when that socket is where psql looks by
 * default (or where pg_socket_dir says), that same psql is run directly. Builtins only.
 */
function skipPgWrapper(t: PsqlTarget): string[] {
  const socket = `${t.socketDir ?? '/var/run/postgresql'}/.s.PGSQL.${t.port}`;
  return [
    `if [ "$PSQL" = /usr/bin/psql ] && [ -L "$PSQL" ] && [ -f /usr/share/postgresql-common/pg_wrapper ] && [ -S ${shellQuote(socket)} ]; then`,
    '  newest=0',
    '  for p in /usr/lib/postgresql/*/bin/psql; do v=${p#/usr/lib/postgresql/}; v=${v%%/*}',
    '    case "$v" in *[!0-9]*|"") continue;; esac',
    '    if [ -x "$p" ] && [ "$v" -gt "$newest" ]; then newest=$v; PSQL=$p; fi',
    '  done',
    'fi',
  ];
}

/** Shell: sets PSQL to pg_bin_dir's psql, else PATH's, else the one beside the running server. */
export function findPsql(t: PsqlTarget): string {
  if (t.binDir) {
    return `PSQL=${shellQuote(t.binDir + '/psql')}; [ -x "$PSQL" ] || { echo "psql not found at $PSQL (pg_bin_dir)" >&2; exit ${PSQL_EXIT.noPsql}; }`;
  }
  return [
    'PSQL=$(command -v psql 2>/dev/null || true)',
    ...skipPgWrapper(t),
    'if [ -z "$PSQL" ]; then',
    // As the cluster's OS user we can read /proc/PID/exe of exactly its own processes: the server.
    '  for exe in /proc/[0-9]*/exe; do t=$(readlink "$exe" 2>/dev/null) || continue',
    '    case "$t" in */postgres|*/edb-postgres|*/postmaster) d=${t%/*}; if [ -x "$d/psql" ]; then PSQL="$d/psql"; break; fi;; esac',
    '  done',
    'fi',
    `[ -n "$PSQL" ] || { echo "psql is not on PATH and no running server of this user was found; set pg_bin_dir" >&2; exit ${PSQL_EXIT.noPsql}; }`,
  ].join('\n');
}

/** The psql command line (no statement on it): unaligned, tuples only, stop at the first error. */
export function psqlCommand(t: PsqlTarget, database = 'postgres'): string {
  return `PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -At -v ON_ERROR_STOP=1 ${t.socketDir ? `-h ${shellQuote(t.socketDir)} ` : ''}-p ${t.port} -d ${shellQuote(database)}`;
}

export interface PsqlOutput {
  /** The psql that ran. */
  psql: string;
  stdout: string;
  stderr: string;
  code: number;
}

/** Like runPsql, but hands back a failed run too (the caller reads how far it got). */
export function runPsqlRaw(t: PsqlTarget, sql: string, database = 'postgres'): RemoteOp<PsqlOutput> {
  return {
    script: ['set -u', findPsql(t), 'echo "#psql $PSQL"', withInput(psqlCommand(t, database), sql)].join('\n'),
    read(out) {
      const m = /^#psql (.*)\n/.exec(out.stdout);
      return { ...out, psql: m?.[1] ?? '', stdout: m ? out.stdout.slice(m[0].length) : out.stdout };
    },
  };
}

/** Runs a psql script (standard input): what it printed on standard output, or the failure. */
export function runPsql(t: PsqlTarget, sql: string, database = 'postgres'): RemoteOp<PsqlOutput> {
  const raw = runPsqlRaw(t, sql, database);
  return {
    script: raw.script,
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'psql'), out.code);
      return raw.read(out);
    },
  };
}
