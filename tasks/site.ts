// What the whole site should look like, from the settings: the URI every web host gets and the
// catalog target on the primary. The URI lists every backend of the inventory whatever the
// limit (SPEC 2): a limit narrows the hosts touched, never the desired state.

import { settingsUri, type SettingsUri } from './config-local/uri.ts';
import type { DbTarget } from './database/facts.ts';
import type { JobSettings } from './settings.ts';

export function desiredUri(settings: JobSettings, password: string): SettingsUri {
  return settingsUri({
    user: settings.user, password, database: settings.db,
    backends: settings.backends.map((b) => ({ host: b.dbAddress, port: b.pgPort })),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  });
}

export function dbTarget(settings: JobSettings): DbTarget {
  return { db: settings.db, user: settings.user, grantee: settings.grantee, revokeConnect: settings.revokeConnect };
}

/** Ids of a host's locked sessions: a host may be a backend and a web host at once. */
export const opening = {
  backend: (host: string) => `${host} as backend`,
  web: (host: string) => `${host} as web host`,
};
