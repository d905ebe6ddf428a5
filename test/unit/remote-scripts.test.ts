// Every remote operation's script, run under /bin/sh (dash) against a temporary directory: the
// scripts are what runs on the hosts, so they are tested as scripts, without a lab and without
// root — the happy path and each way out: the file changed since it was read, no room to write,
// a symbolic link, bytes that are not UTF-8, a validation that fails.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { frame } from '../../src/remote/frame.ts';
import { lockScript, servedScript } from '../../src/remote/lock.ts';
import { batch, OpError, sequence, type Output, type RemoteOp } from '../../src/remote/op.ts';
import { canRead, whichCommands } from '../../src/remote/probe.ts';
import { readFiles, sha256 } from '../../src/remote/read-files.ts';
import { REPLACE_EXIT, removeFile, replaceFile, type ReplaceRequest } from '../../src/remote/replace-file.ts';

const isRoot = process.getuid?.() === 0;

function sh(script: string): Output {
  const r = spawnSync('/bin/sh', ['-s'], { input: script, encoding: 'utf8', cwd: '/' });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 255 };
}

function run<T>(op: RemoteOp<T>): T {
  return op.read(sh(op.script));
}

function failing<T>(op: RemoteOp<T>): OpError {
  const out = sh(op.script);
  try {
    op.read(out);
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error(`expected the operation to fail: ${JSON.stringify(out)}`);
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'pems-remote-'));
}

const LATIN1 = Buffer.from('# -*- coding: latin-1 -*-\nNAME = "caf\xe9"\n', 'latin1');

test('/bin/sh is dash here, as on Debian hosts', (t) => {
  t.regex(readlinkSync('/bin/sh'), /dash/);
});

test('frames keep each part\'s standard output, standard error and status apart', (t) => {
  const f = frame(['echo out1; echo err1 >&2; exit 3', 'printf "no newline"', 'echo "#fake 0 end 0" ; echo e2 >&2']);
  const out = sh(f.script);
  const [a, b, c] = f.split(out.stdout);
  t.deepEqual(a, { stdout: 'out1\n', stderr: 'err1', code: 3 }, 'standard error is a message: its trailing line break goes');
  t.deepEqual(b, { stdout: 'no newline', stderr: '', code: 0 });
  t.deepEqual(c, { stdout: '#fake 0 end 0\n', stderr: 'e2', code: 0 }, 'a line that looks like a frame is data');
  const withNothing = frame(['echo a', ':', 'exit 4']);
  t.deepEqual(withNothing.split(sh(withNothing.script).stdout).map((o) => o && [o.stdout, o.code]), [['a\n', 0], ['', 0], ['', 4]], 'an operation that does nothing has its empty frame');
});

test('a sequence runs each operation only when the one before it succeeded', (t) => {
  const d = dir();
  const mark = (name: string, status = 0): RemoteOp<void> => ({ script: `touch ${join(d, name)}; echo ${name}; exit ${status}`, read: () => undefined });
  const ok = sh(sequence(mark('one'), mark('two'), mark('three')).script);
  t.deepEqual(sequence(mark('one'), mark('two'), mark('three')).read(ok).map((o) => o?.stdout), ['one\n', 'two\n', 'three\n']);
  const stopped = sequence(mark('four'), mark('five', 14), mark('six'));
  const parts = stopped.read(sh(stopped.script));
  t.deepEqual(parts.map((o) => o?.code), [0, 14, undefined], 'the failed one has its status; the one after it did not run');
  t.deepEqual(readdirSync(d).sort(), ['five', 'four', 'one', 'three', 'two']);
});

test('batch reads each operation with its own reader, in one script', (t) => {
  const d = dir();
  writeFileSync(join(d, 'a'), 'A');
  const [[file], programs] = run(batch(readFiles([{ path: join(d, 'a') }]), whichCommands(['sh', 'no-such-program-here'])));
  t.deepEqual(file!.state === 'present' && file!.bytes, Buffer.from('A'));
  t.truthy(programs['sh']);
  t.is(programs['no-such-program-here'], undefined);
});

