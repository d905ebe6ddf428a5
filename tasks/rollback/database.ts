// Rolling back the settings database on the primary (SPEC 6): give PUBLIC back the CONNECT the
// run revoked, remove the default privileges it added, and — only with --purge — dump the
// settings database to a file on the primary, then drop the database and role the run created.
// Nothing the run did not create is ever dropped. Planning is pure: catalog facts in, steps out.

import type { Change } from '../../src/change.ts';
import type { Connection } from '../../src/connection.ts';
import { HostError } from '../../src/errors.ts';
import { runOp, type RemoteOp } from '../../src/remote/op.ts';
import { findPsql, psqlCommand } from '../../src/remote/psql.ts';
import { shellQuote, withInput } from '../../src/remote/shell.ts';
import type { HostPlan } from '../../src/runner.ts';
import { psqlTarget } from '../facts/backend.ts';
import { STEP } from '../steps.ts';
import { effectiveDatabaseAcl, publicHas } from '../database/acl.ts';
import type { DbFacts } from '../database/facts.ts';
import type { DbRecord } from '../database/plan.ts';
import { quoteIdent } from '../database/sql.ts';
import type { BackendSettings } from '../settings.ts';

export interface DbRollbackChange extends Change {
  /** Statements, each run in `database`. */
  statements: string[];
  database: string;
  /** --purge: dump this database to a file first. */
  dump?: string;
}

export function planDatabaseRollback(host: string, records: DbRecord[], facts: DbFacts, purge: boolean): DbRollbackChange[] {
  const created = new Set(records.filter((r) => r.kind === 'database').map((r) => r.database));
  const roleCreated = records.find((r): r is Extract<DbRecord, { kind: 'role' }> => r.kind === 'role' && r.created)?.role;
  const dbOf = (name: string) => facts.databases.find((d) => d.name === name);
  const steps: DbRollbackChange[] = [];
  const step = (s: Omit<DbRollbackChange, 'host' | 'stage' | 'id'>) => steps.push({ host, stage: 'database', id: STEP.database(s.step), ...s });

  // CONNECT for PUBLIC, where the run took it away (on databases the run did not create).
  const regrant = records.flatMap((r) =>
    r.kind === 'revoke-connect' || (r.kind === 'connect' && r.revokedFrom === 'PUBLIC') ? [r.database] : []).filter((d) => !created.has(d));
  for (const name of [...new Set(regrant)]) {
    const db = dbOf(name);
    const missing = db !== undefined && !publicHas(effectiveDatabaseAcl(db), 'CONNECT');
    step({
      step: `connect on ${name} for PUBLIC`, target: `database ${name}`, changed: missing, database: 'postgres',
      summary: db === undefined ? `database ${name} is gone: nothing to re-grant` : missing ? `grant CONNECT on ${name} to PUBLIC again` : `PUBLIC can connect to ${name}`,
      statements: missing ? [`GRANT CONNECT ON DATABASE ${quoteIdent(name)} TO PUBLIC;`] : [],
    });
  }

  // Default privileges the run added, unless the database goes altogether.
  for (const r of records) {
    if (r.kind !== 'default-privileges') continue;
    if (purge && created.has(r.database)) continue;
    const acl = facts.settingsDb?.database === r.database
      ? facts.settingsDb.defaultAcls.find((a) => a.objectType === r.objectType && a.schema === null)?.acl ?? []
      : [];
    const still = r.privileges.filter((p) => acl.some((a) => a.grantee === r.grantee && a.privilege === p));
    step({
      step: `default privileges on ${r.objectType} for ${r.grantee}`, target: `database ${r.database}`, changed: still.length > 0, database: r.database,
      summary: still.length ? `revoke the default ${still.join(', ')} on ${r.objectType} of ${r.forRole} from ${r.grantee}` : `no default privileges of the run left on ${r.objectType}`,
      statements: still.length ? [`ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(r.forRole)} REVOKE ${still.join(', ')} ON ${r.objectType.toUpperCase()} FROM ${quoteIdent(r.grantee)};`] : [],
    });
  }

  if (purge) {
    for (const name of created) {
      const exists = dbOf(name) !== undefined;
      step({
        step: `drop database ${name}`, target: `database ${name}`, changed: exists, database: 'postgres',
        summary: exists ? `dump ${name} to a file on this host, then drop it` : `database ${name} is gone already`,
        statements: exists ? [`DROP DATABASE ${quoteIdent(name)};`] : [], ...(exists ? { dump: name } : {}),
      });
    }
    if (roleCreated) {
      const exists = facts.role !== null;
      step({
        step: `drop role ${roleCreated}`, target: `role ${roleCreated}`, changed: exists, database: 'postgres',
        summary: exists ? `drop role ${roleCreated}` : `role ${roleCreated} is gone already`,
        statements: exists ? [`DROP ROLE ${quoteIdent(roleCreated)};`] : [],
      });
    }
  }
  return steps.map((s) => (s.changed ? { ...s, sql: s.statements.map((q) => (s.database === 'postgres' ? q : `-- in database ${s.database}\n${q}`)) } : s));
}

