// Replacing a file on a host, atomically, and only if it is still what was read: the new bytes
// go to a temporary file beside the real file (a link is followed: the file it points to is
// replaced and the link stays), which gets the owner and mode, passes the validation and the
// readability check, and is renamed into place. Until the rename, every way out (an error, a
// signal, a full disk) removes what the script made: nothing changed, nothing left behind.

import { OpError, failure, type RemoteOp } from './op.ts';
import { randomBytes } from 'node:crypto';
import { base64Input, shellQuote } from './shell.ts';

/** Exit statuses of the script, shared with the code that reads them. */
export const REPLACE_EXIT = {
  changedSinceRead: 10,
  backupFailed: 11,
  tempFailed: 12,
  ownerFailed: 13,
  invalid: 14,
  unreadableByUser: 15,
  renameFailed: 16,
} as const;

export interface ReplaceRequest {
  /** The path as configured (it may be a symbolic link). */
  path: string;
  /** What the file must still be: its sha256 (and the file the path led to, when known), or absent. */
  expect: { sha256: string; target?: string } | 'absent';
  bytes: Buffer;
  /** `user:group` (names or numbers) to give the file; default: the existing file's. */
  owner?: string;
  /** Octal mode to give the file; default: the existing file's. */
  mode?: string;
  /** Copy the existing file first to its own path plus this suffix (beside it); never readable by others. */
  backupSuffix?: string;
  /** The existing file's octal mode as read, when known: a backup of a file others cannot read needs no chmod. */
  modeRead?: string;
  /** Name stem of the temporary file, e.g. ".config_local". */
  tempStem: string;
  /** A check of the new file, given as $1; prints why it failed on standard output. */
  validate?: { command: string; what: string };
  /** A user who must be able to read the new file (checked as root only), or a script that prints one. */
  readableBy?: { user: string } | { detect: string };
}

export interface Replaced {
  /** The file that was replaced (the link's target when the path is a link). */
  target: string;
  backup?: string;
  /** Who was checked to read it; unchecked when no user was known or we are not root. */
  reader?: { user: string; checked: boolean };
}

const E = REPLACE_EXIT;

function guard(expect: ReplaceRequest['expect']): string[] {
  if (expect === 'absent') {
    return ['t=$p', `if [ -e "$p" ] || [ -L "$p" ]; then echo "$p appeared since it was read; run again" >&2; exit ${E.changedSinceRead}; fi`];
  }
  return [
    // Resolved as readFiles resolves it: a link to where it leads, any other path as given.
    'if [ -L "$p" ]; then t=$(readlink -f -- "$p") || t=; else t=$p; fi',
    ...(expect.target === undefined ? [] : [
      `[ "$t" = ${shellQuote(expect.target)} ] || { echo "$p no longer leads to the file that was read; run again" >&2; exit ${E.changedSinceRead}; }`,
    ]),
    `[ -f "$t" ] && set -- $(sha256sum < "$t") && [ "\${1:-}" = ${expect.sha256} ] || { echo "$p changed since it was read; run again" >&2; exit ${E.changedSinceRead}; }`,
  ];
}

/**
 * The umask that creates the temporary file with the mode asked for, when a umask can (no
 * execute or special bits): then no chmod is needed. Each process costs a fork and an exec on a
 * host that may be busy with every other host's work.
 */
function creationUmask(mode: string | undefined): string | undefined {
  if (mode === undefined || !/^0?[0-7]{3}$/.test(mode)) return undefined;
  const bits = parseInt(mode, 8);
  return bits & 0o111 ? undefined : (0o777 & ~bits).toString(8).padStart(3, '0');
}

function ownerAndMode(r: ReplaceRequest): string[] {
  const exists = r.expect !== 'absent';
  // The file it replaces: its owner is given to the new file unless both are already ours.
  const owner = r.owner ? `chown ${shellQuote(r.owner)} "$tmp"`
    : exists ? '{ [ -O "$t" ] && [ -G "$t" ] && [ -O "$tmp" ] && [ -G "$tmp" ] || chown --reference="$t" "$tmp"; }' : ':';
  // A mode asked for is given at creation when a umask can give it (writeTemp); else by chmod.
  const mode = r.mode ? (creationUmask(r.mode) === undefined ? `chmod ${r.mode} "$tmp"` : ':') : exists ? 'chmod --reference="$t" "$tmp"' : ':';
  if (owner === ':' && mode === ':') return [];
  const who = r.owner ?? 'of the file it replaces';
  return [`${owner} 2>/dev/null && ${mode} || { echo "cannot give the new file the owner ${who} and its mode as $(id -un); nothing was changed" >&2; exit ${E.ownerFailed}; }`];
}

/**
 * The temporary file, created beside the file by the shell itself, never over anything (noclobber
 * opens a new name with O_EXCL; the name is random), with the new bytes: through printf, a
 * builtin, when they are text the script can carry as it is; else through base64(1).
 */
