// What verify reads out of a CONFIG_DATABASE_URI (SPEC 5): the credentials and the backends the
// web app will try. Two sources, both pure:
// - parseSettingsUri reads the URI text itself, in every form of SPEC 4.4 and in the libpq form
//   `h1:p1,h2:p2` that the web app rejects (so the backends are still checked and the operator
//   sees every problem at once);
// - backendsFromConnectArgs reads what SQLAlchemy hands to psycopg (the web app's parser on the
//   web host), which is the truth when it is available: `h1:5432/db?host=h2` connects to h2 only.

import type { HostPort } from '../config-local/uri.ts';

export type { HostPort } from '../config-local/uri.ts';

export interface ParsedUri {
  scheme: string;
  user: string;
  password: string;
  /** The password exactly as written in the URI (percent-encoded), to mask it in parser messages. */
  rawPassword: string;
  database: string;
  /** Backends in URI order; `port` 5432 where the URI gives none (libpq's default). */
  backends: HostPort[];
  /** Query parameters other than `host`, in order. */
  options: [string, string][];
}

export class UriParseError extends Error {
  override name = 'UriParseError';
}

const DEFAULT_PORT = 5432;

/** Parses a postgres(ql):// URI; throws UriParseError with a message that never holds the password. */
export function parseSettingsUri(uri: string): ParsedUri {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/s.exec(uri.trim());
  if (!m) throw new UriParseError('not a URI of the form postgresql://user:password@host:port/database');
  const [, scheme, authority = '', path = '', query = ''] = m;
  if (!/^postgres(ql)?(\+[a-z0-9]+)?$/i.test(scheme!)) throw new UriParseError(`scheme "${scheme}://" is not a Postgres scheme (postgresql://)`);
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostlist = at >= 0 ? authority.slice(at + 1) : authority;
  const colon = userinfo.indexOf(':');
  const rawUser = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  const rawPassword = colon >= 0 ? userinfo.slice(colon + 1) : '';

  const options: [string, string][] = [];
  const queryHosts: string[] = [];
  for (const pair of query.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = percentDecode(eq >= 0 ? pair.slice(0, eq) : pair);
    const value = percentDecode(eq >= 0 ? pair.slice(eq + 1) : '');
    if (key === 'host') queryHosts.push(value);
    else options.push([key, value]);
  }

  const netloc = hostlist === '' ? [] : splitHostList(hostlist);
  let backends: HostPort[];
  if (queryHosts.length > 0) {
    // SQLAlchemy's multi-host form; a port in the authority applies where a host=... has none.
    const fallback = netloc.length === 1 && netloc[0]!.port !== undefined ? netloc[0]!.port : DEFAULT_PORT;
    backends = queryHosts.map((h) => {
      const hp = splitHostPort(h);
      return { host: hp.host, port: hp.port ?? fallback };
    });
  } else {
    // `h1,h2:5432`: the one trailing port is every host's (SQLAlchemy hands psycopg one port,
    // which libpq applies to all hosts); `h1:p1,h2:p2` keeps each host's own (libpq).
    const ported = netloc.filter((h) => h.port !== undefined);
    const shared = ported.length === 1 && netloc.at(-1)!.port !== undefined ? netloc.at(-1)!.port! : undefined;
    backends = netloc.map((h) => ({ host: h.host, port: h.port ?? shared ?? DEFAULT_PORT }));
  }
  if (backends.length === 0 || backends.some((b) => b.host === '')) throw new UriParseError('the URI names no backend host');
  for (const b of backends) {
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535) throw new UriParseError(`port of ${b.host} is not a TCP port`);
  }
  return {
    scheme: scheme!, user: percentDecode(rawUser), password: percentDecode(rawPassword), rawPassword,
    database: percentDecode(path), backends, options,
  };
}

/**
 * The backends psycopg is given by SQLAlchemy's create_connect_args: `host` a comma-separated
 * list, `port` one number for all or a list of the same length (libpq's rules), 5432 if absent.
 */
export function backendsFromConnectArgs(args: Record<string, unknown>): HostPort[] {
  const hosts = typeof args['host'] === 'string' ? args['host'].split(',').map((h) => h.trim()) : [];
  if (hosts.length === 0 || hosts.some((h) => h === '')) throw new UriParseError('the web app\'s parser found no backend host in the URI');
  const portText = args['port'] === undefined || args['port'] === null ? '' : String(args['port']);
  const ports = portText === '' ? [] : portText.split(',').map((p) => Number(p.trim() || DEFAULT_PORT));
  if (ports.length > 1 && ports.length !== hosts.length) {
    throw new UriParseError(`the web app's parser gives ${hosts.length} hosts but ${ports.length} ports; libpq would refuse to connect`);
  }
  return hosts.map((host, i) => ({ host, port: ports.length === 0 ? DEFAULT_PORT : ports.length === 1 ? ports[0]! : ports[i]! }));
}

/** `h:p` for messages; IPv6 in brackets. */
export function hostPortLabel(b: HostPort): string {
  return `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`;
}

/** Percent-decoding of UTF-8 bytes as Python's unquote does: malformed escapes stay as they are. */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}

function splitHostList(text: string): { host: string; port?: number }[] {
  return text.split(',').map(splitHostPort);
}

function splitHostPort(text: string): { host: string; port?: number } {
  const v6 = /^\[([^\]]*)\](?::(\d*))?$/.exec(text);
  if (v6) return { host: v6[1]!, ...(v6[2] ? { port: Number(v6[2]) } : {}) };
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: percentDecode(text) };
  const port = text.slice(colon + 1);
  if (!/^\d+$/.test(port)) throw new UriParseError(`"${text}" is not host:port`);
  return { host: percentDecode(text.slice(0, colon)), port: Number(port) };
}
