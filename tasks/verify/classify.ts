// What verify's facts mean for the operator (SPEC 5): each probe becomes one step with ok,
// failed or skipped and a message that says what is wrong and what to do. Pure: facts in,
// verdicts out, so every message is unit-tested without a host.

import { maskUri } from '../config-local/uri.ts';
import type { ParserVerdict } from './parser.ts';
import type { BackendProbe, ForbiddenProbe, SessionFailure } from './probe.ts';
import { backendsFromConnectArgs, hostPortLabel } from './uri.ts';

import type { Verdict } from '../../src/checks.ts';

export type { Verdict } from '../../src/checks.ts';

const ok = (message: string, warnings?: string[]): Verdict => ({ status: 'ok', message, ...(warnings?.length ? { warnings } : {}) });
const failed = (message: string): Verdict => ({ status: 'failed', message });

/** Step name of a backend's main check: the role is known once we are in. */
export function backendStepName(p: BackendProbe): string {
  const role = p.inRecovery === undefined ? '' : p.inRecovery ? ' (standby)' : ' (primary)';
  return `backend ${hostPortLabel(p.target)}${role}`;
}

export function classifyBackend(p: BackendProbe, user: string, database: string): Verdict {
  if (p.failure) return failed(describeFailure(p.failure, user, database));
  if (!p.tls?.on) return failed('the session is not encrypted: TLS is required (hostssl rule, ssl = on)');
  if (p.auth !== 'scram-sha-256') {
    return failed(`the server authenticated the role by ${p.auth}, not SCRAM-SHA-256: a pg_hba.conf rule before ours matches the web host (run deploy, or fix the rule)`);
  }
  const session = `TLS${p.tls.version ? ` (${p.tls.version})` : ''}, SCRAM-SHA-256 authentication`;
  if (p.inRecovery) return ok(`${session}; a standby (in recovery, read-only): fine, target_session_attrs=read-write makes the web app skip it`);
  if (!p.write?.ok) {
    const why = p.write?.message ?? 'not tried';
    const hint = p.write?.code === '42501' ? ' (run deploy: the role needs USAGE, CREATE ON SCHEMA public)'
      : p.write?.code === '25006' ? ' (the server is read-only: default_transaction_read_only?)' : '';
    return failed(`${session}; a primary, but creating a table in public failed: ${why}${hint}`);
  }
  return ok(`${session}; the primary: created, wrote and dropped a table in public`);
}

/** Connecting to a database the role must not reach: only an authorization refusal is right. */
export function classifyForbidden(database: string, p: ForbiddenProbe): Verdict {
  if (p.connected) return failed(`the role can connect to ${database}: CONNECT is granted to it or to PUBLIC (run deploy)`);
  const { stage, code, message } = p.failure;
  // The backend step already says why no session could start; repeating it here adds nothing.
  if (stage !== 'session') return { status: 'skipped', message: `not checked: ${describeFailure(p.failure, '', database)}` };
  // A wrong password proves nothing about what the right one could reach.
  if (code === '28P01') return { status: 'skipped', message: `not checked: ${message} (the password is wrong, see the backend step)` };
  // SQLSTATE class 28 (invalid authorization: pg_hba.conf) and 42501 (no CONNECT privilege).
  if (code?.startsWith('28') || code === '42501') return ok(`refused as it must be: ${message}`);
  if (code === '3D000') return ok(`database ${database} does not exist: nothing to reach`);
  return failed(`could not check: ${describeFailure(p.failure, '', database)}`);
}

/** Exactly one backend of the URI must be a writable primary, whatever the host order. */
export function classifyPrimary(probes: BackendProbe[]): Verdict {
  const writable = probes.filter((p) => !p.failure && p.inRecovery === false && p.write?.ok).map((p) => hostPortLabel(p.target));
  const primaries = probes.filter((p) => p.inRecovery === false).map((p) => hostPortLabel(p.target));
  const unknown = probes.filter((p) => p.inRecovery === undefined).map((p) => hostPortLabel(p.target));
  if (primaries.length > 1) return failed(`more than one primary in the URI: ${primaries.join(', ')} (split brain, or a backend of another cluster)`);
  if (writable.length === 1) return ok(`${writable[0]} is the one writable primary the web app reaches`);
  if (primaries.length === 1) return failed(`${primaries[0]} is the primary but the role cannot write there`);
  return failed(`no backend of the URI is a writable primary${unknown.length ? ` (not reached: ${unknown.join(', ')})` : ''}: the web app cannot save settings`);
}

