// Fault matrix, runs (issue 6): two deploys at once on overlapping hosts, and Ctrl-C in the
// middle of a run. A slow pem_web_restart holds one web host's step open while the test acts.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, recapLine, webAppSchema } from './helpers.ts';
import {
  FILE, WEBS, WEB_DIR, hbaFiles, inventoryWith, leftovers, parseJson, password, runRecords, running, spawnCli, stepsOf,
  waitUntil, webFiles,
} from './faults-shared.ts';

let lab: Lab;

test.before(async () => {
  lab = await startLab({ name: 'flt42', subnet: '10.231.42.0/24' });
});
test.after.always(async () => {
  await lab?.stop();
});

const deploy = (pw: string, ...args: string[]) => cli(['deploy', '-i', lab.inventoryPath, '--json', ...args], { PEM_SETTINGS_PASSWORD: pw });

async function converges(t: import('ava').ExecutionContext, pw: string): Promise<void> {
  const second = parseJson(await deploy(pw));
  for (const [h, r] of Object.entries(second.hosts)) t.deepEqual([r.changed, r.failed, r.unreachable], [0, 0, false], `a later run changes nothing: ${h}`);
  for (const h of WEBS) t.deepEqual(await leftovers(lab, h, WEB_DIR), [], `${h}: nothing left behind`);
}

test.serial('a deploy that needs a host another run holds waits for it, then finds nothing left to change there', async (t) => {
  t.is((await deploy(password(1))).code, 0, 'a first deploy with everything in place');
  await webAppSchema(lab);
  const slow = await inventoryWith(lab, 'slow-web2', { 'web-2': `pem_web_restart='sleep 5'` });
  // The first run is limited to web-2 and holds it in its restart; the second wants every host.
  const first = spawnCli(['deploy', '-i', slow, '--limit', 'web-2', '--json'], { PEM_SETTINGS_PASSWORD: password(2) });
  await waitUntil('the first run holds web-2 in its restart', 60_000, () => running(lab, 'web-2', 'sleep 5'));
  const second = await cli(['deploy', '-i', lab.inventoryPath], { PEM_SETTINGS_PASSWORD: password(2) });
  const firstDone = await first.done;
  t.is(firstDone.code, 0, firstDone.stdout + firstDone.stderr);
  t.is(second.code, 0, second.stdout + second.stderr);
  const firstDoc = parseJson(firstDone);
  t.regex(second.stdout, new RegExp(`pem-settings: web-2: waiting up to 300 s for the run lock of root, held by run ${firstDoc.run} by root@\\S+ pid ${first.child.pid} since `));
  t.deepEqual(stepsOf(firstDoc, 'web-2'), ['facts/config_local.py ok', 'web/config_local.py changed', 'web/restart web app changed']);
  t.regex(recapLine(second.stdout, 'web-2'), /changed=0 +failed=0/, 'the second run read web-2 after the first was done');
  for (const h of ['web-1', 'web-3']) t.regex(recapLine(second.stdout, h), /changed=1 +failed=0/, h);
  await converges(t, password(2));
});

test.serial('two deploys started together both finish: every web host has one URI, and the next deploy changes nothing', async (t) => {
  const a = spawnCli(['deploy', '-i', lab.inventoryPath, '--json'], { PEM_SETTINGS_PASSWORD: password(5) });
  const b = spawnCli(['deploy', '-i', lab.inventoryPath, '--json'], { PEM_SETTINGS_PASSWORD: password(5) });
  const [ra, rb] = await Promise.all([a.done, b.done]);
  t.is(ra.code, 0, ra.stdout + ra.stderr);
  t.is(rb.code, 0, rb.stdout + rb.stderr);
  for (const [h, text] of Object.entries(await webFiles(lab))) {
    t.is(Buffer.from(text ?? '', 'base64').toString('utf8').split('\n').filter((l) => /^CONFIG_DATABASE_URI\s*=/.test(l)).length, 1, `${h}: exactly one active assignment`);
  }
  await converges(t, password(5));
});

