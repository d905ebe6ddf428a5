// Stage 4 (SPEC 4): CONFIG_DATABASE_URI in config_local.py on every web host. The facts are one
// read of the file (bytes, owner, mode) and of what decides a new file's owner and who must be
// able to read it; planning is pure (config-local/edit.ts, uri.ts); applying is one script that
// checks the file is still what we read, backs it up, writes a temporary file with the right
// owner and mode, checks it compiles and that the web app's user can read it, then renames it.

import { backupPath, sameAsRead } from './backups.ts';
import type { Change } from '../src/change.ts';
import { heredoc, shellQuote, type Connection, type RunResult } from '../src/connection.ts';
import { HostError, UnreachableError } from '../src/errors.ts';
import type { HostPlan } from '../src/runner.ts';
import { sha256 } from './backend-facts.ts';
import { ConfigParseError, pythonStringLiteral, setConfigValue } from './config-local/edit.ts';
import { maskConfigSecrets } from './config-local/mask.ts';
import { type SettingsUri } from './config-local/uri.ts';
import type { WebSettings } from './settings.ts';

export const URI_VARIABLE = 'CONFIG_DATABASE_URI';

export interface WebFacts {
  exists: boolean;
  text: string;
  sha256?: string;
  /** Octal mode and owner of the existing file. */
  mode?: string;
  owner?: string;
  group?: string;
  /** Owner and group of config.py beside it (for a new file). */
  configPyOwner?: string;
  python3: boolean;
  /** The user the web app runs as: pem_web_user, else found among running processes. */
  webUser?: string;
}

export class WebFactsError extends Error {}

/** The user a running PEM web app has, found by the path of its directory in process arguments. */
// Sets $u. One grep over /proc costs a third of `ps`, and the apply of every changing host runs it.
function detectWebUser(dir: string): string {
  return `u=; for p in $(grep -lsF -- ${shellQuote(dir)} /proc/[0-9]*/cmdline); do u=$(stat -c %U "\${p%/cmdline}" 2>/dev/null) && [ "$u" != root ] && break; u=; done`;
}