/** Shell: the dump file, in the home directory of the user running it (runuser keeps root's $HOME). */
export function dumpPath(database: string, runId: string): string {
  return `$(getent passwd "$(id -u)" | cut -d: -f6)/${database}-before-rollback-${runId}.dump`;
}

/** One rollback step's script: with --purge, pg_dump first (nothing is dropped if it fails). */
function rollbackStepOp(backend: BackendSettings, c: DbRollbackChange, runId: string): RemoteOp<{ dump?: string; failure?: string }> {
  const lines = ['set -u', findPsql(psqlTarget(backend))];
  if (c.dump) {
    // pg_dump lives beside psql; the custom format restores with pg_restore, one object at a time if need be.
    lines.push(`umask 077; dump="${dumpPath(c.dump, runId)}"`,
      `PGCONNECT_TIMEOUT=10 "\${PSQL%/*}/pg_dump" -Fc ${backend.pgSocketDir ? `-h ${shellQuote(backend.pgSocketDir)} ` : ''}-p ${backend.pgPort} -f "$dump" ${shellQuote(c.dump)} || { echo "pg_dump of ${c.dump} failed: nothing dropped" >&2; exit 30; }`,
      'echo "#dump $dump"');
  }
  const sql = `\\set ON_ERROR_STOP on\n${c.database === 'postgres' ? '' : `\\connect ${quoteIdent(c.database)}\n`}${c.statements.join('\n')}\n`;
  lines.push(withInput(`${psqlCommand(psqlTarget(backend))} >/dev/null`, sql));
  return {
    script: lines.join('\n'),
    read(out) {
      const dump = /^#dump (.+)$/m.exec(out.stdout)?.[1];
      return { ...(dump ? { dump } : {}), ...(out.code !== 0 ? { failure: out.stderr.trim() || `psql exited with ${out.code}` } : {}) };
    },
  };
}

export function databaseRollbackPlan(conn: Connection, backend: BackendSettings, changes: DbRollbackChange[], runId: string): HostPlan {
  return {
    changes,
    async apply(changed, log) {
      for (const c of changes.filter((x) => changed.includes(x))) {
        const r = await runOp(conn, rollbackStepOp(backend, c, runId), { user: backend.pgOsUser, step: c.step });
        if (r.failure) {
          if (r.dump) log.done(c.id, { record: { dumped: r.dump, dropped: false } });
          throw new HostError(conn.host, c.step, r.failure, r.dump ? `the database was dumped to ${r.dump}` : undefined);
        }
        log.done(c.id, {
          record: { statements: c.statements, ...(r.dump ? { dumped: r.dump } : {}) },
          ...(r.dump ? { summary: `dumped ${c.dump} to ${r.dump} (on ${conn.host}), then dropped it` } : {}),
        });
      }
    },
  };
}
