// The one writer of config_local.py, for deploy's edit and rollback's restore alike: replaced
// atomically only if it is still what was read (a link is followed and stays a link), with a
// backup, the owner and mode asked for, a check that it compiles (when the host has python3),
// and a check that the web app's user can read it — all before the rename.

import type { Connection } from '../../src/connection.ts';
import { runOp } from '../../src/remote/op.ts';
import { replaceFile, type Replaced, type ReplaceRequest } from '../../src/remote/replace-file.ts';
import { shellQuote } from '../../src/remote/shell.ts';

// Prints only the line number and the parser's message, never the line (it may hold the URI);
// -I -S: no site packages, no .pyc written into the web app's directory.
const COMPILE = 'import sys\ntry:\n compile(open(sys.argv[1], "rb").read(), sys.argv[1], "exec")\nexcept SyntaxError as e:\n print("line %s: %s" % (e.lineno, e.msg)); sys.exit(1)';

/**
 * The user a running web app has, found by its directory in process command lines (not root).
 * The directory goes to grep on standard input: on grep's own command line it would find grep.
 */
function detectWebUser(dir: string): string {
  return `for p in $(printf '%s\\n' ${shellQuote(dir)} | grep -lsF -f - /proc/[0-9]*/cmdline); do u=$(stat -c %U "\${p%/cmdline}" 2>/dev/null) && [ "$u" != root ] && { echo "$u"; exit 0; }; done; exit 0`;
}

export interface ConfigWrite {
  path: string;
  expect: ReplaceRequest['expect'];
  bytes: Buffer;
  /** user:group for the file (a new one, or when given); default: the existing file's. */
  owner?: string;
  /** Octal mode; default: the existing file's. */
  mode?: string;
  /** The existing file's mode as read (a backup of a file others cannot read needs no chmod). */
  modeRead?: string;
  /** pem_web_user; else the user of a running web app, when one is found. */
  webUser?: string;
}

export function configLocalReplace(w: ConfigWrite, backupSuffix?: string): ReplaceRequest {
  return {
    path: w.path, expect: w.expect, bytes: w.bytes, tempStem: '.config_local',
    ...(w.mode ? { mode: w.mode } : {}),
    ...(w.modeRead ? { modeRead: w.modeRead } : {}),
    ...(w.owner ? { owner: w.owner } : {}),
    ...(backupSuffix ? { backupSuffix } : {}),
    validate: { what: 'Python\'s syntax check', command: `command -v python3 >/dev/null 2>&1 || exit 0\npython3 -I -S -c ${shellQuote(COMPILE)} "$1"` },
    readableBy: w.webUser ? { user: w.webUser } : { detect: detectWebUser(w.path.replace(/\/[^/]*$/, '') || '/') },
  };
}

export async function writeConfigLocal(conn: Connection, w: ConfigWrite, o: { user?: string; step: string; backupSuffix?: string }): Promise<Replaced> {
  return runOp(conn, replaceFile(configLocalReplace(w, o.backupSuffix)), {
    ...(o.user ? { user: o.user } : {}), step: o.step,
    ifLost: `${w.path} holds either its old or its new content, never a mix (the new file is put in place by one rename)`,
  });
}

/** The warning when nobody could be checked to read the file. */
export function readerWarning(r: Replaced): string | undefined {
  if (!r.reader) return 'the web app\'s user is unknown (no pem_web_user and no running web app found): readability of the file by it was not checked';
  if (!r.reader.checked) return `the web app's user ${r.reader.user} could not be checked to read the file (needs root: set ansible_become)`;
  return undefined;
}
