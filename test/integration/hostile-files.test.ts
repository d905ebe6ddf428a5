// Hosts that fight back (issues 13 and 14): a hostile local user who plants things where the run
// lock used to live (/tmp/.pem-settings.lock), a config_local.py and a pg_hba.conf that are
// symbolic links to files elsewhere, and a config_local.py in Latin-1 with a coding line.
import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { startLab, type Lab, type LocalUser } from '../lab/lab.ts';
import { cli, sql, recapRows } from './helpers.ts';
import { fileOn, namesIn, password, statOn, type JsonRun } from './faults-shared.ts';

// Namespaces are machine-wide: this file's lab is named ss* on 10.231.210.0/24 only.
const FILE = '/usr/edb/pem/web/config_local.py';
const WEB_DIR = '/usr/edb/pem/web';
const PG_DATA = '/var/lib/postgresql/15/main';
const HBA = `${PG_DATA}/pg_hba.conf`;
const WEBS = ['web-1', 'web-2', 'web-3'];
const BACKENDS = ['pg-primary', 'pg-standby'];
const OLD_LOCK = '/tmp/.pem-settings.lock';
const MALLORY = 'ssmallory';

let lab: Lab;

test.before(async () => {
  lab = await startLab({ name: 'sshost', subnet: '10.231.210.0/24', webPython: true });
});

test.after.always(async () => {
  await lab?.stop();
});

const env = (n: number) => ({ PEM_SETTINGS_PASSWORD: password(n) });
const deploy = (n: number, ...args: string[]) => cli(['deploy', '-i', lab.inventoryPath, ...args], env(n));
const rollback = (...args: string[]) => cli(['rollback', '-i', lab.inventoryPath, ...args]);
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sh = async (host: string, script: string, ...args: string[]): Promise<string> => {
  const r = await lab.exec(host, ['sh', '-c', script, 'sh', ...args]);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
};
const runIdOf = (stdout: string): string => /^pem-settings deploy run (\S+)$/m.exec(stdout)?.[1] ?? '';

const recap = recapRows;

function allUnchanged(t: ExecutionContext, stdout: string): void {
  const rows = recap(stdout);
  t.deepEqual([...rows.keys()].sort(), [...BACKENDS, ...WEBS].sort(), stdout);
  for (const [h, row] of rows) t.regex(row, /changed=0 +failed=0 +unreachable=0/, `${h}: ${row}`);
}

/** The bytes of every file the job touches (through links, as a reader sees them). */
async function snapshot(): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const h of WEBS) out[`${h}:${FILE}`] = await fileOn(lab, h, FILE);
  for (const h of BACKENDS) out[`${h}:${HBA}`] = await fileOn(lab, h, HBA);
  return out;
}

const uriPattern = (): string =>
  `"postgresql://pem_user_settings:[^@"]+@${re(lab.host('pg-primary').address)},${re(lab.host('pg-standby').address)}:5432/pem_user_settings\\?[^"]*target_session_attrs=read-write[^"]*"`;

// ---- 4. a hostile local user ---------------------------------------------------------------------

/** What mallory leaves at the old lock path, as `ls -l` and the bytes of what it points at would show it. */
async function planted(host: string): Promise<string> {
  return sh(host, `stat -c '%F %U %a %s' "$1"; readlink "$1" || true; cat /tmp/ss-victim; stat -c '%U %a %s %Y' /tmp/ss-victim`, OLD_LOCK);
}

const noLockWait = (t: ExecutionContext, text: string) => {
  t.notRegex(text, /waiting up to .* for the run lock/);
  t.notRegex(text, /run lock/);
};

