// Identifiers and literals that go into SQL and psql scripts. Every name comes from the
// inventory, so it is validated before anything connects (SPEC 7) and quoted wherever it is
// used anyway: validation keeps it sane, quoting keeps it safe.

const MAX_IDENTIFIER_BYTES = 63; // NAMEDATALEN - 1: longer names are silently truncated

// Strict on purpose. The same name is written, under different quoting rules, into SQL, psql
// \connect arguments, pg_hba.conf (where `all`, `+group`, `@file`, commas and spaces mean
// something) and a percent-encoded URI inside a Python string. Quotes, spaces, backslashes,
// `=` or `:` in a name are never needed for this job and each is an injection vector in one of
// those places, so we accept only what PostgreSQL accepts unquoted (minus non-ASCII letters).
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

// Names that mean something else in pg_hba.conf (all, sameuser, ...), that PostgreSQL reserves
// for roles (public, none) or that read as functions where a role is expected (current_user...).
const RESERVED = new Set([
  'all', 'sameuser', 'samerole', 'samegroup', 'replication',
  'public', 'none', 'current_user', 'current_role', 'session_user',
]);

/**
 * A problem with `name` as the value of `what` (e.g. "pem_settings_user"), or undefined when it
 * is acceptable. Problem texts are meant to be collected and reported together (STYLE 8).
 */
export function validateIdentifier(name: string, what: string): string | undefined {
  const shown = JSON.stringify(name);
  if (name.length === 0) return `${what} is empty`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES) {
    return `${what} ${shown} is ${bytes} bytes long; PostgreSQL names are at most ${MAX_IDENTIFIER_BYTES}`;
  }
  if (!IDENTIFIER.test(name)) {
    return `${what} ${shown} is not a plain name: use letters, digits, _ and $, starting with a letter or _`;
  }
  if (RESERVED.has(name.toLowerCase())) {
    return `${what} ${shown} is a reserved word in pg_hba.conf or for PostgreSQL roles`;
  }
  if (/^pg_/i.test(name)) return `${what} ${shown}: names starting with pg_ are reserved by PostgreSQL`;
  return undefined;
}

/** Throws when `name` is not a valid identifier; for code paths that validated earlier. */
export function assertIdentifier(name: string, what: string): string {
  const problem = validateIdentifier(name, what);
  if (problem) throw new RangeError(problem);
  return name;
}

function rejectNul(s: string, what: string): void {
  if (s.includes('\0')) throw new RangeError(`${what} contains a NUL character, which PostgreSQL cannot store`);
}

/**
 * Always double-quoted, inner quotes doubled: the name is taken exactly as written (no case
 * folding, no keyword clashes), whatever validation allowed.
 */
export function quoteIdent(name: string): string {
  rejectNul(name, 'an identifier');
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A string literal in the standard_conforming_strings form: '...' with quotes doubled and
 * backslashes left as they are. Never E'' syntax. Scripts we render set
 * standard_conforming_strings = on (the default since 9.1) so the form is always read this way.
 */
export function quoteLiteral(s: string): string {
  rejectNul(s, 'a string literal');
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * An argument of a psql meta-command such as \connect. psql reads single-quoted arguments with
 * its own rules: '' is a quote, a backslash escapes the next character (\n, \t, octal... are
 * interpreted), and no :variable interpolation happens inside quotes. \connect also treats an
 * argument containing `=` or starting with a URI scheme as a connection string, so such
 * values are refused rather than quoted.
 */
export function quotePsqlArg(s: string): string {
  rejectNul(s, 'a psql argument');
  if (s.includes('=') || /^postgres(ql)?:\/\//i.test(s)) {
    throw new RangeError(`${JSON.stringify(s)} would be read by psql as a connection string`);
  }
  if (/[\r\n]/.test(s)) throw new RangeError('a psql argument cannot span lines');
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
