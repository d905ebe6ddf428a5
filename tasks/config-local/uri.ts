// The CONFIG_DATABASE_URI the web hosts get (SPEC 4, stage 4). The web app rewrites the scheme
// to postgresql+psycopg:// and parses the URI with SQLAlchemy 2, so every form here is one that
// parser accepts (proved against the pinned copy in shared/webapp-consumer by the unit tests).
// Pure: no lookups, no connections.

import ipaddr from 'ipaddr.js';
import { UsageError } from '../../src/errors.ts';
import { maskUriPasswords } from '../../src/secrets.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface UriInput {
  user: string;
  password: string;
  database: string;
  /** Every backend in inventory order, as the web hosts reach them (`pem_db_address`, `pg_port`). */
  backends: HostPort[];
  /** `pem_db_endpoint`: one address (a load balancer) that replaces the backend list. */
  endpoint?: HostPort;
  /** What the connection demands; without it, nothing is asked (the form the unit tests compare). */
  security?: UriSecurity;
}

/**
 * TLS that cannot be downgraded (SPEC 4): libpq's default sslmode=prefer would fall back to
 * plain text for a server that says it has no TLS, and answer its request for a clear-text
 * password. channel_binding needs libpq 13 or later.
 */
export interface UriSecurity {
  /** `pem_db_sslrootcert`: verify-full against this CA file; else require. */
  sslrootcert?: string;
  channelBinding: boolean;
  /** `pem_db_passfile`: the password lives in this libpq password file, not in the URI. */
  passfile?: string;
}

/** The query parameters that make the connection safe, in the order they are written. */
export function securityParams(sec: UriSecurity): string[] {
  return [
    sec.sslrootcert ? 'sslmode=verify-full' : 'sslmode=require',
    ...(sec.sslrootcert ? [`sslrootcert=${percentEncodePath(sec.sslrootcert)}`] : []),
    ...(sec.channelBinding ? ['channel_binding=require'] : []),
    ...(sec.passfile ? [`passfile=${percentEncodePath(sec.passfile)}`] : []),
  ];
}

/** A path in a query value: `/` stays, everything else outside RFC 3986's unreserved set is encoded. */
function percentEncodePath(path: string): string {
  return path.split('/').map((p) => percentEncode(p, 'path')).join('/');
}

export type UriForm = 'single' | 'multi-same-port' | 'multi-host-query';

export interface SettingsUri {
  uri: string;
  form: UriForm;
  /** Facts the operator should see in the output (e.g. that libpq tools cannot read the URI). */
  notes: string[];
}

/** The URI for the settings database, in the simplest form that reaches the primary. */
export function settingsUri(input: UriInput): SettingsUri {
  if (input.user === '') throw new UsageError('the settings role name is empty');
  if (input.password === '' && !input.security?.passfile) {
    throw new UsageError('the settings role password is empty (set PEM_SETTINGS_PASSWORD in the environment or the .env file beside the inventory)');
  }
  // SQLAlchemy does not percent-decode the database part of the URI, so it must need no encoding.
  if (!/^[A-Za-z0-9_$.~-]+$/.test(input.database)) {
    throw new UsageError(`database name "${input.database}" cannot be written into CONFIG_DATABASE_URI: use letters, digits, _ and $ only`);
  }
  // With a password file, the URI names the role only: the password is in neither the file nor the About dialog.
  const userinfo = input.security?.passfile ? percentEncode(input.user, 'role name') : `${percentEncode(input.user, 'role name')}:${percentEncode(input.password, 'password')}`;
  const extra = input.security ? securityParams(input.security) : [];
  const query = (params: string[]) => (params.length ? `?${params.join('&')}` : '');
  const scheme = 'postgresql://';
  const db = input.database;

  if (input.endpoint !== undefined) {
    const { host, port } = checked(input.endpoint, 'pem_db_endpoint');
    return {
      uri: `${scheme}${userinfo}@${host}:${port}/${db}${query(extra)}`,
      form: 'single',
      notes: [`pem_db_endpoint ${host}:${port} is used instead of the ${input.backends.length} backend address(es); it must lead to the primary`],
    };
  }
  if (input.backends.length === 0) throw new UsageError('no backend to point CONFIG_DATABASE_URI at: the inventory has no selected backends and no pem_db_endpoint');

  const backends = input.backends.map((b) => checked(b, 'pem_db_address'));
  if (backends.length === 1) {
    const only = backends[0]!;
    return { uri: `${scheme}${userinfo}@${only.host}:${only.port}/${db}${query(extra)}`, form: 'single', notes: [] };
  }

  const seen = new Set<string>();
  for (const b of backends) {
    if (b.host.startsWith('[')) {
      throw new UsageError(
        `backend address ${b.host} is an IPv6 address, which the web app's URI parser (SQLAlchemy) accepts only as a single host: give the backends host names or IPv4 addresses, or set pem_db_endpoint`,
      );
    }
    const key = `${b.host.toLowerCase()}:${b.port}`;
    if (seen.has(key)) throw new UsageError(`backend address ${key} is listed twice: each backend needs its own pem_db_address`);
    seen.add(key);
  }
  // Without it libpq takes the first host that answers, which may be a read-only standby.
  const tsa = 'target_session_attrs=read-write';
  const port = backends[0]!.port;
  if (backends.every((b) => b.port === port)) {
    return { uri: `${scheme}${userinfo}@${backends.map((b) => b.host).join(',')}:${port}/${db}${query([tsa, ...extra])}`, form: 'multi-same-port', notes: [] };
  }
  const hosts = backends.map((b) => `host=${b.host}:${b.port}`).join('&');
  return {
    uri: `${scheme}${userinfo}@/${db}${query([hosts, tsa, ...extra])}`,
    form: 'multi-host-query',
    notes: [
      'backends listen on different ports, so the URI uses SQLAlchemy\'s multi-host form (?host=H:P&host=H:P): the web app reads it, but libpq tools (psql, pg_dump) cannot parse this URI',
    ],
  };
}