test('readFiles: bytes as they are, mode, owner, and where a link leads', (t) => {
  const d = dir();
  const real = join(d, 'real.py');
  writeFileSync(real, LATIN1, { mode: 0o640 });
  chmodSync(real, 0o640);
  symlinkSync(real, join(d, 'link.py'));
  symlinkSync(join(d, 'nothing'), join(d, 'dangling'));
  spawnSync('mkfifo', [join(d, 'fifo')]);
  const [viaLink, absent, dangling, fifo, statOnly] = run(readFiles([
    { path: join(d, 'link.py') }, { path: join(d, 'absent') }, { path: join(d, 'dangling') }, { path: join(d, 'fifo') }, { path: real, content: false },
  ]));
  if (viaLink!.state !== 'present') return t.fail(viaLink!.state);
  t.deepEqual(viaLink!.bytes, LATIN1, 'not UTF-8: every byte survives');
  t.is(viaLink!.sha256, sha256(LATIN1));
  t.is(viaLink!.target, real);
  t.is(viaLink!.mode, '640');
  t.is(viaLink!.uid, process.getuid!());
  t.is(viaLink!.owner, userInfo().username);
  t.is(absent!.state, 'absent');
  t.is(dangling!.state, 'dangling');
  t.is(fifo!.state, 'special', 'a FIFO is never opened');
  t.like(statOnly, { state: 'present', mode: '640' });
});

function request(path: string, before: Buffer, over: Partial<ReplaceRequest> = {}): ReplaceRequest {
  return { path, expect: { sha256: sha256(before), target: path }, bytes: Buffer.from('NEW = 1\n'), tempStem: '.t', ...over };
}

/** Nothing but the named files is left in the directory: no temporary file, no backup. */
function onlyFiles(d: string): string[] {
  return readdirSync(d).sort();
}

test('replaceFile: new bytes in place, owner and mode kept, a backup beside it that others cannot read', (t) => {
  const d = dir();
  const f = join(d, 'config_local.py');
  writeFileSync(f, LATIN1);
  chmodSync(f, 0o644);
  const r = run(replaceFile(request(f, LATIN1, { backupSuffix: '.bak' })));
  t.deepEqual(readFileSync(f), Buffer.from('NEW = 1\n'));
  t.is(statSync(f).mode & 0o777, 0o644);
  t.is(r.target, f);
  t.is(r.backup, `${f}.bak`);
  t.deepEqual(readFileSync(`${f}.bak`), LATIN1, 'the backup has the old bytes');
  t.is(statSync(`${f}.bak`).mode & 0o777, 0o640);
  t.deepEqual(onlyFiles(d), ['config_local.py', 'config_local.py.bak']);
});

test('replaceFile: a file changed since it was read is left alone, and nothing is left behind', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'OLD\n');
  const e = failing(replaceFile(request(f, Buffer.from('what we read\n'), { backupSuffix: '.bak' })));
  t.is(e.code, REPLACE_EXIT.changedSinceRead);
  t.regex(e.message, /changed since it was read; run again/);
  t.is(readFileSync(f, 'utf8'), 'OLD\n');
  t.deepEqual(onlyFiles(d), ['f']);
});

test('replaceFile: a file that appeared since it was read as absent is left alone', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'SOMEONE ELSE\n');
  const e = failing(replaceFile({ ...request(f, Buffer.alloc(0)), expect: 'absent' }));
  t.is(e.code, REPLACE_EXIT.changedSinceRead);
  t.is(readFileSync(f, 'utf8'), 'SOMEONE ELSE\n');
});

test('replaceFile: a link is followed, stays a link, and the file it leads to keeps its mode', (t) => {
  const d = dir();
  const shared = join(d, 'shared');
  mkdirSync(shared);
  const real = join(shared, 'config_local.py');
  writeFileSync(real, 'OLD\n');
  chmodSync(real, 0o640);
  const link = join(d, 'config_local.py');
  symlinkSync(real, link);
  const r = run(replaceFile({ ...request(link, Buffer.from('OLD\n')), expect: { sha256: sha256(Buffer.from('OLD\n')), target: real }, backupSuffix: '.bak' }));
  t.true(lstatSync(link).isSymbolicLink());
  t.is(readlinkSync(link), real);
  t.is(readFileSync(real, 'utf8'), 'NEW = 1\n');
  t.is(statSync(real).mode & 0o777, 0o640);
  t.is(r.target, real);
  t.is(r.backup, `${real}.bak`, 'the backup sits beside the real file');
  t.deepEqual(onlyFiles(shared), ['config_local.py', 'config_local.py.bak']);
});

