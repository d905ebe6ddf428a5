// The password out of config_local.py (SPEC 3, 4): with pem_db_passfile the role's password goes
// into a libpq password file on the web host — one line per backend the URI names,
// `host:port:database:role:password` with `\` and `:` escaped as libpq reads them — owned by the
// web app's user and readable by nobody else (libpq ignores a file that others can read). The URI
// then carries `passfile=` and no password: not in config_local.py, its backups, or the About
// dialog. libpq reads the file for every new connection, so a new password needs no restart.

import type { Change } from '../../src/change.ts';
import type { FileFact } from '../../src/remote/read-files.ts';
import type { ReplaceRequest } from '../../src/remote/replace-file.ts';
import type { HostPort } from '../config-local/uri.ts';
import { STEP } from '../steps.ts';

/** One field of a libpq password file line. */
export function passfileField(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/** The file's bytes: a line for each address the web app may connect to. */
export function passfileText(targets: HostPort[], database: string, role: string, password: string): Buffer {
  const lines = targets.map((t) => [t.host, String(t.port), database, role, password].map(passfileField).join(':'));
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

/** The password a passfile gives for a database and role (the first line that matches them), as libpq would. */
export function passwordFrom(text: string, database: string, role: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = fieldsOf(line);
    if (fields.length === 5 && [database, '*'].includes(fields[2]!) && [role, '*'].includes(fields[3]!)) return fields[4];
  }
  return undefined;
}

/** A line's five fields: `\` escapes the next character, the fifth field is the rest of the line. */
function fieldsOf(line: string): string[] {
  const out: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) field += line[++i];
    else if (c === ':' && out.length < 4) {
      out.push(field);
      field = '';
    } else field += c;
  }
  return [...out, field];
}

export interface PassfilePlan {
  change: Change;
  write?: ReplaceRequest;
}

/** Pure: the file as it is against the one it must be (content, owner, 0600). */
export function planPassfile(host: string, path: string, webUser: string, current: FileFact | undefined, wanted: Buffer): PassfilePlan {
  const base = { host, stage: 'web', id: STEP.webPassfile, step: 'password file', target: path };
  const present = current?.state === 'present' ? current : undefined;
  const sameBytes = present !== undefined && present.bytes.equals(wanted);
  const right = sameBytes && present.mode === '600' && present.owner === webUser;
  if (right) return { change: { ...base, changed: false, summary: `${path} holds the password, 0600, owned by ${webUser}` } };
  const why = !present ? 'create it' : !sameBytes ? 'write the new password' : `give it to ${webUser}, mode 0600`;
  return {
    change: { ...base, changed: true, summary: `${path}: ${why} (libpq reads it for every new connection: no restart needed for it)`,
      diff: { path, before: present ? '(a password file; its content is not shown)\n' : '', after: '(a password file; its content is not shown)\n' } },
    write: {
      path, expect: present ? { sha256: present.sha256, target: present.target } : 'absent', bytes: wanted,
      owner: `${webUser}:`, mode: '600', tempStem: '.pgpass', readableBy: { user: webUser },
    },
  };
}
