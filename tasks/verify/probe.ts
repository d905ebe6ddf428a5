// Postgres sessions opened the way the web app opens them, but from here: the `pg` client runs
// over an SSH channel forwarded by the web host (`Connection.forward`), so the backend sees the
// web host's address and applies the web host's pg_hba.conf rule. This module only gathers
// facts (what happened); classify.ts decides what they mean.

import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { Connection } from '../../src/connection.ts';
import { passwordBytes } from '../database/scram.ts';
import type { HostPort } from './uri.ts';

export interface Credentials {
  user: string;
  password: string;
}

/** How the server authenticated us, from the protocol messages it sent. */
export type AuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

/** Why a session could not be opened; `code` is the SQLSTATE when the server answered. */
export interface SessionFailure {
  stage: 'forward' | 'tls' | 'session';
  code?: string;
  message: string;
}

export interface BackendProbe {
  target: HostPort;
  failure?: SessionFailure;
  auth?: AuthMethod;
  /** pg_stat_ssl of our own backend process. */
  tls?: { on: boolean; version?: string };
  inRecovery?: boolean;
  /** On a primary: creating, writing and dropping a table in public; the error if that failed. */
  write?: { ok: true } | { ok: false; message: string; code?: string };
}

/** The result of trying a database the role must not reach. */
export type ForbiddenProbe = { connected: true } | { connected: false; failure: SessionFailure };

export interface ProbeOptions {
  timeoutMs: number;
}

/** Connects to the URI's database on one backend and reads TLS, auth, recovery; writes on a primary. */
export async function probeBackend(conn: Connection, target: HostPort, database: string, cred: Credentials, o: ProbeOptions): Promise<BackendProbe> {
  const opened = await openSession(conn, target, database, cred, o);
  if ('failure' in opened) return { target, failure: opened.failure };
  const { client, auth } = opened;
  try {
    const ssl = await client.query<{ ssl: boolean; version: string | null }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    const rec = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    const probe: BackendProbe = {
      target, auth,
      tls: { on: ssl.rows[0]?.ssl === true, ...(ssl.rows[0]?.version ? { version: ssl.rows[0].version } : {}) },
      inRecovery: rec.rows[0]?.r === true,
    };
    if (!probe.inRecovery) probe.write = await writeProbe(client);
    return probe;
  } catch (e) {
    return { target, auth, failure: { stage: 'session', ...pgError(e) } };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Tries to open a session to a database the role must be kept out of; closes it if it opened. */
export async function probeForbidden(conn: Connection, target: HostPort, database: string, cred: Credentials, o: ProbeOptions): Promise<ForbiddenProbe> {
  const opened = await openSession(conn, target, database, cred, o);
  if ('failure' in opened) return { connected: false, failure: opened.failure };
  await opened.client.end().catch(() => {});
  return { connected: true };
}

// A table name of our own, so that a run never touches the web app's tables.
async function writeProbe(client: pg.Client): Promise<BackendProbe['write']> {
  const table = `public.pem_settings_verify_${randomBytes(4).toString('hex')}`;
  try {
    await client.query(`CREATE TABLE ${table} (id int)`);
  } catch (e) {
    return { ok: false, ...pgError(e) };
  }
  try {
    await client.query(`INSERT INTO ${table} VALUES (1)`);
    await client.query(`DROP TABLE ${table}`);
    return { ok: true };
  } catch (e) {
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    return { ok: false, ...pgError(e) };
  }
}

async function openSession(conn: Connection, target: HostPort, database: string, cred: Credentials, o: ProbeOptions):
  Promise<{ client: pg.Client; auth: AuthMethod } | { failure: SessionFailure }> {
  let channel: Duplex;
  try {
    channel = await withTimeout(conn.forward(target.host, target.port), o.timeoutMs, 'timed out');
  } catch (e) {
    return { failure: { stage: 'forward', message: `the web host cannot open a TCP connection to it: ${String((e as Error).message ?? e).replace(/^\(SSH\) /, '')}` } };
  }
  const client = new pg.Client({
    stream: () => socketLike(channel),
    host: target.host,
    port: target.port,
    user: cred.user,
    // The password as libpq prepares it for SCRAM (SASLprep, or the raw bytes where SASLprep
    // fails): the web app's libpq and this session then hash the same bytes.
    password: libpqPassword(cred.password),
    database,
    // TLS is required (sslmode=require, as the hostssl rule demands); the lab and many sites use
    // self-signed certificates, and verify checks that TLS is used, not who signed it.
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: o.timeoutMs,
    query_timeout: o.timeoutMs,
    application_name: 'pem-settings verify',
  });
  // pg exposes no "how did we authenticate": the protocol messages say it. A completed
  // AuthenticationSASLFinal means SCRAM-SHA-256 ran and pg checked the server's signature.
  const seen = new Set<string>();
  for (const m of ['authenticationSASL', 'authenticationSASLFinal', 'authenticationMD5Password', 'authenticationCleartextPassword']) {
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.on(m, () => seen.add(m));
  }
  // A failed session can still emit 'error' after connect() rejected: never let it crash the run.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    channel.destroy();
    const { message, code } = pgError(e);
    const tls = /does not support SSL|establishing an SSL connection/.test(message);
    return { failure: { stage: tls ? 'tls' : 'session', message, ...(code ? { code } : {}) } };
  }
  const auth: AuthMethod = seen.has('authenticationSASLFinal') ? 'scram-sha-256'
    : seen.has('authenticationMD5Password') ? 'md5' : seen.has('authenticationCleartextPassword') ? 'password' : 'trust';
  return { client, auth };
}

/** pg treats its stream as a net.Socket: an SSH channel is already connected and has no TCP knobs. */
function socketLike(channel: Duplex): Duplex {
  const s = channel as Duplex & Record<string, unknown>;
  s['connect'] = () => {
    process.nextTick(() => s.emit('connect'));
    return s;
  };
  for (const noop of ['setNoDelay', 'setKeepAlive', 'ref', 'unref']) s[noop] = () => s;
  return s;
}

function pgError(e: unknown): { message: string; code?: string } {
  const err = e as { message?: string; code?: string };
  const code = typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : undefined;
  return { message: String(err.message ?? e), ...(code ? { code } : {}) };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The password libpq would hash, as a string for pg (whose own SASLprep leaves a prepared one as it is). */
export function libpqPassword(password: string): string {
  try {
    return passwordBytes(password).toString('utf8');
  } catch {
    return password; // not storable at all: the server will refuse it either way
  }
}
