// Fault matrix, web hosts (issue 6): a web host that cannot be reached, that loses its SSH
// connection in the middle of its step, or whose disk refuses the write. Each time the run says
// which host failed and why, no file is half-written or left behind, and a re-run converges.
// Each deploy uses a new password (a rotation), so that every web file has something to change.
import test from 'ava';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, recapLine, webAppSchema } from './helpers.ts';
import {
  FILE, WEB_DIR, WEBS, fileOn, inventoryWith, killSshds, leftovers, namesIn, parseJson, password, running, spawnCli, statOn,
  stepsOf, waitUntil, webFiles,
} from './faults-shared.ts';

let lab: Lab;

test.before(async () => {
  lab = await startLab({ name: 'flt40', subnet: '10.231.40.0/24' });
});
test.after.always(async () => {
  await lab?.stop();
});

const deploy = (pw: string, ...args: string[]) => cli(['deploy', '-i', lab.inventoryPath, ...args], { PEM_SETTINGS_PASSWORD: pw });

/** A deploy with everything ok, then one with changed=0 everywhere. */
async function converges(t: import('ava').ExecutionContext, pw: string, inventory = lab.inventoryPath): Promise<void> {
  const first = await cli(['deploy', '-i', inventory, '--json'], { PEM_SETTINGS_PASSWORD: pw });
  t.is(first.code, 0, first.stdout + first.stderr);
  const second = parseJson(await cli(['deploy', '-i', inventory, '--json'], { PEM_SETTINGS_PASSWORD: pw }));
  for (const [h, r] of Object.entries(second.hosts)) t.deepEqual([r.changed, r.failed, r.unreachable], [0, 0, false], `second run: ${h}`);
  for (const h of WEBS) t.deepEqual(await leftovers(lab, h, WEB_DIR), [], `${h}: nothing left behind`);
}

test.serial('a web host unreachable from the start is reported unreachable, the others are written, and a re-run converges', async (t) => {
  const before = await webFiles(lab);
  await lab.stopSshd('web-2');
  let doc;
  try {
    const r = await deploy(password(1), '--json');
    t.is(r.code, 1, r.stderr);
    doc = parseJson(r);
  } finally {
    await lab.startSshd('web-2');
  }
  const web2 = doc.hosts['web-2']!;
  t.true(web2.unreachable);
  t.deepEqual(stepsOf(doc, 'web-2'), ['facts/connect failed']);
  t.regex(web2.steps[0]!.message, /cannot connect: ECONNREFUSED labadmin@10\.231\.40\.66:22/);
  for (const h of ['web-1', 'web-3']) t.deepEqual(stepsOf(doc, h), ['facts/config_local.py ok', 'web/config_local.py changed'], h);
  t.regex(doc.retry_file ?? '', /inventory\.retry$/);
  const after = await webFiles(lab);
  t.is(after[`web-2:${FILE}`], before[`web-2:${FILE}`], 'web-2 untouched');
  t.not(after[`web-3:${FILE}`], before[`web-3:${FILE}`]);
  await converges(t, password(1));
});

