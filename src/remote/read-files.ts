// Reading files on a host: bytes, owner, mode, where a link points, sha256. A file that is a
// symbolic link is read where it points (that is the file to edit); its content is bytes end to
// end (base64 on the wire), whatever its encoding.

import { createHash } from 'node:crypto';
import { OpError, failure, type RemoteOp } from './op.ts';
import { shellQuote } from './shell.ts';

export interface FileStat {
  /** Octal permission bits, e.g. "640". */
  mode: string;
  uid: number;
  gid: number;
  /** User and group names; undefined when the id has no passwd or group entry. */
  owner?: string;
  group?: string;
}

export type FileFact =
  | { state: 'absent'; path: string }
  /** A symbolic link to nothing. */
  | { state: 'dangling'; path: string }
  /** Not a regular file (a directory, a FIFO, a device): never read, never replaced. */
  | { state: 'special'; path: string }
  | ({ state: 'unreadable'; path: string; target: string } & FileStat)
  | ({ state: 'present'; path: string; target: string; bytes: Buffer; sha256: string } & FileStat);

export interface ReadRequest {
  path: string;
  /** false: owner and mode only (a file whose content is not needed). */
  content?: boolean;
}

/**
 * Shell function: one file's state, where it leads and (when asked) its bytes, as lines. Few
 * processes (each costs a fork and an exec on a host that may be busy): a link is resolved only
 * when the path is one, the resolved path is printed as is (a line break in it is refused), and
 * the owners and modes of all the files come from one stat(1) at the end.
 */
const READ_FUNCTION = `pems_read() {
  if [ ! -e "$1" ]; then if [ -L "$1" ]; then echo dangling; else echo absent; fi; return 0; fi
  if [ -L "$1" ]; then t=$(readlink -f -- "$1") || { echo dangling; return 0; }; else t=$1; fi
  case "$t" in *'
'*) echo special; return 0;; esac
  [ -f "$t" ] || { echo special; return 0; }
  if [ -r "$t" ]; then s=present; else s=unreadable; fi
  echo "$s"; printf '%s\\n' "$t"
  if [ "$2" = stat ] || [ $s = unreadable ]; then echo; return 0; fi
  base64 -w0 < "$t" || return 5; echo
}`;

export function readFiles(requests: ReadRequest[]): RemoteOp<FileFact[]> {
  // stat -L reads what a link leads to, as readlink -f does; %n is the path as given, to match.
  const paths = requests.map((r) => shellQuote(r.path)).join(' ');
  return {
    script: [
      READ_FUNCTION,
      ...requests.map((r, i) => `echo '#file ${i}'; pems_read ${shellQuote(r.path)} ${r.content === false ? 'stat' : 'read'} || exit 5`),
      `stat -L -c '#stat %a %u %g %U %G %n' -- ${paths} 2>/dev/null || :`,
    ].join('\n'),
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'reading files'), out.code);
      return requests.map((r, i) => parseFileFact(out.stdout, i, r));
    },
  };
}

/** The owner and mode stat printed for `path`, or undefined (it vanished in between). */
function statOf(lines: string[], path: string): FileStat | undefined {
  for (const line of lines) {
    if (!line.startsWith('#stat ')) continue;
    const fields = line.split(' ');
    if (fields.slice(6).join(' ') !== path) continue;
    const [, mode, uid, gid, owner, group] = fields;
    return {
      mode: mode!, uid: Number(uid), gid: Number(gid),
      // stat(1) prints UNKNOWN for an id without a name: then only the number is known.
      ...(owner && owner !== 'UNKNOWN' ? { owner } : {}),
      ...(group && group !== 'UNKNOWN' ? { group } : {}),
    };
  }
  return undefined;
}

function parseFileFact(stdout: string, index: number, r: ReadRequest): FileFact {
  const lines = stdout.split('\n');
  const at = lines.indexOf(`#file ${index}`);
  if (at < 0) throw new OpError(`reading ${r.path} printed nothing`);
  const state = lines[at + 1] ?? '';
  if (state === 'absent' || state === 'dangling' || state === 'special') return { state, path: r.path };
  if (state !== 'present' && state !== 'unreadable') throw new OpError(`reading ${r.path} printed something unexpected`);
  const stat = statOf(lines, r.path);
  if (!stat) throw new OpError(`${r.path} changed while it was read; run again`);
  const target = lines[at + 2] ?? '';
  if (state === 'unreadable' || r.content === false) {
    // Content not asked for: an empty read, so the caller never mistakes it for the file's bytes.
    if (state === 'unreadable') return { state, path: r.path, target, ...stat };
    return { state, path: r.path, target, bytes: Buffer.alloc(0), sha256: '', ...stat };
  }
  const bytes = Buffer.from(lines[at + 3] ?? '', 'base64');
  return { state, path: r.path, target, bytes, sha256: sha256(bytes), ...stat };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `user:group` of a file, by name where the name is known, else by number. */
export function ownerOf(f: FileStat): string {
  return `${f.owner ?? f.uid}:${f.group ?? f.gid}`;
}