test('replaceFile: a link that now leads elsewhere is refused', (t) => {
  const d = dir();
  writeFileSync(join(d, 'a'), 'X\n');
  symlinkSync(join(d, 'a'), join(d, 'link'));
  const e = failing(replaceFile({ ...request(join(d, 'link'), Buffer.from('X\n')), expect: { sha256: sha256(Buffer.from('X\n')), target: join(d, 'b') } }));
  t.is(e.code, REPLACE_EXIT.changedSinceRead);
  t.regex(e.message, /no longer leads to the file that was read/);
});

test('replaceFile: a validation that fails keeps the old file, says why, and leaves nothing behind', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'OLD\n');
  const e = failing(replaceFile(request(f, Buffer.from('OLD\n'), { backupSuffix: '.bak', validate: { what: 'the check', command: 'echo "line 1: nope"; exit 1' } })));
  t.is(e.code, REPLACE_EXIT.invalid);
  t.regex(e.message, /fails the check \(line 1: nope\); nothing was changed/);
  t.is(readFileSync(f, 'utf8'), 'OLD\n');
  t.deepEqual(onlyFiles(d), ['f']);
});

test('replaceFile: the new file is checked with its temporary path as $1', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'OLD\n');
  run(replaceFile(request(f, Buffer.from('OLD\n'), { validate: { what: 'grep', command: 'grep -q "^NEW" "$1"' } })));
  t.is(readFileSync(f, 'utf8'), 'NEW = 1\n');
});

test('replaceFile: a reader who does not exist is refused before the rename', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'OLD\n');
  const e = failing(replaceFile(request(f, Buffer.from('OLD\n'), { readableBy: { user: 'no-such-user-pems' } })));
  t.is(e.code, REPLACE_EXIT.unreadableByUser);
  t.is(readFileSync(f, 'utf8'), 'OLD\n');
  t.deepEqual(onlyFiles(d), ['f']);
});

test('replaceFile: a new file gets the mode asked for', (t) => {
  const d = dir();
  const f = join(d, 'new.py');
  const r = run(replaceFile({ path: f, expect: 'absent', bytes: Buffer.from('A = 1\n'), mode: '640', tempStem: '.n', backupSuffix: '.bak' }));
  t.is(statSync(f).mode & 0o777, 0o640);
  t.is(r.backup, undefined, 'nothing to back up');
  t.deepEqual(onlyFiles(d), ['new.py']);
  // Modes a umask can give at creation, and ones it cannot (execute bits).
  for (const mode of ['0600', '644', '750', '0711']) {
    const g = join(d, `mode-${mode}`);
    run(replaceFile({ path: g, expect: 'absent', bytes: Buffer.from('x\n'), mode, tempStem: '.n' }));
    t.is((statSync(g).mode & 0o777).toString(8), String(Number(mode.replace(/^0/, ''))), mode);
  }
});

test('replaceFile: no room for the backup or the new file: untouched, nothing left behind', (t) => {
  const d = dir();
  const full = join(d, 'full');
  mkdirSync(full);
  const f = join(full, 'f');
  writeFileSync(f, 'OLD CONTENT\n');
  // As root a small full tmpfs; as anyone else a directory they cannot write (root ignores modes).
  if (isRoot) {
    t.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'pems-full', full]).status, 0);
    writeFileSync(f, 'OLD CONTENT\n');
    spawnSync('sh', ['-c', `dd if=/dev/zero of=${full}/filler bs=1k count=64 2>/dev/null`]);
  } else chmodSync(full, 0o555);
  try {
    const e = failing(replaceFile(request(f, Buffer.from('OLD CONTENT\n'), { backupSuffix: '.bak', bytes: Buffer.alloc(8192, 'x') })));
    t.true(e.code === REPLACE_EXIT.backupFailed || e.code === REPLACE_EXIT.tempFailed, String(e.code));
    t.regex(e.message, /disk full or read-only\?\); nothing was changed/);
    // No backup asked: the new bytes themselves do not fit, whether written as text (printf) or
    // as bytes that are not UTF-8 (base64).
    for (const bytes of [Buffer.alloc(8192, 'x'), Buffer.alloc(8192, 0xe9)]) {
      const noRoom = failing(replaceFile(request(f, Buffer.from('OLD CONTENT\n'), { bytes })));
      t.is(noRoom.code, REPLACE_EXIT.tempFailed, noRoom.message);
      t.regex(noRoom.message, isRoot ? /No space left on device/ : /Permission denied/, 'the reason, as the system gives it');
    }
    t.is(readFileSync(f, 'utf8'), 'OLD CONTENT\n');
    t.deepEqual(onlyFiles(full).filter((n) => n !== 'filler'), ['f']);
  } finally {
    if (isRoot) spawnSync('umount', [full]);
    else chmodSync(full, 0o755);
  }
});

