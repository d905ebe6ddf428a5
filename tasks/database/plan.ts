// The settings database plan (SPEC 1 and SPEC 4 stage 2): compare the catalog facts with the
// desired state and produce, for each item, either "ok" or the SQL that makes it so. Pure: it
// computes values and never runs anything, which is what makes --check honest.
//
// Choices worth knowing:
// - The database is owned by the superuser that creates it, not by the settings role. An owner
//   may re-grant CONNECT to PUBLIC, ALTER DATABASE SET anything, create schemas and drop the
//   database; the web app only needs to create tables in `public`, which the explicit schema
//   grant gives (SPEC 1: since PostgreSQL 15 `public` belongs to pg_database_owner, so a non-owner
//   needs USAGE, CREATE on it). It also keeps rollback --purge in the operator's hands.
// - The password travels only as a SCRAM-SHA-256 verifier computed here; `maskedSql` is the
//   same SQL with the verifier masked, for --diff and logs.
// - A missing grantee role, a pre-10 server or a settings database that refuses connections
//   cannot be fixed by this job: planDatabase throws DatabasePlanError naming the step and
//   what to do, and the runner reports it as that host's failure.

import { defaultSchemaAcl, effectiveDatabaseAcl, missingPrivileges, publicHas, roleHas } from './acl.ts';
import type { DatabaseFact, DbFacts, DbTarget } from './facts.ts';
import { scramVerifier, verifierMatches } from './scram.ts';
import { assertIdentifier, quoteIdent, quoteLiteral, quotePsqlArg } from './sql.ts';

export interface DbDesired extends DbTarget {
  /** The settings role's password (from PEM_SETTINGS_PASSWORD). Never put into SQL as is. */
  password: string;
}

export interface PlanOptions {
  /** Database that cluster-wide statements run in; `postgres` unless told otherwise. */
  maintenanceDb?: string;
  /** Fixed salt / iterations for the new verifier (tests); random salt, 4096 otherwise. */
  salt?: Buffer;
  iterations?: number;
}

/** What a run record needs to undo a step (no secrets). Null on steps that change nothing. */
export type DbRecord =
  | { kind: 'role'; role: string; created: boolean; loginGranted: boolean; passwordChanged: boolean }
  | { kind: 'database'; database: string; created: true }
  | { kind: 'connect'; database: string; revokedFrom: 'PUBLIC' | null; grantedTo: string | null }
  | { kind: 'revoke-connect'; database: string; from: 'PUBLIC' }
  | { kind: 'schema-grant'; database: string; schema: 'public'; role: string; privileges: string[] }
  | {
      kind: 'default-privileges';
      database: string;
      forRole: string;
      grantee: string;
      objectType: 'tables' | 'sequences';
      privileges: string[];
    };

export interface DbStep {
  /** Operator words, e.g. "role pem_user_settings". */
  step: string;
  /** The object concerned, e.g. "database pem". */
  target: string;
  changed: boolean;
  /** One line, no secrets: what is (or would be) done, or why it is ok. */
  summary: string;
  /** Statements to run in order, each terminated; the password only as a verifier literal. */
  sql: string[];
  /** `sql` with the verifier replaced by '********', for --diff and logs. */
  maskedSql: string[];
  /** Which database psql must be connected to for `sql`. */
  database: string;
  warnings?: string[];
  record: DbRecord | null;
}

/** The plan cannot be made: the operator must fix something first. */
export class DatabasePlanError extends Error {
  override name = 'DatabasePlanError';
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly hint?: string,
  ) {
    super(`${step}: ${reason}${hint ? ` (${hint})` : ''}`);
  }
}

const MASK = "'********'";
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
const SEQUENCE_PRIVILEGES = ['SELECT', 'UPDATE'] as const;
const SCHEMA_PRIVILEGES = ['USAGE', 'CREATE'] as const;

function ok(step: string, target: string, database: string, summary: string, warnings: string[] = []): DbStep {
  return { step, target, changed: false, summary, sql: [], maskedSql: [], database, record: null, ...(warnings.length ? { warnings } : {}) };
}