export function classifyParser(v: ParserVerdict, backendCount: number): Verdict {
  switch (v.status) {
    case 'unavailable':
      return { status: 'skipped', message: `parser could not be checked: ${v.reason}`, warnings: [`parser could not be checked: ${v.reason}`] };
    case 'broken':
      return failed(v.reason);
    case 'rejected':
      return failed(`the web app would not start: SQLAlchemy ${v.sqlalchemy} (${v.python}) rejects the URI after the postgresql+psycopg:// rewrite: ${v.error}`);
    case 'parsed': {
      let targets: string;
      try {
        targets = backendsFromConnectArgs(v.args).map(hostPortLabel).join(', ');
      } catch (e) {
        return failed((e as Error).message);
      }
      const tsa = v.args['target_session_attrs'];
      const warnings = backendCount > 1 && tsa !== 'read-write'
        ? ['several hosts without target_session_attrs=read-write: libpq takes the first that answers, maybe a read-only standby'] : [];
      return ok(`SQLAlchemy ${v.sqlalchemy} (${v.python}) accepts it: host(s) ${targets}, user ${String(v.args['user'])}, database ${String(v.args['dbname'])}${tsa ? `, target_session_attrs=${String(tsa)}` : ''}`, warnings);
    }
  }
}

/** The file's URI against what deploy would write now; messages carry masked URIs only. */
export function classifyUriDrift(actual: string, desired: string): Verdict {
  if (actual === desired) return ok('CONFIG_DATABASE_URI is what deploy writes');
  if (maskUri(actual) === maskUri(desired)) return failed('the password in CONFIG_DATABASE_URI is not PEM_SETTINGS_PASSWORD (run deploy)');
  return failed(`CONFIG_DATABASE_URI differs from what deploy would write (run deploy): the file has ${maskUri(actual)}, deploy writes ${maskUri(desired)}`);
}

export function describeFailure(f: SessionFailure, user: string, database: string): string {
  if (f.stage === 'forward') return f.message;
  if (f.stage === 'tls') return `TLS refused: ${f.message} (is ssl off on this backend? the hostssl rule needs ssl = on)`;
  switch (f.code) {
    case '28P01':
      return `${f.message}: the password in CONFIG_DATABASE_URI is not the role's (run deploy)`;
    case '28000':
      return `${f.message} (no pg_hba.conf rule lets this web host in with TLS and SCRAM: run deploy)`;
    case '3D000':
      return `${f.message} (run deploy: it creates ${database})`;
    case '42501':
      return `${f.message} (run deploy: it grants CONNECT on ${database} to ${user || 'the role'})`;
    default:
      return f.message;
  }
}

/**
 * What the URI's connection parameters protect against (SPEC 4, 5): libpq's default
 * sslmode=prefer falls back to plain text when a server says it has no TLS, and then answers a
 * request for a clear-text password; channel binding ties SCRAM to the TLS channel, so even a
 * server with a certificate of its own cannot relay the exchange.
 */
export function classifyTransport(options: [string, string][]): Verdict {
  const get = (k: string) => options.filter(([key]) => key === k).at(-1)?.[1];
  const sslmode = get('sslmode') ?? 'prefer';
  const binding = get('channel_binding') ?? 'prefer';
  if (!['require', 'verify-ca', 'verify-full'].includes(sslmode)) {
    return failed(`sslmode=${sslmode}: the web app would send its password in clear to anything that answers on a backend's address without TLS (run deploy: it writes sslmode=require)`);
  }
  const tls = sslmode === 'verify-full' ? 'TLS with the server\'s certificate and name verified (sslmode=verify-full)' : `TLS or no connection at all (sslmode=${sslmode})`;
  if (binding === 'require') return ok(`${tls}; SCRAM bound to that TLS channel (channel_binding=require): no password exchange with a server that does not hold the role's verifier`);
  return ok(`${tls}; no channel binding (channel_binding=${binding})`, ['channel_binding=require is not set: a server in the middle with a certificate of its own could relay the password exchange']);
}
