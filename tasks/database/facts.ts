// Catalog facts of the primary for the settings database (SPEC 4 stage 2), in STYLE's two
// halves: `script` is the read-only psql input that gathers everything in one round trip,
// `parse` is a pure function from its output to a typed value. "Missing" (null) is kept apart
// from "empty" ([]): a NULL datacl means "default privileges", an empty one means "none".
//
// The script is run as the cluster's OS user, connected to the maintenance database:
//   psql -X -q -At -v ON_ERROR_STOP=1 -d postgres  < script
// It prints one JSON line about the cluster and, when the settings database exists, a second
// line read inside it (schema and default ACLs live in each database's own catalogs).

import { inspect } from 'node:util';
import { assertIdentifier, quoteLiteral, quotePsqlArg } from './sql.ts';

/** The names the facts are about (validated identifiers). */
export interface DbTarget {
  /** Settings database, e.g. pem_user_settings. */
  db: string;
  /** Login role the web app uses, e.g. pem_user_settings. */
  user: string;
  /** Role that gets the default privileges, e.g. pem_user. */
  grantee: string;
  /** Databases whose CONNECT is revoked from PUBLIC (those that exist). */
  revokeConnect: string[];
}

/**
 * A value that must not end up in output, logs or run records: JSON, util.inspect and string
 * conversion all print a mask. Read it with reveal(), only where it is compared.
 */
export class Redacted<T> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toJSON(): string {
    return '********';
  }
  toString(): string {
    return '********';
  }
  [inspect.custom](): string {
    return 'Redacted(********)';
  }
}

/** One aclexplode() row. PUBLIC (grantee oid 0) is `isPublic` with grantee "PUBLIC". */
export interface AclItem {
  grantee: string;
  isPublic: boolean;
  grantor: string;
  privilege: string;
  grantable: boolean;
}

export interface RoleFact {
  name: string;
  canLogin: boolean;
  superuser: boolean;
  validUntil: string | null;
  /** pg_authid.rolpassword: a SCRAM verifier, an md5 hash, or null. Secret-ish: never print. */
  verifier: Redacted<string | null>;
}

export interface DatabaseFact {
  name: string;
  owner: string;
  allowConnections: boolean;
  isTemplate: boolean;
  /** Exploded datacl; null = never set, i.e. defaults: owner all, PUBLIC CONNECT + TEMPORARY. */
  acl: AclItem[] | null;
  /**
   * Non-superuser login roles that can connect today only through PUBLIC (locked out if PUBLIC
   * loses CONNECT). Null when not asked: only the settings database and the revoke list are.
   */
  onlyPublicConnect: string[] | null;
}

export interface DefaultAclFact {
  /** tables, sequences, functions, types, schemas (or the raw code for others). */
  objectType: string;
  /** null = for all schemas (ALTER DEFAULT PRIVILEGES without IN SCHEMA). */
  schema: string | null;
  acl: AclItem[];
}

export interface SettingsDbFacts {
  database: string;
  /** Tables in the database (the web app's schema, once a web app has started on it). */
  tables: number;
  /** null when the database has no `public` schema. */
  publicSchema: { owner: string; acl: AclItem[] | null } | null;
  /** pg_default_acl rows whose role is the settings user. */
  defaultAcls: DefaultAclFact[];
}

export interface DbFacts {
  serverVersionNum: number;
  /** The settings user; null when the role does not exist. */
  role: RoleFact | null;
  /** The grantee role; null when it does not exist. */
  grantee: { name: string; canLogin: boolean } | null;
  databases: DatabaseFact[];
  /** Read inside the settings database; null when it does not exist (or refuses connections). */
  settingsDb: SettingsDbFacts | null;
}

/** The facts output could not be read. The message never quotes the output (it holds a verifier). */
export class DbFactsError extends Error {
  override name = 'DbFactsError';
}

// SQL producing a JSON array of aclexplode() rows for an aclitem[] expression; NULL stays NULL
// (default privileges) and an empty ACL gives [].
function aclJson(expr: string): string {
  return `CASE WHEN ${expr} IS NULL THEN NULL ELSE (
      SELECT coalesce(json_agg(json_build_object(
        'grantor', pg_get_userbyid(x.grantor),
        'grantee', CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee) END,
        'privilege', x.privilege_type,
        'grantable', x.is_grantable) ORDER BY x.grantee, x.privilege_type), '[]'::json)
      FROM aclexplode(${expr}) x) END`;
}