function change(
  step: string, target: string, database: string, summary: string,
  sql: string[], record: DbRecord, warnings: string[] = [], masked: string[] = sql,
): DbStep {
  return { step, target, changed: true, summary, sql, maskedSql: masked, database, record, ...(warnings.length ? { warnings } : {}) };
}

function lockOutWarning(db: DatabaseFact, except: string[]): string[] {
  const roles = (db.onlyPublicConnect ?? []).filter((r) => !except.includes(r));
  if (roles.length === 0) return [];
  return [
    `revoking CONNECT on ${db.name} from PUBLIC locks out login roles that connect only through PUBLIC: ` +
      `${roles.join(', ')} (grant them CONNECT first, or leave ${db.name} out of pem_settings_revoke_connect)`,
  ];
}

function planRole(facts: DbFacts, d: DbDesired, maint: string, o: PlanOptions): DbStep {
  const step = `role ${d.user}`;
  const verifier = scramVerifier(d.password, { salt: o.salt, iterations: o.iterations });
  const role = quoteIdent(d.user);
  const warnings: string[] = [];
  if (facts.role?.superuser) warnings.push(`role ${d.user} is a superuser; the web app needs none of that`);
  if (facts.role?.validUntil) warnings.push(`role ${d.user} has a password expiry (VALID UNTIL ${facts.role.validUntil}); logins fail after it`);
  const statement = (head: string) => ({
    sql: [`${head} PASSWORD ${quoteLiteral(verifier)};`],
    masked: [`${head} PASSWORD ${MASK};`],
  });
  if (!facts.role) {
    const s = statement(`CREATE ROLE ${role} LOGIN`);
    const record: DbRecord = { kind: 'role', role: d.user, created: true, loginGranted: true, passwordChanged: true };
    return change(step, step, maint, `create login role ${d.user} (password as a SCRAM-SHA-256 verifier)`, s.sql, record, warnings, s.masked);
  }
  const stored = facts.role.verifier.reveal();
  const passwordChanged = !verifierMatches(stored, d.password);
  const loginGranted = !facts.role.canLogin;
  if (!passwordChanged && !loginGranted) {
    return ok(step, step, maint, `role ${d.user} exists, can log in, password up to date`, warnings);
  }
  const what: string[] = [];
  if (loginGranted) what.push('allow it to log in');
  if (passwordChanged) {
    what.push(stored?.startsWith('md5') ? 'replace its md5 password with a SCRAM-SHA-256 verifier' : 'set its password (SCRAM-SHA-256 verifier)');
  }
  const head = `ALTER ROLE ${role}${loginGranted ? ' LOGIN' : ''}`;
  const s = passwordChanged ? statement(head) : { sql: [`${head};`], masked: [`${head};`] };
  const record: DbRecord = { kind: 'role', role: d.user, created: false, loginGranted, passwordChanged };
  return change(step, step, maint, `role ${d.user}: ${what.join(', ')}`, s.sql, record, warnings, s.masked);
}

function planDatabaseExists(db: DatabaseFact | undefined, d: DbDesired, maint: string): DbStep {
  const step = `database ${d.db}`;
  if (db) return ok(step, step, maint, `database ${d.db} exists (owner ${db.owner})`);
  // No OWNER clause: the superuser running it owns the database (see the header comment).
  // CREATE DATABASE cannot run inside a transaction block; renderPsqlScript knows.
  return change(step, step, maint, `create database ${d.db}, owned by the superuser`, [`CREATE DATABASE ${quoteIdent(d.db)};`], {
    kind: 'database', database: d.db, created: true,
  });
}