test.serial('sshd killed while web-2 restarts the web app: web-2 unreachable, its file complete, nothing left behind, a re-run converges', async (t) => {
  await webAppSchema(lab); // a web app has started on the settings database: no bootstrap host
  const inventory = await inventoryWith(lab, 'slow-web2', { 'web-2': `pem_web_restart='sleep 6 # hold'` });
  const before = await fileOn(lab, 'web-2', FILE);
  const run = spawnCli(['deploy', '-i', inventory, '--json'], { PEM_SETTINGS_PASSWORD: password(2) });
  await waitUntil('web-2 runs its slow restart', 60_000, () => running(lab, 'web-2', 'sleep 6'));
  t.true((await killSshds(lab, 'web-2')) >= 2, 'the listener and the session sshds');
  const r = await run.done;
  await lab.startSshd('web-2');
  t.is(r.code, 1, r.stderr);
  t.true(r.ms < 20_000, 'the lost connection is noticed without waiting for a timeout');
  const doc = parseJson(r);
  t.true(doc.hosts['web-2']!.unreachable, JSON.stringify(doc.hosts['web-2']));
  t.deepEqual(stepsOf(doc, 'web-2'), ['facts/config_local.py ok', 'web/config_local.py changed', 'web/restart web app failed']);
  t.regex(doc.hosts['web-2']!.steps[2]!.message, /SSH connection dropped while pem_web_restart ran/);
  for (const h of ['web-1', 'web-3']) t.is(doc.hosts[h]!.changed, 1, `${h} is written all the same`);
  // The file was renamed into place before the restart began: it is the complete new content.
  const mid = await fileOn(lab, 'web-2', FILE);
  t.not(mid, before);
  t.deepEqual(await leftovers(lab, 'web-2', WEB_DIR), []);
  // The next run makes up for the restart that never completed, and only for that.
  const makeUp = parseJson(await cli(['deploy', '-i', inventory, '--json'], { PEM_SETTINGS_PASSWORD: password(2) }));
  t.deepEqual(stepsOf(makeUp, 'web-2'), ['facts/config_local.py ok', 'web/config_local.py ok', 'web/restart web app changed']);
  t.regex(makeUp.hosts['web-2']!.steps[2]!.message, new RegExp(`run ${doc.run} wrote the file but its restart did not complete`));
  await converges(t, password(2), inventory);
  t.is(await fileOn(lab, 'web-2', FILE), mid, 'what the interrupted run left is exactly what a complete run writes');
});

test.serial('files that hold the password are never readable by others: sampled during a slow run and after', async (t) => {
  const inventory = await inventoryWith(lab, 'slow-all', Object.fromEntries(WEBS.map((h) => [h, `pem_web_restart='sleep 2'`])));
  // A sampler on each web host stats every candidate file in a tight loop until told to stop.
  const sampler = `while [ ! -e /tmp/stop-sampling ]; do for f in ${WEB_DIR}/.config_local.pem-settings.* ${WEB_DIR}/config_local.py*; do ` +
    `[ -e "$f" ] && stat -c '%a %U:%G %n' "$f"; done; done 2>/dev/null | sort -u`;
  await Promise.all(WEBS.map((h) => lab.exec(h, ['rm', '-f', '/tmp/stop-sampling'])));
  const samples = WEBS.map((h) => lab.exec(h, ['sh', '-c', sampler], { timeoutMs: 120_000 }));
  const r = await cli(['deploy', '-i', inventory], { PEM_SETTINGS_PASSWORD: password(3) });
  await Promise.all(WEBS.map((h) => lab.exec(h, ['touch', '/tmp/stop-sampling'])));
  t.is(r.code, 0, r.stdout + r.stderr);
  for (const [i, h] of WEBS.entries()) {
    const seen = (await samples[i]!).stdout.split('\n').filter(Boolean);
    t.true(seen.some((l) => l.endsWith(` ${FILE}`)), `${h}: the sampler saw the file`);
    t.true(seen.some((l) => /\.pem-settings-.*\.bak$/.test(l)), `${h}: and a backup`);
    // The temporary file starts as mktemp's 0600 root:root, then takes the file's owner and mode.
    for (const line of seen) t.regex(line, /^[0-7][0-7]0 root:(www-data|root) /, `${h}: ${line}`);
    for (const name of (await namesIn(lab, h, WEB_DIR)).filter((n) => n.startsWith('config_local.py'))) {
      t.regex(await statOn(lab, h, `${WEB_DIR}/${name}`), /^640 root:www-data /, `${h}: ${name} after the run`);
    }
  }
});

/** Runs `body` with web-3's web directory replaced by a mount made inside web-3 only, then removes it. */
async function withMountOnWebDir(setup: string[][], body: () => Promise<void>): Promise<void> {
  try {
    for (const argv of setup) {
      const m = await lab.exec('web-3', argv);
      if (m.code !== 0) throw new Error(`${argv.join(' ')}: ${m.stderr}`);
    }
    await body();
  } finally {
    await lab.exec('web-3', ['umount', WEB_DIR]);
  }
}