function writeTemp(r: ReplaceRequest): string[] {
  const name = `\${t%/*}/${r.tempStem}.pem-settings.${randomBytes(6).toString('hex')}`;
  const giveUp = `echo "cannot write $tmp (disk full or read-only?); nothing was changed" >&2; exit ${E.tempFailed}`;
  const cannot = `{ ${giveUp}; }`;
  // printf, a builtin, says only "I/O error" when a write fails: a full disk is named here.
  const full = `{ [ "$(stat -f -c %a -- "$tmp" 2>/dev/null)" != 0 ] || echo "No space left on device" >&2; ${giveUp}; }`;
  const umask = creationUmask(r.mode);
  const asText = r.bytes.includes(0) ? undefined : r.bytes.toString('utf8');
  const write = asText !== undefined && Buffer.from(asText, 'utf8').equals(r.bytes)
    ? [`printf '%s' ${shellQuote(asText)} > "$tmp" || ${full}`]
    : [base64Input(`base64 -d > "$tmp"`, r.bytes, `|| ${cannot}`)];
  return [
    ...(umask ? [`umask ${umask}`] : []),
    `tmp="${name}"`,
    `if [ -e "$tmp" ] || [ -L "$tmp" ] || ! (set -C; : > "$tmp"); then tmp=; echo "cannot create a temporary file beside $t (disk full or read-only?); nothing was changed" >&2; exit ${E.tempFailed}; fi`,
    'umask 077',
    // A write cut short (disk full) must never be renamed into place: it could be a valid but shorter file.
    ...write,
  ];
}

function validation(r: ReplaceRequest): string[] {
  if (!r.validate) return [];
  return [
    `pems_validate() {\n${r.validate.command}\n}`,
    `why=$(pems_validate "$tmp") || { echo "the new file fails ${r.validate.what} ($(printf '%s' "$why" | head -n 3 | tr '\\n' ' ')); nothing was changed" >&2; exit ${E.invalid}; }`,
  ];
}

function readability(r: ReplaceRequest): string[] {
  if (!r.readableBy) return ['echo "#reader -"'];
  const pick = 'user' in r.readableBy ? `u=${shellQuote(r.readableBy.user)}` : `u=$(\n${r.readableBy.detect}\n) || u=`;
  const noUser = `echo "user $u does not exist on the host; nothing was changed" >&2; exit ${E.unreadableByUser}`;
  // The usual way through costs one process: `[ -O / ]` (a builtin) is true only for root, who
  // owns /; whether the user exists is asked only when the check failed.
  return [
    pick,
    'if [ -z "$u" ]; then echo "#reader -"',
    'elif [ -O / ]; then',
    '  if runuser -u "$u" -- test -r "$tmp" 2>/dev/null; then echo "#reader $u checked"',
    `  elif ! id -u "$u" >/dev/null 2>&1; then ${noUser}`,
    `  else echo "the web app user $u could not read the new file (owner $(stat -c %U:%G "$tmp"), mode $(stat -c %a "$tmp")); nothing was changed" >&2; exit ${E.unreadableByUser}; fi`,
    `elif ! id -u "$u" >/dev/null 2>&1; then ${noUser}`,
    'else echo "#reader $u unchecked"; fi',
  ];
}

export function replaceFile(r: ReplaceRequest): RemoteOp<Replaced> {
  const script = [
    'set -u',
    'umask 077',
    `p=${shellQuote(r.path)}`,
    ...guard(r.expect),
    'tmp=; backup=',
    'trap \'[ -z "$tmp" ] || rm -f "$tmp"; [ -z "$backup" ] || rm -f "$backup"\' EXIT',
    'trap \'exit 129\' HUP INT PIPE TERM',
    ...(r.backupSuffix && r.expect !== 'absent' ? [
      `backup="$t"${shellQuote(r.backupSuffix)}`,
      // The backup may hold a password: like the file it copies, never readable by others.
      `cp -p -- "$t" "$backup"${r.modeRead !== undefined && r.modeRead.endsWith('0') ? '' : ' && chmod o-rwx "$backup"'} || { echo "cannot write the backup $backup (disk full or read-only?); nothing was changed" >&2; exit ${E.backupFailed}; }`,
    ] : []),
    ...writeTemp(r),
    ...ownerAndMode(r),
    ...validation(r),
    ...readability(r),
    `mv -f -- "$tmp" "$t" || { echo "cannot replace $t; nothing was changed" >&2; exit ${E.renameFailed}; }`,
    'tmp=; trap - EXIT HUP INT PIPE TERM',
    'echo "#target $t"',
    'echo "#backup $backup"',
  ].join('\n');
  return {
    script,
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'the replacement'), out.code);
      const value = (key: string) => new RegExp(`^#${key} (.*)$`, 'm').exec(out.stdout)?.[1];
      const reader = value('reader');
      const [user, how] = (reader ?? '-').split(' ');
      return {
        target: value('target') ?? r.path,
        ...(value('backup') ? { backup: value('backup')! } : {}),
        ...(user && user !== '-' ? { reader: { user, checked: how === 'checked' } } : {}),
      };
    },
  };
}

/** Removes a file (rollback of one the run created), only if it is still what was read. */
export function removeFile(r: { path: string; expect: { sha256: string; target?: string }; keepAs?: string }): RemoteOp<void> {
  const script = [
    'set -u',
    `p=${shellQuote(r.path)}`,
    ...guard(r.expect),
    ...(r.keepAs ? [`cp -p -- "$t" ${shellQuote(r.keepAs)} && chmod o-rwx ${shellQuote(r.keepAs)} || { echo "cannot keep a copy as ${r.keepAs}; nothing was changed" >&2; exit ${E.backupFailed}; }`] : []),
    // The link (if the path is one) goes too: it would point at nothing.
    `rm -f -- "$t" && { [ "$p" = "$t" ] || rm -f -- "$p"; } || { echo "cannot remove $t" >&2; exit ${E.renameFailed}; }`,
  ].join('\n');
  return {
    script,
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'the removal'), out.code);
    },
  };
}

/** Removes a file we made (a backup that is no longer needed); nothing if it is gone. */
export function deleteFile(path: string): RemoteOp<void> {
  return {
    script: `rm -f -- ${shellQuote(path)}`,
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'the removal'), out.code);
    },
  };
}