export function webFactsScript(w: WebSettings): string {
  const dir = w.configLocal.replace(/\/[^/]*$/, '') || '/';
  return [
    'set -u',
    `f=${shellQuote(w.configLocal)}`,
    `dir=${shellQuote(dir)}`,
    'if [ -e "$f" ]; then',
    '  echo "#file present $(stat -c \'%a %U %G\' "$f")"',
    '  base64 -w0 < "$f" || exit 5; echo',
    // config.py's owner is only wanted for a new file.
    'else echo "#file absent"; [ ! -e "$dir/config.py" ] || echo "#configpy $(stat -c \'%U:%G\' "$dir/config.py")"; fi',
    'if command -v python3 >/dev/null 2>&1; then echo "#python3 yes"; else echo "#python3 no"; fi',
    // Finding the web app's user scans every process: left to the apply, which only changing hosts run.
    ...(w.webUser ? [`echo ${shellQuote(`#webuser ${w.webUser}`)}`] : []),
    'exit 0',
  ].join('\n');
}

/** The facts from the script's result, or the host's failure in the operator's words. */
export function webFactsFrom(host: string, result: RunResult): WebFacts {
  if (result.code !== 0) throw new HostError(host, 'facts', result.stderr.trim() || `the facts script exited with ${result.code}`);
  try {
    return parseWebFacts(result.stdout);
  } catch (e) {
    if (e instanceof WebFactsError) throw new HostError(host, 'facts', e.message);
    throw e;
  }
}

export function parseWebFacts(stdout: string): WebFacts {
  const lines = stdout.split('\n');
  const fileAt = lines.findIndex((l) => l.startsWith('#file '));
  if (fileAt < 0) throw new WebFactsError('the facts script printed something unexpected');
  const [, state, mode, owner, group] = lines[fileAt]!.split(' ');
  const exists = state === 'present';
  const text = exists ? Buffer.from(lines[fileAt + 1] ?? '', 'base64').toString('utf8') : '';
  const value = (prefix: string) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length).trim();
  const webUser = value('#webuser ');
  const configPyOwner = value('#configpy ');
  return {
    exists, text, python3: value('#python3 ') === 'yes',
    ...(exists ? { sha256: sha256(text), mode, owner, group } : {}),
    ...(configPyOwner ? { configPyOwner } : {}),
    ...(webUser ? { webUser } : {}),
  };
}

export interface WebChange extends Change {
  newText: string;
  /** user:group and octal mode the file gets. */
  owner: string;
  mode: string;
}

/** A restart an earlier run owes: the file is still as that run wrote it, the restart never completed. */
export interface PendingRestart {
  run: string;
  sha256After: string;
}

export function planWebStage(host: string, w: WebSettings, facts: WebFacts, uri: SettingsUri, pending?: PendingRestart): Change[] {
  let result;
  try {
    result = setConfigValue(facts.text, URI_VARIABLE, pythonStringLiteral(uri.uri));
  } catch (e) {
    if (e instanceof ConfigParseError) {
      throw new HostError(host, 'config_local.py', `${w.configLocal} is not valid Python (${e.message}); it was left untouched`, 'fix the file by hand first');
    }
    throw e;
  }
  const owner = facts.exists ? `${facts.owner}:${facts.group}` : w.configOwner ?? facts.configPyOwner;
  if (!owner) {
    throw new HostError(host, 'config_local.py', `${w.configLocal} does not exist and there is no config.py beside it to take the owner from`,
      'set pem_config_owner=user:group, or check pem_config_local');
  }
  const warnings = [...uri.notes];
  if (result.untouched.length) warnings.push(`${URI_VARIABLE} is also assigned inside a block or with += at line ${result.untouched.join(', ')}; left as is`);
  // Owner and mode are kept, except that the file holds a password: others never read it.
  const oldMode = facts.exists ? parseInt(facts.mode!, 8) : undefined;
  const mode = oldMode === undefined ? 0o640 : oldMode & ~0o007;
  const modeChanged = oldMode !== undefined && mode !== oldMode;
  const where = facts.exists ? (result.changed ? `set at line ${result.line}` : `already set at line ${result.line}`) : 'new file';
  const change: WebChange = {
    host, stage: 'web', step: 'config_local.py', target: w.configLocal, changed: result.changed || modeChanged,
    summary: `${URI_VARIABLE} ${where} (${uri.form === 'single' ? 'one host' : uri.form === 'multi-same-port' ? 'several hosts, read-write target' : 'several hosts on several ports, read-write target'})` +
      (result.disabled.length ? `; duplicate assignment(s) at line ${result.disabled.join(', ')} commented out` : '') +
      (modeChanged ? `; mode ${oldMode!.toString(8).padStart(4, '0')} -> ${mode.toString(8).padStart(4, '0')}: others could read the password` : ''),
    ...(warnings.length ? { warnings } : {}),
    ...(result.changed ? { diff: { path: w.configLocal, before: maskConfigSecrets(facts.text), after: maskConfigSecrets(result.newText) } } : {}),
    newText: result.newText, owner, mode: mode.toString(8),
  };
  const changes: Change[] = [change];
  if (w.webRestart) {
    const owed = !result.changed && pending !== undefined && facts.sha256 === pending.sha256After;
    changes.push({
      host, stage: 'web', step: 'restart web app', target: w.webRestart, changed: result.changed || owed,
      summary: result.changed ? `run pem_web_restart: ${w.webRestart}`
        : owed ? `run pem_web_restart: ${w.webRestart} (run ${pending!.run} wrote the file but its restart did not complete)`
          : 'nothing changed: no restart',
    });
  }
  return changes;
}

export function webApplyScript(c: WebChange, facts: WebFacts, runId: string): string {
  const content = heredoc(Buffer.from(c.newText, 'utf8').toString('base64').replace(/(.{76})/g, '$1\n'));
  const [user, group] = c.owner.split(':');
  // Prints only the line number and the parser's message, never the line (it may hold the URI).
  const compile = 'import sys\ntry:\n compile(open(sys.argv[1], "rb").read(), sys.argv[1], "exec")\nexcept SyntaxError as e:\n print("line %s: %s" % (e.lineno, e.msg)); sys.exit(1)';
  return [
    'set -u',
    'umask 077',
    `f=${shellQuote(c.target)}`,
    facts.exists
      ? sameAsRead('"$f"', facts.sha256!)
      : '[ ! -e "$f" ] || { echo "$f appeared since it was read; run again" >&2; exit 10; }',
    // Until the new file is in place, any way out removes what this script made: nothing changed,
    // so neither the temporary file nor a backup (perhaps cut short by a full disk) stays behind.
    'tmp=',
    facts.exists ? `backup=${shellQuote(backupPath(c.target, runId))}` : 'backup=',
    'trap \'[ -z "$tmp" ] || rm -f "$tmp"; [ -z "$backup" ] || rm -f "$backup"\' EXIT',
    'trap \'exit 129\' HUP PIPE TERM',
    // The backup may hold the old password: like the file, it is never readable by others.
    facts.exists ? 'cp -p "$f" "$backup" && chmod o-rwx "$backup" || { echo "cannot write the backup $backup (disk full or read-only?); nothing was changed" >&2; exit 11; }' : '',
    'tmp=$(mktemp "${f%/*}/.config_local.pem-settings.XXXXXX") || { tmp=; echo "cannot create a temporary file beside $f (disk full or read-only?); nothing was changed" >&2; exit 12; }',
    `base64 -d > "$tmp" ${content.open} || { echo "cannot write $tmp (disk full or read-only?); nothing was changed" >&2; exit 12; }`,
    content.body.trimEnd(),
    `chown ${shellQuote(`${user}:${group}`)} "$tmp" && chmod ${c.mode} "$tmp" || { echo "cannot set owner ${user}:${group} and mode ${c.mode} on the new file" >&2; exit 13; }`,
    // Syntax check without writing a .pyc into the web app's directory.
    `if command -v python3 >/dev/null 2>&1; then err=$(python3 -I -S -c ${shellQuote(compile)} "$tmp" 2>&1) || { echo "the new file does not compile ($err); nothing was changed" >&2; exit 14; }; fi`,
    facts.webUser ? `u=${shellQuote(facts.webUser)}` : detectWebUser(c.target.replace(/\/[^/]*$/, '') || '/'),
    'echo "#webuser ${u:-unknown}"',
    `if [ -n "$u" ] && command -v runuser >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then`,
    `  runuser -u "$u" -- test -r "$tmp" || { echo "the web app user $u could not read the new file (owner ${c.owner}, mode ${c.mode}); nothing was changed" >&2; exit 15; }`,
    'fi',
    'mv -f "$tmp" "$f" || { echo "cannot replace $f" >&2; exit 16; }',
    'trap - EXIT HUP PIPE TERM',
    'echo "backup $backup"',
  ].join('\n');
}

export function webHostPlan(conn: Connection, w: WebSettings, facts: WebFacts, changes: Change[], runId: string, becomeUser?: string): HostPlan {
  return {
    changes,
    async apply(changed, record) {
      const file = changed.find((c) => c.step === 'config_local.py') as WebChange | undefined;
      if (file) {
        const r = await conn.run(webApplyScript(file, facts, runId), { ...(becomeUser ? { becomeUser } : {}) });
        if (r.lost) {
          // Not recorded: whether the rename happened is unknown, and a re-run reads the file afresh.
          throw new UnreachableError(conn.host, 'config_local.py', `the SSH connection dropped while ${file.target} was being replaced: it holds either its old or its new content, never a mix (the new file is put in place by one rename)`,
            'run deploy again once the host is reachable');
        }
        if (r.code !== 0) throw new HostError(conn.host, 'config_local.py', r.stderr.trim() || `the update script exited with ${r.code}`);
        if (/^#webuser unknown$/m.test(r.stdout)) {
          file.warnings = [...(file.warnings ?? []), 'the web app\'s user is unknown (no pem_web_user and no running web app found): readability of the file by it was not checked'];
        }
        record(file.step, {
          file: file.target, created: !facts.exists, backup: facts.exists ? backupPath(file.target, runId) : null,
          sha256Before: facts.sha256 ?? null, sha256After: sha256(file.newText), owner: file.owner, mode: file.mode,
        });
      }
      if (w.webRestart && changed.some((c) => c.step === 'restart web app')) {
        await runWebRestart(conn, w.webRestart, becomeUser, record, 'config_local.py was updated');
      }
    },
  };
}

/**
 * The operator's pem_web_restart, run as given (as the become user). Recorded only when it
 * succeeded: a failed or cut-off restart is reported as such, and the next deploy owes it.
 */
export async function runWebRestart(conn: Connection, command: string, becomeUser: string | undefined,
  record: (step: string, data: Record<string, unknown>) => void, fileState: string): Promise<void> {
  const step = 'restart web app';
  const r = await conn.run(command, becomeUser ? { becomeUser } : {});
  if (r.lost) {
    throw new UnreachableError(conn.host, step, 'the SSH connection dropped while pem_web_restart ran: whether the web app restarted is unknown',
      `${fileState}; the next deploy restarts the web app (or restart it by hand)`);
  }
  if (r.code !== 0) {
    throw new HostError(conn.host, step, `pem_web_restart exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      `${fileState}; restart the web app by hand`);
  }
  record(step, { exitCode: r.code });
}