/** The URI with its password replaced by ********, for output, diffs and records. */
export function maskUri(uri: string): string {
  return uri.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/?#]*:)[^@/?#]*@/, '$1********@');
}

/**
 * Masks only the password of every URI in a larger text.
 * @deprecated A config_local.py holds other secrets too: show it through maskConfigSecrets
 * (./mask.ts), and a free-text message through maskSecretsInText (src/secrets.ts).
 */
export function maskUrisInText(text: string): string {
  return maskUriPasswords(text);
}

/**
 * RFC 3986 percent-encoding of the UTF-8 bytes of `s`: every character outside A-Za-z0-9-._~
 * (encodeURIComponent leaves !*'() alone, so it is not used).
 */
export function percentEncode(s: string, what = 'value'): string {
  // A lone surrogate has no UTF-8 form; Buffer would silently turn it into U+FFFD.
  if (/\p{Surrogate}/u.test(s)) throw new UsageError(`the ${what} contains an invalid (lone surrogate) character`);
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A host as the URI needs it (IPv6 in brackets), and a valid port; UsageError naming `source` otherwise. */
function checked(hp: HostPort, source: string): HostPort {
  const { port } = hp;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${source}: port ${String(port)} is not a TCP port (1-65535)`);
  return { host: uriHost(hp.host, source), port };
}

function uriHost(raw: string, source: string): string {
  const host = raw.trim();
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.includes(':')) {
    if (bare.includes('%')) throw new UsageError(`${source}: IPv6 address ${host} has a zone id (%...), which the web app's URI parser cannot take; use a routable address or a host name`);
    if (!ipaddr.IPv6.isValid(bare)) throw new UsageError(`${source}: "${host}" is neither a host name nor an IP address`);
    return `[${bare}]`;
  }
  if (host !== bare) throw new UsageError(`${source}: "${host}" has brackets but is not an IPv6 address`);
  // DNS names (letters, digits, '-', '_' as some internal names use) and IPv4 addresses; no
  // character that means something in a URI (/ @ ? # , [ ] : % space).
  const labels = host.split('.');
  const ok = host.length > 0 && host.length <= 253 && labels.every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
  if (!ok) {
    throw new UsageError(`${source}: "${host}" is not a valid host name (letters, digits, '-', '.'; internationalised names in their xn-- form)`);
  }
  if (/^[0-9.]+$/.test(host) && !ipaddr.IPv4.isValidFourPartDecimal(host)) {
    throw new UsageError(`${source}: "${host}" is not a valid IPv4 address`);
  }
  return host;
}