test.serial('a hostile local user cannot make a deploy hang, wait, or write through what they plant at the old lock path', async (t) => {
  const mallory: LocalUser = await lab.addLocalUser(MALLORY);
  const hosts = ['web-1', 'pg-primary']; // a web host (the lock is root's) and a backend (postgres's)

  // The lock's new homes are out of reach: mallory can create neither directory.
  for (const h of hosts) {
    for (const dir of ['/root/.pem-settings', '/var/lib/postgresql/.pem-settings']) {
      const r = await mallory.exec(h, ['python3', '-c', 'import os, sys\ntry:\n    os.mkdir(sys.argv[1], 0o777)\nexcept OSError as e:\n    print(e.errno)', dir]);
      t.is(r.stdout.trim(), '13', `${h}: mallory: mkdir ${dir} fails with EACCES: ${r.stdout}${r.stderr}`);
    }
  }

  // A file the test owns, for mallory's symbolic link to point at.
  for (const h of hosts) await sh(h, 'printf "precious\\n" > /tmp/ss-victim && chmod 0644 /tmp/ss-victim && touch -d "2020-01-01 00:00:00" /tmp/ss-victim');
  const before = await snapshot();
  let first = '';

  const kinds = ['symlink', 'fifo', 'flock'] as const;
  for (const [i, kind] of kinds.entries()) {
    const holders: Promise<unknown>[] = [];
    for (const h of hosts) {
      const m = await mallory.exec(h, ['sh', '-c', 'rm -f "$1" && case "$2" in symlink) ln -s /tmp/ss-victim "$1";; fifo) mkfifo -m 0666 "$1";; flock) : > "$1" && chmod 0666 "$1";; esac', 'sh', OLD_LOCK, kind]);
      t.is(m.code, 0, `${h}: ${kind}: ${m.stderr}`);
      if (kind === 'flock') {
        // Held until the test says so: a process of mallory's with flock on the old lock file.
        const hold = 'import fcntl, os, sys, time\nf = open(sys.argv[1], "a")\nfcntl.flock(f, fcntl.LOCK_EX)\nopen("/tmp/ss-held", "w").close()\nwhile not os.path.exists("/tmp/ss-release"):\n    time.sleep(0.1)';
        await sh(h, 'rm -f /tmp/ss-release /tmp/ss-held');
        holders.push(mallory.exec(h, ['python3', '-c', hold, OLD_LOCK], { timeoutMs: 120_000 }));
        for (let n = 0; n < 100 && (await lab.exec(h, ['test', '-e', '/tmp/ss-held'])).code !== 0; n++) await new Promise((r) => setTimeout(r, 50));
        t.is((await lab.exec(h, ['flock', '-n', '-E', '75', OLD_LOCK, 'true'])).code, 75, `${h}: mallory holds flock on ${OLD_LOCK}`);
      }
    }
    const plantedBefore = await Promise.all(hosts.map(planted));
    const tmpBefore = await Promise.all(hosts.map((h) => namesIn(lab, h, '/tmp')));
    const started = Date.now();
    const r = await deploy(4);
    const ms = Date.now() - started;
    try {
      t.is(r.code, 0, `${kind}: ${r.stdout}${r.stderr}`);
      t.true(ms < 30_000, `${kind}: bounded: ${ms} ms`);
      noLockWait(t, r.stdout + r.stderr);
      t.deepEqual(await Promise.all(hosts.map(planted)), plantedBefore, `${kind}: what mallory planted, and what the link points at, are untouched`);
      t.deepEqual(await Promise.all(hosts.map((h) => namesIn(lab, h, '/tmp'))), tmpBefore, `${kind}: no file appeared in /tmp`);
      if (i === 0) first = runIdOf(r.stdout);
      else allUnchanged(t, r.stdout);
    } finally {
      if (kind === 'flock') {
        for (const h of hosts) await sh(h, ': > /tmp/ss-release');
        await Promise.all(holders);
      }
    }
  }

  // The lock lives in the home of the user who takes it, in a 0700 directory mallory cannot enter.
  t.regex(await statOn(lab, 'web-1', '/root/.pem-settings'), /^700 root:root /);
  t.regex(await statOn(lab, 'pg-primary', '/var/lib/postgresql/.pem-settings'), /^700 postgres:postgres /);
  t.regex(await sh('pg-primary', 'cat /var/lib/postgresql/.pem-settings/lock'), /^run \S+ /);
  for (const [h, lock] of [['web-1', '/root/.pem-settings/lock'], ['pg-primary', '/var/lib/postgresql/.pem-settings/lock']] as const) {
    const r = await mallory.exec(h, ['flock', '-n', lock, 'true']);
    t.not(r.code, 0, `${h}: mallory cannot take ${lock}`);
    t.regex(r.stderr, /Permission denied/, h);
  }

  t.regex(first, /^\d{8}T\d{6}Z-[0-9a-f]+$/);
  const back = await rollback('--run', first);
  t.is(back.code, 0, back.stdout + back.stderr);
  t.deepEqual(await snapshot(), before, 'rollback: every file byte for byte');
  for (const h of hosts) await sh(h, 'rm -f /tmp/ss-victim /tmp/ss-held /tmp/ss-release');
});