test('removeFile: removes only what was read, keeping a copy when asked', (t) => {
  const d = dir();
  const f = join(d, 'f');
  writeFileSync(f, 'MINE\n');
  t.is(failing(removeFile({ path: f, expect: { sha256: sha256(Buffer.from('other\n')) } })).code, REPLACE_EXIT.changedSinceRead);
  t.true(existsSync(f));
  run(removeFile({ path: f, expect: { sha256: sha256(Buffer.from('MINE\n')) }, keepAs: `${f}.kept` }));
  t.false(existsSync(f));
  t.is(readFileSync(`${f}.kept`, 'utf8'), 'MINE\n');
});

test('canRead: says yes for the user running it, no-user for a user that does not exist', (t) => {
  const d = dir();
  writeFileSync(join(d, 'f'), 'x');
  t.is(run(canRead(userInfo().username, join(d, 'f'))), 'yes');
  t.is(run(canRead('no-such-user-pems', join(d, 'f'))), 'no-user');
});

function lockIn(home: string, runId: string, waitSec = 0) {
  return lockScript('echo body-ran', { runId, holder: 'by a test', waitSec, home });
}

test('lock: taken in a private directory of the home, with the first operation in the same script', (t) => {
  const home = dir();
  const lock = lockIn(home, 'run-1');
  const { lock: outcome, body } = lock.read(sh(lock.script.replace('exec cat >/dev/null', '')).stdout);
  t.deepEqual(outcome, { state: 'held' });
  t.deepEqual(body, { stdout: 'body-ran\n', stderr: '', code: 0 });
  t.is(statSync(join(home, '.pem-settings')).mode & 0o777, 0o700);
  t.regex(readFileSync(join(home, '.pem-settings', 'lock'), 'utf8'), /^run run-1 by a test\n$/);
});

test('lock: a symbolic link, a FIFO or a foreign directory where the lock goes is refused, never followed or opened', (t) => {
  for (const plant of ['link-dir', 'link-file', 'fifo'] as const) {
    const home = dir();
    const victim = join(home, 'victim');
    writeFileSync(victim, 'precious\n');
    if (plant === 'link-dir') symlinkSync(home, join(home, '.pem-settings'));
    else {
      mkdirSync(join(home, '.pem-settings'), { mode: 0o700 });
      if (plant === 'link-file') symlinkSync(victim, join(home, '.pem-settings', 'lock'));
      else spawnSync('mkfifo', [join(home, '.pem-settings', 'lock')]);
    }
    const lock = lockIn(home, 'run-1');
    const r = spawnSync('/bin/sh', ['-s'], { input: lock.script.replace('exec cat >/dev/null', ''), encoding: 'utf8', timeout: 10_000 });
    t.is(r.error, undefined, `${plant}: no hang`);
    const { lock: outcome, body } = lock.read(r.stdout);
    t.is(outcome.state, 'refused', plant);
    t.is(body, undefined, `${plant}: the first operation did not run`);
    t.is(readFileSync(victim, 'utf8'), 'precious\n', `${plant}: nothing written through it`);
  }
});

test('lock: another run\'s lock is busy, naming its holder without control characters; our own run\'s is ours', async (t) => {
  const home = dir();
  mkdirSync(join(home, '.pem-settings'), { mode: 0o700 });
  const file = join(home, '.pem-settings', 'lock');
  writeFileSync(file, 'run other-run by \u001b[31mmallory\u0007 pid 1\n');
  // Hold it from another process for the length of the test.
  const holder = spawnSync('sh', ['-c', `flock -n ${file} sleep 0 && echo free`], { encoding: 'utf8' });
  t.is(holder.stdout.trim(), 'free');
  const { spawn } = await import('node:child_process');
  const held = spawn('flock', ['-n', file, 'sleep', '30']);
  await new Promise((done) => setTimeout(done, 300));
  try {
    const busy = lockIn(home, 'run-2');
    const outcome = busy.read(sh(busy.script).stdout).lock;
    t.is(outcome.state, 'busy');
    t.is(outcome.state === 'busy' && outcome.holder, 'run other-run by [31mmallory pid 1');
    writeFileSync(file, 'run run-2 by me\n');
    const self = lockIn(home, 'run-2');
    const again = self.read(sh(self.script.replace('exec cat >/dev/null', '')).stdout);
    t.deepEqual(again.lock, { state: 'self' }, 'one machine under two names: the run never blocks itself');
    t.is(again.body?.stdout, 'body-ran\n');
  } finally {
    held.kill();
  }
});