function planSettingsConnect(db: DatabaseFact | undefined, d: DbDesired, maint: string): DbStep {
  const step = `connect on ${d.db}`;
  const target = `database ${d.db}`;
  // A database about to be created gets the defaults: PUBLIC may connect, the role may not.
  const acl = db ? effectiveDatabaseAcl(db) : undefined;
  const revoke = !acl || publicHas(acl, 'CONNECT');
  const grant = !acl || !roleHas(acl, d.user, 'CONNECT');
  if (!revoke && !grant) return ok(step, target, maint, `only granted roles can connect to ${d.db}; ${d.user} can`);
  const sql: string[] = [];
  const what: string[] = [];
  if (revoke) {
    sql.push(`REVOKE CONNECT ON DATABASE ${quoteIdent(d.db)} FROM PUBLIC;`);
    what.push('revoke CONNECT from PUBLIC');
  }
  if (grant) {
    sql.push(`GRANT CONNECT ON DATABASE ${quoteIdent(d.db)} TO ${quoteIdent(d.user)};`);
    what.push(`grant CONNECT to ${d.user}`);
  }
  const warnings = db && revoke ? lockOutWarning(db, [d.user]) : [];
  const record: DbRecord = { kind: 'connect', database: d.db, revokedFrom: revoke ? 'PUBLIC' : null, grantedTo: grant ? d.user : null };
  return change(step, target, maint, `${d.db}: ${what.join(', ')}`, sql, record, warnings);
}

function planRevokeConnect(name: string, db: DatabaseFact | undefined, maint: string): DbStep {
  const step = `revoke connect on ${name}`;
  const target = `database ${name}`;
  if (!db) return ok(step, target, maint, `database ${name} does not exist: nothing to revoke`);
  if (!publicHas(effectiveDatabaseAcl(db), 'CONNECT')) return ok(step, target, maint, `PUBLIC cannot connect to ${name}`);
  return change(
    step, target, maint, `revoke CONNECT on ${name} from PUBLIC`,
    [`REVOKE CONNECT ON DATABASE ${quoteIdent(name)} FROM PUBLIC;`],
    { kind: 'revoke-connect', database: name, from: 'PUBLIC' },
    lockOutWarning(db, []),
  );
}

function planSchemaGrant(facts: DbFacts, d: DbDesired): DbStep {
  const step = `schema public in ${d.db}`;
  let missing: string[] = [...SCHEMA_PRIVILEGES];
  if (facts.settingsDb) {
    const schema = facts.settingsDb.publicSchema;
    if (!schema) {
      throw new DatabasePlanError(step, `database ${d.db} has no schema public`, `create it (CREATE SCHEMA public) or drop the database so deploy creates it`);
    }
    missing = missingPrivileges(schema.acl ?? defaultSchemaAcl(schema.owner), d.user, SCHEMA_PRIVILEGES);
  }
  if (missing.length === 0) return ok(step, step, d.db, `${d.user} has USAGE and CREATE on schema public`);
  return change(
    step, step, d.db, `grant ${missing.join(', ')} on schema public to ${d.user}`,
    [`GRANT ${missing.join(', ')} ON SCHEMA public TO ${quoteIdent(d.user)};`],
    { kind: 'schema-grant', database: d.db, schema: 'public', role: d.user, privileges: missing },
  );
}

function planDefaultPrivileges(facts: DbFacts, d: DbDesired, objectType: 'tables' | 'sequences'): DbStep {
  const wanted = objectType === 'tables' ? TABLE_PRIVILEGES : SEQUENCE_PRIVILEGES;
  const step = `default privileges on ${objectType} for ${d.grantee}`;
  // Only the all-schemas entry counts: that is what ALTER DEFAULT PRIVILEGES without IN SCHEMA sets.
  const entry = facts.settingsDb?.defaultAcls.find((a) => a.objectType === objectType && a.schema === null);
  const missing = missingPrivileges(entry?.acl ?? [], d.grantee, wanted);
  if (missing.length === 0) {
    return ok(step, step, d.db, `${objectType} ${d.user} creates are usable by ${d.grantee} (${wanted.join(', ')})`);
  }
  return change(
    step, step, d.db, `${d.grantee} gets ${wanted.join(', ')} on ${objectType} ${d.user} creates`,
    [`ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(d.user)} GRANT ${wanted.join(', ')} ON ${objectType.toUpperCase()} TO ${quoteIdent(d.grantee)};`],
    { kind: 'default-privileges', database: d.db, forRole: d.user, grantee: d.grantee, objectType, privileges: missing },
  );
}