// ---- 8. symbolic links -------------------------------------------------------------------------

/** A /srv of the host's own (a tmpfs in its mount namespace: the machine's /srv is not touched). */
async function ownSrv(host: string): Promise<void> {
  await sh(host, 'mountpoint -q /srv || mount -t tmpfs -o mode=0755,size=4m sshost-srv /srv');
}

test.serial('a config_local.py that is a link to a file elsewhere: the link stays, the file it leads to gets the URI, rollback restores it', async (t) => {
  const host = 'web-2';
  const real = '/srv/pemconf/config_local.py';
  await ownSrv(host);
  const original = await readFile(lab.hostPath(host, FILE));
  await sh(host, 'mkdir -m 0755 /srv/pemconf && cp "$1" "$2" && chown root:www-data "$2" && chmod 0640 "$2" && rm "$1" && ln -s "$2" "$1"', FILE, real);
  const readLink = () => sh(host, 'stat -c %F "$1"; readlink "$1"', FILE);
  const link = await readLink();
  t.is(link, `symbolic link\n${real}\n`);
  const webDirBefore = await namesIn(lab, host, WEB_DIR);
  const before = await snapshot();

  const d = await deploy(8);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.regex(d.stdout, new RegExp(`^\\[web\\] ${host}: config_local.py: changed - .*; in ${re(real)}, where the link leads`, 'm'));
  t.is(await readLink(), link, 'still a link to the same file');
  const after = await sh(host, 'cat "$1"', real);
  t.true(after.startsWith(original.toString()), 'every byte before the new line kept');
  t.regex(after.slice(original.length), new RegExp(`^CONFIG_DATABASE_URI = ${uriPattern()}\\n$`));
  t.regex(await statOn(lab, host, real), /^640 root:www-data /, 'owner, group and mode kept');
  const run = runIdOf(d.stdout);
  t.is(await sh(host, 'cat "$1"', `${real}.pem-settings-${run}.bak`), original.toString(), 'the backup sits beside the real file');
  t.regex(await statOn(lab, host, `${real}.pem-settings-${run}.bak`), /^640 root:www-data /);
  t.deepEqual(await namesIn(lab, host, WEB_DIR), webDirBefore, 'nothing new beside the link');

  // The web app, as www-data, reads the file through the link and reaches the primary.
  const c = await lab.exec(host, ['/usr/bin/python3', lab.webTools!.consumer, FILE], { user: 'www-data' });
  t.is(c.code, 0, c.stdout + c.stderr);
  t.regex(c.stdout, new RegExp(`^ok ${re(lab.host('pg-primary').address)} ssl \\d+`));

  const v = await cli(['verify', '-i', lab.inventoryPath], env(8));
  t.is(v.code, 0, v.stdout + v.stderr);
  allUnchanged(t, (await deploy(8)).stdout);

  const r = await rollback();
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(await readLink(), link, 'rollback keeps the link');
  t.is(await sh(host, 'cat "$1"', real), original.toString(), "the real file's bytes are back");
  t.regex(await statOn(lab, host, real), /^640 root:www-data /);
  t.deepEqual(await snapshot(), before);
});

