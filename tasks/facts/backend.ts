// Facts of one backend (SPEC 4 stage 1), in one psql session run as the cluster's OS user:
// the server's version, recovery state, hba_file and ssl; pg_hba.conf's bytes as the server
// reads them and whether the file changed after the server last loaded it; and the catalog
// facts the database stage plans from (read on standbys too: harmless, and they are ignored).

import { HostError } from '../../src/errors.ts';
import { OpError, type Output, type RemoteOp } from '../../src/remote/op.ts';
import { runPsql, type PsqlTarget } from '../../src/remote/psql.ts';
import { sha256 } from '../../src/remote/read-files.ts';
import { databaseFacts, type DbFacts, type DbTarget } from '../database/facts.ts';
import { quoteLiteral } from '../database/sql.ts';
import type { BackendSettings } from '../settings.ts';

export interface BackendFacts {
  psql: string;
  serverVersionNum: number;
  serverVersion: string;
  inRecovery: boolean;
  hbaFile: string;
  ssl: boolean;
  hba: Buffer;
  hbaSha256: string;
  /** pg_hba.conf was written after the server last loaded its configuration: a reload is owed. */
  hbaNewerThanLoad: boolean;
  /** Catalog facts; only on the primary. */
  db?: DbFacts;
}

export function psqlTarget(b: BackendSettings): PsqlTarget {
  return { port: b.pgPort, ...(b.pgSocketDir ? { socketDir: b.pgSocketDir } : {}), ...(b.pgBinDir ? { binDir: b.pgBinDir } : {}) };
}

function serverSql(b: BackendSettings): string {
  const hba = b.pgHbaFile ? quoteLiteral(b.pgHbaFile) : `current_setting('hba_file')`;
  return `\\set QUIET on
\\set ON_ERROR_STOP on
\\pset format unaligned
\\pset tuples_only on
SELECT json_build_object('kind', 'server',
  'version_num', current_setting('server_version_num')::int,
  'version', current_setting('server_version'),
  'recovery', pg_is_in_recovery(),
  'ssl', current_setting('ssl'),
  'hba_file', h.f,
  'hba', translate(encode(pg_read_binary_file(h.f), 'base64'), E'\\n', ''),
  'hba_newer', (pg_stat_file(h.f)).modification > pg_conf_load_time())
FROM (SELECT ${hba}::text AS f) h;
`;
}

export function backendFactsOp(b: BackendSettings, target: DbTarget): RemoteOp<BackendFacts> {
  // The catalog facts only on the primary: on a standby they were read for nothing, on the path
  // every web host waits for.
  const catalog = `SELECT NOT pg_is_in_recovery() AS pems_primary \\gset\n\\if :pems_primary\n${databaseFacts.script(target)}\\endif\n`;
  const op = runPsql(psqlTarget(b), serverSql(b) + catalog);
  return { script: op.script, read: (out) => parseBackendFacts(op.read(out)) };
}

interface ServerLine {
  version_num: number;
  version: string;
  recovery: boolean;
  ssl: string;
  hba_file: string;
  hba: string;
  hba_newer: boolean;
}

/** Pure: psql's standard output (first line the server, then the catalog) into facts. */
export function parseBackendFacts(out: { psql: string; stdout: string }): BackendFacts {
  const lines = out.stdout.split('\n').filter((l) => l.trim() !== '');
  let server: ServerLine;
  try {
    server = JSON.parse(lines[0] ?? '') as ServerLine;
  } catch {
    throw new OpError('the facts query printed something unexpected');
  }
  const hba = Buffer.from(server.hba ?? '', 'base64');
  const facts: BackendFacts = {
    psql: out.psql, serverVersionNum: server.version_num, serverVersion: server.version, inRecovery: server.recovery,
    hbaFile: server.hba_file, ssl: server.ssl === 'on', hba, hbaSha256: sha256(hba), hbaNewerThanLoad: server.hba_newer === true,
  };
  if (!facts.inRecovery) {
    try {
      facts.db = databaseFacts.parse(lines.slice(1).join('\n'));
    } catch (e) {
      throw new OpError((e as Error).message);
    }
  }
  return facts;
}

/** The facts from an opened session's output, or the host's failure in the operator's words. */
export function readBackendFacts(host: string, login: string, b: BackendSettings, target: DbTarget, out: Output): BackendFacts {
  try {
    return backendFactsOp(b, target).read(out);
  } catch (e) {
    if (!(e instanceof OpError)) throw e;
    const hint = /sudo/.test(out.stderr) ? `the SSH user ${login} must be able to run commands as ${b.pgOsUser} with sudo` : undefined;
    throw new HostError(host, 'facts', e.message, hint);
  }
}

/** Exactly one primary among the backends whose facts we have, or a clear message why not. */
export function primaryOf(facts: Map<string, BackendFacts>): { primary?: string; problem?: string } {
  const primaries = [...facts].filter(([, f]) => !f.inRecovery).map(([name]) => name);
  if (primaries.length === 1) return { primary: primaries[0] };
  if (primaries.length === 0) return { problem: `no primary among the backends: ${[...facts.keys()].join(', ')} are all in recovery (standbys)` };
  return { problem: `more than one primary among the backends: ${primaries.join(', ')} are all out of recovery; a split brain, or a backend listed that does not belong to this site` };
}