/** Every item of SPEC 1's database part, in order, each ok or changed. Pure. */
export function planDatabase(facts: DbFacts, desired: DbDesired, options: PlanOptions = {}): DbStep[] {
  const maint = assertIdentifier(options.maintenanceDb ?? 'postgres', 'maintenance database');
  const d: DbDesired = {
    ...desired,
    db: assertIdentifier(desired.db, 'pem_settings_db'),
    user: assertIdentifier(desired.user, 'pem_settings_user'),
    grantee: assertIdentifier(desired.grantee, 'pem_settings_grantee'),
    revokeConnect: desired.revokeConnect.map((n) => assertIdentifier(n, 'pem_settings_revoke_connect')),
  };
  if (facts.serverVersionNum < 100000) {
    throw new DatabasePlanError('database', `server version ${facts.serverVersionNum} has no SCRAM-SHA-256`, 'PostgreSQL 10 or later is required');
  }
  if (d.password === '') throw new DatabasePlanError(`role ${d.user}`, 'the password is empty', 'set PEM_SETTINGS_PASSWORD');
  if (!facts.grantee) {
    throw new DatabasePlanError(
      `default privileges for ${d.grantee}`, `role ${d.grantee} does not exist on the primary`,
      'pem_settings_grantee must name the role the PEM web app uses (PEM creates pem_user); check the primary is the PEM backend',
    );
  }
  const byName = new Map(facts.databases.map((db) => [db.name, db]));
  const settings = byName.get(d.db);
  if (settings && !settings.allowConnections) {
    throw new DatabasePlanError(`database ${d.db}`, `database ${d.db} does not allow connections`, `ALTER DATABASE ${d.db} ALLOW_CONNECTIONS true`);
  }
  // The settings database's own CONNECT is handled by its step; each name is planned once.
  const revokeNames = [...new Set(d.revokeConnect)].filter((n) => n !== d.db);
  return [
    planRole(facts, d, maint, options),
    planDatabaseExists(settings, d, maint),
    planSettingsConnect(settings, d, maint),
    ...revokeNames.map((n) => planRevokeConnect(n, byName.get(n), maint)),
    planSchemaGrant(facts, d),
    planDefaultPrivileges(facts, d, 'tables'),
    planDefaultPrivileges(facts, d, 'sequences'),
  ];
}

/** Marker psql prints after each step's statements succeeded; see completedSteps. */
const DONE_MARKER = 'pem-settings-step-done';

/**
 * The stdin script for `psql -X -q -v ON_ERROR_STOP=1` that applies the changed steps, or ''
 * when nothing changes. Each step runs in its own transaction (atomic: the run record can trust
 * a step either happened or not), except CREATE DATABASE, which PostgreSQL refuses inside one.
 * After each step psql prints a marker line, so a failed run still tells which steps were applied.
 * The script holds the verifier: it goes to psql's stdin only, never to a command line or a log.
 */
export function renderPsqlScript(steps: DbStep[]): string {
  const out = ['\\set QUIET on', '\\set ON_ERROR_STOP on'];
  let connected: string | undefined;
  steps.forEach((s, index) => {
    if (!s.changed || s.sql.length === 0) return;
    if (s.database !== connected) {
      // Each \connect starts a new session, so the session settings are repeated.
      out.push(`\\connect ${quotePsqlArg(s.database)}`, 'SET standard_conforming_strings = on;');
      connected = s.database;
    }
    const statements = s.sql.map((q) => (q.trimEnd().endsWith(';') ? q.trimEnd() : `${q.trimEnd()};`));
    const transactional = !statements.some((q) => /^\s*CREATE\s+DATABASE\b/i.test(q));
    out.push(...(transactional ? ['BEGIN;', ...statements, 'COMMIT;'] : statements));
    out.push(`\\echo ${DONE_MARKER} ${index}`);
  });
  return out.length === 2 ? '' : `${out.join('\n')}\n`;
}

/** Indexes (into the steps given to renderPsqlScript) of the steps psql reported as done. */
export function completedSteps(stdout: string): number[] {
  const done: number[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = new RegExp(`^${DONE_MARKER} (\\d+)$`).exec(line.trim());
    if (m) done.push(Number(m[1]));
  }
  return done;
}