// Login roles that connect to database `d` only through PUBLIC: PUBLIC has CONNECT, and no
// CONNECT entry names a role whose privileges they hold. pg_has_role(..., 'USAGE') follows
// inheritance the way the privilege check does (a NOINHERIT member does not get CONNECT from
// the role without SET ROLE, so it would be locked out too). NULL datacl = acldefault().
const ONLY_PUBLIC_CONNECT = `(
      SELECT coalesce(json_agg(r.rolname ORDER BY r.rolname), '[]'::json)
      FROM pg_roles r
      WHERE r.rolcanlogin AND NOT r.rolsuper
        AND EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) p
                    WHERE p.grantee = 0 AND p.privilege_type = 'CONNECT')
        AND NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) g
                        WHERE g.grantee <> 0 AND g.privilege_type = 'CONNECT'
                          AND pg_has_role(r.oid, g.grantee, 'USAGE')))`;

function nameArray(names: string[]): string {
  return `ARRAY[${names.map(quoteLiteral).join(', ')}]::name[]`;
}

/** The psql script (stdin) that prints the facts. Read-only; safe in check mode. */
export function factsScript(target: DbTarget): string {
  const db = assertIdentifier(target.db, 'pem_settings_db');
  const user = assertIdentifier(target.user, 'pem_settings_user');
  const grantee = assertIdentifier(target.grantee, 'pem_settings_grantee');
  const asked = [db, ...target.revokeConnect.map((d) => assertIdentifier(d, 'pem_settings_revoke_connect'))];
  // Session settings repeated after \connect: each connection is a new session.
  const session = [
    'SET standard_conforming_strings = on;',
    'SET search_path = pg_catalog;',
    'SET default_transaction_read_only = on;',
  ].join('\n');
  return `\\set QUIET on
\\set ON_ERROR_STOP on
\\pset format unaligned
\\pset tuples_only on
${session}
SELECT json_build_object(
  'kind', 'cluster',
  'server_version_num', current_setting('server_version_num')::int,
  'role', (SELECT json_build_object(
      'name', a.rolname, 'can_login', a.rolcanlogin, 'superuser', a.rolsuper,
      'valid_until', a.rolvaliduntil, 'verifier', a.rolpassword)
    FROM pg_authid a WHERE a.rolname = ${quoteLiteral(user)}),
  'grantee', (SELECT json_build_object('name', r.rolname, 'can_login', r.rolcanlogin)
    FROM pg_roles r WHERE r.rolname = ${quoteLiteral(grantee)}),
  'databases', (SELECT coalesce(json_agg(json_build_object(
      'name', d.datname, 'owner', pg_get_userbyid(d.datdba),
      'allow_connections', d.datallowconn, 'is_template', d.datistemplate,
      'acl', ${aclJson('d.datacl')},
      'only_public_connect', CASE WHEN d.datname = ANY (${nameArray(asked)}) THEN ${ONLY_PUBLIC_CONNECT} END
    ) ORDER BY d.datname), '[]'::json) FROM pg_database d));
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(db)} AND datallowconn) AS pem_settings_db_exists \\gset
\\if :pem_settings_db_exists
\\connect ${quotePsqlArg(db)}
${session}
SELECT json_build_object(
  'kind', 'settings_db',
  'database', current_database(),
  'tables', (SELECT count(*) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relnamespace <> 'pg_catalog'::regnamespace
    AND c.relnamespace <> 'information_schema'::regnamespace),
  'public_schema', (SELECT json_build_object('owner', pg_get_userbyid(n.nspowner), 'acl', ${aclJson('n.nspacl')})
    FROM pg_namespace n WHERE n.nspname = 'public'),
  'default_acls', (SELECT coalesce(json_agg(json_build_object(
      'object_type', CASE a.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
        WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'
        ELSE a.defaclobjtype::text END,
      'schema', n.nspname,
      'acl', coalesce(${aclJson('a.defaclacl')}, '[]'::json)
    ) ORDER BY a.defaclobjtype, n.nspname NULLS FIRST), '[]'::json)
    FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace
    WHERE a.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(user)})));
\\endif
`;
}

// --- parse: small checked readers, so a surprise in the output is a clear error ---

type Json = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new DbFactsError(`database facts: ${where}: ${what}`);
}
function obj(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'expected an object');
  return v as Json;
}
function str(v: unknown, where: string): string {
  if (typeof v !== 'string') fail(where, 'expected a string');
  return v;
}
function strOrNull(v: unknown, where: string): string | null {
  return v === null || v === undefined ? null : str(v, where);
}
function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') fail(where, 'expected true or false');
  return v;
}
function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) fail(where, 'expected a list');
  return v;
}