test.serial('a deploy started while a rollback runs waits for it', async (t) => {
  const slow = await inventoryWith(lab, 'slow-rollback', { 'web-2': `pem_web_restart='sleep 5'` });
  t.is((await cli(['deploy', '-i', slow], { PEM_SETTINGS_PASSWORD: password(6) })).code, 0);
  const rollback = spawnCli(['rollback', '-i', slow], {});
  await waitUntil('the rollback holds web-2 in its restart', 60_000, () => running(lab, 'web-2', 'sleep 5'));
  const deployed = await cli(['deploy', '-i', lab.inventoryPath], { PEM_SETTINGS_PASSWORD: password(6) });
  const rolled = await rollback.done;
  t.is(rolled.code, 0, rolled.stdout + rolled.stderr);
  t.is(deployed.code, 0, deployed.stdout + deployed.stderr);
  t.regex(deployed.stdout, /web-2: waiting up to 300 s for the run lock of root, held by run \S+ by /);
  t.regex(recapLine(deployed.stdout, 'web-2'), /changed=1 +failed=0/, 'the deploy put back what the rollback undid');
  await converges(t, password(6));
});

test.serial('Ctrl-C in the middle of a run: the step in flight finishes, no new one starts, the record says interrupted, exit 130; a re-run converges and rollback of that run works', async (t) => {
  const slow = await inventoryWith(lab, 'slow-web2-int', { 'web-2': `pem_web_restart='sleep 4'` });
  const before = await webFiles(lab);
  // One host at a time: web-1 is done, web-2 is in flight, web-3 has not started when Ctrl-C comes.
  const run = spawnCli(['deploy', '-i', slow, '--forks', '1'], { PEM_SETTINGS_PASSWORD: password(3) });
  await waitUntil('web-2 runs its slow restart', 60_000, () => running(lab, 'web-2', 'sleep 4'));
  run.child.kill('SIGINT');
  const r = await run.done;
  t.is(r.code, 130, r.stdout + r.stderr);
  t.regex(r.stderr, /interrupted: finishing the steps in flight, starting no new ones/);
  t.regex(r.stdout, /\[web\] web-2: restart web app: changed - run pem_web_restart: sleep 4/, 'the step in flight finished');
  t.regex(r.stdout, /\[web\] web-3: web: skipped - not run: interrupted/);
  t.regex(recapLine(r.stdout, 'web-1'), /changed=1 +failed=0/);
  t.regex(recapLine(r.stdout, 'web-2'), /changed=2 +failed=0/);
  t.regex(recapLine(r.stdout, 'web-3'), /changed=0 +failed=0 +unreachable=0 +skipped=1/);
  t.regex(r.stdout, /Interrupted: the run stopped early; run it again to finish\./);
  const recordPath = /Run record: (\S+\.json)/.exec(r.stdout)?.[1];
  t.truthy(recordPath, r.stdout);
  const record = JSON.parse(await readFile(recordPath!, 'utf8'));
  t.true(record.interrupted);
  t.deepEqual(Object.keys(record.hosts).sort(), ['pg-primary', 'web-1', 'web-2'], 'what was done, and only that');
  const mid = await webFiles(lab);
  t.is(mid[`web-3:${FILE}`], before[`web-3:${FILE}`], 'web-3 untouched');
  t.not(mid[`web-2:${FILE}`], before[`web-2:${FILE}`]);

  const rerun = await deploy(password(3));
  t.is(rerun.code, 0, rerun.stdout);
  const doc = parseJson(rerun);
  t.deepEqual([doc.hosts['web-1']!.changed, doc.hosts['web-2']!.changed, doc.hosts['web-3']!.changed], [0, 0, 1], 'the re-run finishes what was left');
  await converges(t, password(3));
  const converged = await webFiles(lab);

  const rb = await cli(['rollback', '-i', lab.inventoryPath, '--run', record.run]);
  t.is(rb.code, 0, rb.stdout + rb.stderr);
  const after = await webFiles(lab);
  for (const h of ['web-1', 'web-2']) t.is(after[`${h}:${FILE}`], before[`${h}:${FILE}`], `${h} restored byte for byte`);
  t.is(after[`web-3:${FILE}`], converged[`web-3:${FILE}`], 'web-3 keeps what the later run wrote');
});