test.serial('a read-only web directory: web-3 fails with a clear message, its file untouched, nothing left behind', async (t) => {
  const before = { bytes: await fileOn(lab, 'web-3', FILE), stat: await statOn(lab, 'web-3', FILE), names: await namesIn(lab, 'web-3', WEB_DIR) };
  await withMountOnWebDir([['mount', '-o', 'bind,ro', WEB_DIR, WEB_DIR]], async () => {
    const r = await deploy(password(4), '--json');
    t.is(r.code, 1, r.stderr);
    const doc = parseJson(r);
    t.deepEqual(stepsOf(doc, 'web-3'), ['facts/config_local.py ok', 'web/config_local.py failed']);
    t.regex(doc.hosts['web-3']!.steps[1]!.message, /cannot write the backup .*config_local\.py\.pem-settings-.*\.bak \(disk full or read-only\?\); nothing was changed/);
    t.regex(doc.hosts['web-3']!.steps[1]!.message, /Read-only file system/);
    for (const h of ['web-1', 'web-2']) t.is(doc.hosts[h]!.changed, 1, `${h} is written all the same`);
    t.is(await fileOn(lab, 'web-3', FILE), before.bytes);
    t.is(await statOn(lab, 'web-3', FILE), before.stat, 'same mode, owner, size, mtime');
  });
  t.deepEqual(await namesIn(lab, 'web-3', WEB_DIR), before.names, 'no backup, no temporary file');
  await converges(t, password(4));
});

test.serial('a full disk under the web directory: web-3 fails at the backup or at the new file, untouched either way, nothing left behind', async (t) => {
  const stage = '/tmp/web-copy';
  const fill = `${WEB_DIR}/zz-fill`;
  const cases = [
    // No room at all: the backup copy fails (cut short, it must not stay).
    { name: 'no room at all', free: 0, message: [/cannot write the backup .*\(disk full or read-only\?\); nothing was changed/, /No space left on device/] },
    // One page free: the backup fits, the new (longer) file does not.
    { name: 'room for the backup only', free: 4096, message: [/cannot write .*\.config_local\.pem-settings\.\w+ \(disk full or read-only\?\); nothing was changed/, /No space left on device/] },
  ];
  for (const [i, c] of cases.entries()) {
    await withMountOnWebDir([
      ['sh', '-c', `rm -rf ${stage} && mkdir ${stage} && cp -a ${WEB_DIR}/. ${stage}/`],
      ['mount', '-t', 'tmpfs', '-o', 'size=64k,mode=755', `flt40-full-${i}`, WEB_DIR],
      ['sh', '-c', `cp -a ${stage}/. ${WEB_DIR}/ && (dd if=/dev/zero of=${fill} bs=4k 2>/dev/null; true) && truncate -s -${c.free} ${fill} && sync`],
    ], async () => {
      const before = { bytes: await fileOn(lab, 'web-3', FILE), stat: await statOn(lab, 'web-3', FILE), names: await namesIn(lab, 'web-3', WEB_DIR) };
      const r = await deploy(password(5 + i), '--json', '--limit', 'web-3');
      t.is(r.code, 1, r.stderr);
      const doc = parseJson(r);
      t.deepEqual(stepsOf(doc, 'web-3'), ['facts/config_local.py ok', 'web/config_local.py failed'], c.name);
      for (const m of c.message) t.regex(doc.hosts['web-3']!.steps[1]!.message, m, c.name);
      t.is(await fileOn(lab, 'web-3', FILE), before.bytes, c.name);
      t.is(await statOn(lab, 'web-3', FILE), before.stat, c.name);
      t.deepEqual(await namesIn(lab, 'web-3', WEB_DIR), before.names, `${c.name}: no backup, no temporary file`);
    });
  }
  await converges(t, password(7));
});

test.serial('the recap names the unreachable host in plain output too', async (t) => {
  await lab.stopSshd('web-1');
  try {
    const r = await deploy(password(8));
    t.is(r.code, 1);
    t.regex(recapLine(r.stdout, 'web-1'), /failed=0 +unreachable=1/);
    t.regex(r.stdout, /FAILURES\n- web-1: facts\/connect: cannot connect: ECONNREFUSED/);
    t.regex(r.stdout, /To retry the failed hosts: --limit @.*inventory\.retry/);
  } finally {
    await lab.startSshd('web-1');
  }
  await converges(t, password(8));
});