test('replaceFile: a file owned by another user (pg_hba.conf owned by root, written as postgres) is refused, never given a new owner', (t) => {
  // Needs two users: as root, the script runs as `nobody` in a directory nobody may write.
  if (!isRoot) return t.pass('only root can run a script as another user here');
  const d = dir();
  chmodSync(d, 0o777);
  const f = join(d, 'pg_hba.conf');
  writeFileSync(f, 'local all all peer\n', { mode: 0o644 });
  const op = replaceFile(request(f, Buffer.from('local all all peer\n'), { backupSuffix: '.bak', tempStem: '.pg_hba' }));
  const r = spawnSync('runuser', ['-u', 'nobody', '--', '/bin/sh', '-s'], { input: op.script, encoding: 'utf8', cwd: '/' });
  t.is(r.status, REPLACE_EXIT.ownerFailed, r.stderr);
  t.regex(r.stderr, /cannot give the new file the owner of the file it replaces and its mode as nobody; nothing was changed/);
  t.is(readFileSync(f, 'utf8'), 'local all all peer\n');
  t.is(statSync(f).uid, 0, 'still root\'s');
  t.deepEqual(onlyFiles(d), ['pg_hba.conf']);
});

test('lock: the held session runs the scripts sent to it, output and status apart, and lets go when its input ends', async (t) => {
  const { spawn } = await import('node:child_process');
  const home = dir();
  const lock = lockIn(home, 'run-3');
  const shell = spawn('/bin/sh', ['-s'], { cwd: '/' });
  let out = '';
  shell.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const closed = new Promise<number | null>((done) => shell.on('close', done));
  shell.stdin.write(lock.script);
  const until = async (what: RegExp) => {
    for (let i = 0; i < 100 && !what.test(out); i++) await new Promise((done) => setTimeout(done, 50));
  };
  await until(new RegExp(lock.heldMarker));
  const script = 'echo "sent once"; echo "a message" >&2; exit 3';
  const sent = servedScript(lock.heldMarker, script, 30);
  shell.stdin.write(sent.input);
  const ran = lock.heldMarker.replace(/ held$/, ' ran');
  await until(new RegExp(`${ran} \\d+`));
  t.regex(out, new RegExp(`${lock.heldMarker}\\nsent once\\n\\n${ran} 3 ${Buffer.from('a message').toString('base64')}\\n`));
  t.deepEqual(sent.read(out.slice(out.indexOf(`${lock.heldMarker}\n`) + lock.heldMarker.length + 1)),
    { stdout: 'sent once\n', stderr: 'a message', code: 3 }, 'its reader keeps output, message and status apart');
  // The session lives on after a script that exits; a script with a here-document of its own
  // (the same delimiter the session would pick) is carried whole.
  // …and never gets the lock's descriptor (fd 9): nothing it starts can outlive the run holding the lock.
  shell.stdin.write(servedScript(lock.heldMarker, "cat <<'PEMS_EOF'\nsecond\nPEMS_EOF\n[ ! -e /proc/self/fd/9 ] || echo 'has the lock fd'\nexit 0", 30).input);
  await until(new RegExp(`${ran} 0`));
  t.regex(out, new RegExp(`${ran} 3 \\S+\\nsecond\\n\\n${ran} 0 \\n`));
  // Each script sent has its own timeout; the session outlives it.
  shell.stdin.write(servedScript(lock.heldMarker, 'sleep 20; echo never', 1).input);
  await until(new RegExp(`${ran} 124`));
  t.regex(out, new RegExp(`\\n${ran} 124 \\n$`));
  shell.stdin.end();
  t.is(await closed, 0, 'input ended: the session ends and the lock goes with it');
});

test('lock: the first operation run under the lock has a timeout like every remote command', (t) => {
  const home = dir();
  const lock = lockScript('sleep 20; echo never', { runId: 'run-4', holder: 'by a test', waitSec: 0, home, timeoutSec: 1 });
  const started = Date.now();
  const { lock: outcome, body } = lock.read(sh(lock.script).stdout);
  t.deepEqual(outcome, { state: 'held' });
  t.is(body?.code, 124, 'stopped by timeout(1)');
  t.is(body?.stdout, '');
  t.true(Date.now() - started < 10_000);
});
