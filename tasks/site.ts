// What the whole site should look like, from the settings: the URI every web host gets and the
// catalog target on the primary. The URI lists every backend of the inventory whatever the
// limit (SPEC 2): a limit narrows the hosts touched, never the desired state.

import { settingsUri, type SettingsUri, type UriSecurity } from './config-local/uri.ts';
import type { DbTarget } from './database/facts.ts';
import type { Opening } from '../src/connections.ts';
import type { RunContext } from '../src/job.ts';
import type { BackendSettings, JobSettings, WebSettings } from './settings.ts';

/** libpq learnt channel binding in version 13 (PQlibVersion 130000). */
const CHANNEL_BINDING_SINCE = 130000;

/**
 * The URI a web host gets. Without a web host: the site's form alone (what checks the inventory
 * before anything connects). With one: what its connection must demand (TLS, channel binding
 * where its libpq has it) and, with pem_db_passfile, no password.
 */
export function desiredUri(settings: JobSettings, password: string, web?: { w: WebSettings; libpq?: number }): SettingsUri {
  const uri = settingsUri({
    user: settings.user, password, database: settings.db,
    backends: settings.backends.map((b) => ({ host: b.dbAddress, port: b.pgPort })),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(web ? { security: securityOf(web.w, web.libpq) } : {}),
  });
  if (web?.libpq !== undefined && web.libpq < CHANNEL_BINDING_SINCE) {
    uri.notes.push(`the web app's libpq is ${libpqText(web.libpq)}, older than 13: channel_binding=require is left out, so the URI demands TLS but cannot bind the password exchange to it`);
  }
  return uri;
}

function securityOf(w: WebSettings, libpq?: number): UriSecurity {
  return {
    channelBinding: libpq === undefined || libpq >= CHANNEL_BINDING_SINCE,
    ...(w.dbSslRootCert ? { sslrootcert: w.dbSslRootCert } : {}),
    ...(w.dbPassfile ? { passfile: w.dbPassfile } : {}),
  };
}

/** 150004 as 15.4, 110022 as 11.22 (PQlibVersion's encoding). */
export function libpqText(version: number): string {
  return `${Math.floor(version / 10000)}.${version % 10000}`;
}

export function dbTarget(settings: JobSettings): DbTarget {
  return { db: settings.db, user: settings.user, grantee: settings.grantee, revokeConnect: settings.revokeConnect };
}

/** Ids of a host's locked sessions: a host may be a backend and a web host at once. */
export const opening = {
  backend: (host: string) => `${host} as backend`,
  web: (host: string) => `${host} as web host`,
};

/** A backend's locked session: as the cluster's OS user, `script` its first operation. */
export function backendOpening(host: string, b: BackendSettings, script: string): Opening {
  return { id: opening.backend(host), host, user: b.pgOsUser, script };
}

/** A web host's locked session: as the become user (else the login user), `script` its first operation. */
export function webOpening(run: Pick<RunContext, 'login'>, host: string, script: string): Opening {
  const become = run.login(host).becomeUser;
  return { id: opening.web(host), host, ...(become ? { user: become } : {}), script };
}