test.serial("a standby's pg_hba.conf that is a link to a file elsewhere: the link stays, the rule lands in the file it leads to, rollback restores it", async (t) => {
  const host = 'pg-standby';
  const real = '/srv/pghba/pg_hba.conf';
  await ownSrv(host);
  const original = await sh(host, 'cat "$1"', HBA);
  await sh(host, 'mkdir -m 0750 /srv/pghba && chown postgres:postgres /srv/pghba && cp -p "$1" "$2" && rm "$1" && ln -s "$2" "$1" && chown -h postgres:postgres "$1"', HBA, real);
  t.is(await sql(lab, host, 'SELECT pg_reload_conf()'), 't');
  t.is(await sql(lab, host, 'SHOW hba_file'), HBA, 'the server still reads the link path');
  t.is(await sql(lab, host, 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL'), '0');
  const readLink = () => sh(host, 'stat -c %F "$1"; readlink "$1"', HBA);
  const link = await readLink();
  t.is(link, `symbolic link\n${real}\n`);
  const dataBefore = await namesIn(lab, host, PG_DATA);
  const before = await snapshot();

  const d = await deploy(9);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.regex(d.stdout, /^\[pg_hba\] pg-standby: pg_hba.conf rule: changed - insert "hostssl pem_user_settings pem_user_settings /m);
  t.is(await readLink(), link, 'still a link to the same file');
  const rule = `hostssl pem_user_settings pem_user_settings ${lab.webSubnet} scram-sha-256`;
  const after = await sh(host, 'cat "$1"', real);
  t.true(after.includes(`\n${rule}\n`), after);
  t.is(after.replace(`${rule}\n`, ''), original, 'one line added, every other byte kept');
  t.regex(await statOn(lab, host, real), /^600 postgres:postgres /);
  const run = runIdOf(d.stdout);
  t.is(await sh(host, 'cat "$1"', `${real}.pem-settings-${run}.bak`), original, 'the backup sits beside the real file');
  t.deepEqual(await namesIn(lab, host, PG_DATA), dataBefore, 'nothing new beside the link');
  t.is(await sql(lab, host, `SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND 'pem_user_settings' = ANY(database) AND address = '${lab.webSubnet.split('/')[0]}'`), '1', 'the rule is loaded');

  allUnchanged(t, (await deploy(9)).stdout);

  const r = await rollback();
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(await readLink(), link, 'rollback keeps the link');
  t.is(await sh(host, 'cat "$1"', real), original, "the real file's bytes are back");
  t.regex(await statOn(lab, host, real), /^600 postgres:postgres /);
  t.is(await sql(lab, host, `SELECT count(*) FROM pg_hba_file_rules WHERE 'pem_user_settings' = ANY(database)`), '0', 'the rule is gone from the server too');
  t.deepEqual(await snapshot(), before);
});

// ---- 9. a Latin-1 config_local.py (and a UTF-8 one with a BOM) ------------------------------------

/**
 * A file of `head + old + tail` bytes (one character a byte: comparing such strings compares
 * bytes) on web-3: deploy puts what `inserted` matches between head and tail, every other byte
 * kept; the web app's parser reads it; verify holds; the next deploy changes nothing; rollback
 * gives back the exact bytes.
 */
async function encodedFileCycle(t: ExecutionContext, n: number, head: string, old: string, tail: string, inserted: RegExp): Promise<void> {
  const host = 'web-3';
  const original = Buffer.from(head + old + tail, 'latin1');
  await writeFile(lab.hostPath(host, FILE), original); // the existing file: root:www-data 0640 kept
  t.regex(await statOn(lab, host, FILE), /^640 root:www-data /);
  const before = await snapshot();

  const d = await deploy(n);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.regex(recap(d.stdout).get(host) ?? '', /changed=1 /);
  const after = await readFile(lab.hostPath(host, FILE));
  const text = after.toString('latin1');
  t.true(text.startsWith(head), 'every byte before the change kept');
  t.true(text.endsWith(tail), 'every byte after the change kept');
  t.regex(text.slice(head.length, text.length - tail.length), inserted);
  t.regex(await statOn(lab, host, FILE), /^640 root:www-data /);

  // The web app's parser reads it (Python honours the coding line, and skips a BOM).
  const p = await lab.exec(host, ['/usr/bin/python3', lab.webTools!.consumer, '--parse', FILE], { user: 'www-data' });
  t.is(p.code, 0, p.stdout + p.stderr);
  const v = await cli(['verify', '-i', lab.inventoryPath], env(n));
  t.is(v.code, 0, v.stdout + v.stderr);

  const again = await cli(['deploy', '-i', lab.inventoryPath, '--json'], env(n));
  t.is(again.code, 0, again.stdout + again.stderr);
  const doc = JSON.parse(again.stdout) as JsonRun;
  for (const [h, res] of Object.entries(doc.hosts)) t.is(res.changed + res.failed, 0, `${h}: ${JSON.stringify(res.steps)}`);
  t.deepEqual(await readFile(lab.hostPath(host, FILE)), after);

  const r = await rollback();
  t.is(r.code, 0, r.stdout + r.stderr);
  t.deepEqual(await readFile(lab.hostPath(host, FILE)), original, 'the exact original bytes');
  t.deepEqual(await snapshot(), before);
}

test.serial('a config_local.py in Latin-1 with a coding line keeps every byte outside the URI, stays unchanged on the next deploy, and rolls back exactly', async (t) => {
  // The next deploy used to fail with "changed since it was read".
  const head = "# -*- coding: latin-1 -*-\n# Param\u00e9tres locaux de l'instance PEM (caf\u00e9)\nSERVER_MODE = True\nCONFIG_DATABASE_URI = ";
  const tail = "  # d\u00e9sactiv\u00e9 jusqu'\u00e0 la migration\nLABEL = 'Caf\u00e9 cr\u00e8me'\nLOG_LEVEL = 20\n";
  t.true(Buffer.from(head + tail, 'latin1').includes(0xe9) && !Buffer.from(head + tail, 'latin1').includes(0xc3), 'Latin-1 bytes, no UTF-8');
  await encodedFileCycle(t, 10, head, "''", tail, new RegExp(`^${uriPattern()}$`));
});

test.serial('a UTF-8 config_local.py that starts with a BOM (a Windows editor, CRLF) gets the URI appended, every other byte kept', async (t) => {
  // It used to be refused on every run: "not valid Python (line 1: invalid character U+00BB)".
  const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const head = '\u00ef\u00bb\u00bf' + utf8('# Réglages locaux, édités sous Windows\r\nSERVER_MODE = True\r\nLABEL = "Café"\r\n');
  await encodedFileCycle(t, 12, head, '', '', new RegExp(`^CONFIG_DATABASE_URI = ${uriPattern()}\\r\\n$`));
});

// ---- a link that leads nowhere -------------------------------------------------------------------

test.serial('a config_local.py that is a link to nothing fails its host in the facts, saying so, and nothing is written anywhere', async (t) => {
  const host = 'web-1';
  const target = `${WEB_DIR}/conf.d/config_local.py`; // not there, nor its directory
  t.is(await fileOn(lab, host, FILE), undefined, 'web-1 starts with no config_local.py');
  await sh(host, 'ln -s "$2" "$1"', FILE, target);
  const readLink = () => sh(host, 'stat -c %F "$1"; readlink "$1"', FILE);
  const link = await readLink();
  const before = await snapshot();
  const dir = await namesIn(lab, host, WEB_DIR);
  try {
    for (const args of [['--check'], []]) {
      const r = await deploy(11, ...args);
      t.is(r.code, 1, r.stdout + r.stderr);
      // Not "appeared since it was read; run again": running again would fail the same way, forever.
      t.notRegex(r.stdout, /appeared since it was read/);
      t.regex(r.stdout, new RegExp(`^\\[facts\\] ${host}: .*failed - ${re(FILE)} is a symbolic link to a file that does not exist`, 'm'), r.stdout);
      t.regex(recap(r.stdout).get(host) ?? '', /failed=1 /);
      t.is(await readLink(), link, 'the link is left as it was');
      t.deepEqual(await namesIn(lab, host, WEB_DIR), dir, 'nothing created');
      t.deepEqual(await snapshot(), before);
    }
    const v = await cli(['verify', '-i', lab.inventoryPath, '--limit', host], env(11));
    t.is(v.code, 1, v.stdout + v.stderr);
    t.regex(v.stdout, new RegExp(`${host}: .*failed - ${re(FILE)} is a symbolic link to a file that does not exist`), v.stdout);
  } finally {
    await sh(host, 'rm -f "$1"', FILE);
  }
});