function parseAcl(v: unknown, where: string): AclItem[] | null {
  if (v === null || v === undefined) return null;
  return arr(v, where).map((item, i) => {
    const o = obj(item, `${where}[${i}]`);
    const grantee = strOrNull(o.grantee, `${where}[${i}].grantee`);
    return {
      grantee: grantee ?? 'PUBLIC',
      isPublic: grantee === null,
      grantor: str(o.grantor, `${where}[${i}].grantor`),
      privilege: str(o.privilege, `${where}[${i}].privilege`),
      grantable: bool(o.grantable, `${where}[${i}].grantable`),
    };
  });
}

function parseCluster(o: Json): Omit<DbFacts, 'settingsDb'> {
  const version = o.server_version_num;
  if (typeof version !== 'number' || !Number.isInteger(version)) fail('server_version_num', 'expected an integer');
  const role = o.role == null ? null : obj(o.role, 'role');
  const grantee = o.grantee == null ? null : obj(o.grantee, 'grantee');
  return {
    serverVersionNum: version,
    role: role && {
      name: str(role.name, 'role.name'),
      canLogin: bool(role.can_login, 'role.can_login'),
      superuser: bool(role.superuser, 'role.superuser'),
      validUntil: strOrNull(role.valid_until, 'role.valid_until'),
      verifier: new Redacted(strOrNull(role.verifier, 'role.verifier')),
    },
    grantee: grantee && { name: str(grantee.name, 'grantee.name'), canLogin: bool(grantee.can_login, 'grantee.can_login') },
    databases: arr(o.databases, 'databases').map((item, i) => {
      const d = obj(item, `databases[${i}]`);
      const locked = d.only_public_connect;
      return {
        name: str(d.name, `databases[${i}].name`),
        owner: str(d.owner, `databases[${i}].owner`),
        allowConnections: bool(d.allow_connections, `databases[${i}].allow_connections`),
        isTemplate: bool(d.is_template, `databases[${i}].is_template`),
        acl: parseAcl(d.acl, `databases[${i}].acl`),
        onlyPublicConnect: locked == null ? null : arr(locked, `databases[${i}].only_public_connect`).map((r, j) => str(r, `databases[${i}].only_public_connect[${j}]`)),
      };
    }),
  };
}

function parseSettingsDb(o: Json): SettingsDbFacts {
  const schema = o.public_schema == null ? null : obj(o.public_schema, 'public_schema');
  return {
    database: str(o.database, 'database'),
    tables: typeof o.tables === 'number' ? o.tables : 0,
    publicSchema: schema && { owner: str(schema.owner, 'public_schema.owner'), acl: parseAcl(schema.acl, 'public_schema.acl') },
    defaultAcls: arr(o.default_acls, 'default_acls').map((item, i) => {
      const a = obj(item, `default_acls[${i}]`);
      return {
        objectType: str(a.object_type, `default_acls[${i}].object_type`),
        schema: strOrNull(a.schema, `default_acls[${i}].schema`),
        acl: parseAcl(a.acl, `default_acls[${i}].acl`) ?? [],
      };
    }),
  };
}

/** Reads the script's stdout. Pure. */
export function parseFacts(stdout: string): DbFacts {
  const lines = stdout.split(/\r?\n/).filter((l) => l.trim() !== '');
  const docs = lines.map((line, i) => {
    try {
      return obj(JSON.parse(line), `line ${i + 1}`);
    } catch (e) {
      if (e instanceof DbFactsError) throw e;
      // Never include the line: it may carry the role's verifier.
      return fail(`line ${i + 1}`, 'not JSON (was psql run with -At and without ~/.psqlrc, i.e. -X?)');
    }
  });
  const cluster = docs.filter((d) => d.kind === 'cluster');
  const settings = docs.filter((d) => d.kind === 'settings_db');
  if (cluster.length !== 1 || settings.length > 1 || docs.length !== cluster.length + settings.length) {
    fail('output', `expected one cluster line and at most one settings_db line, got ${docs.length} line(s)`);
  }
  return { ...parseCluster(cluster[0]!), settingsDb: settings[0] ? parseSettingsDb(settings[0]) : null };
}

/** The facts in STYLE's shape: the read-only script and its pure parser. */
export const databaseFacts = {
  script: factsScript,
  parse: parseFacts,
};
