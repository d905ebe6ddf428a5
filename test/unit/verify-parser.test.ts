import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostError, UnreachableError } from '../../src/errors.ts';
import type { RunEvent } from '../../src/runner.ts';
import { runChecks } from '../../src/checks.ts';
import { parseParserOutput, parserScript } from '../../tasks/verify/parser.ts';

const VENDOR = fileURLToPath(new URL('../../../shared/webapp-consumer/vendor', import.meta.url));
const SECRET = 'pä ss€-secret';
const ENCODED = 'p%C3%A4%20ss%E2%82%AC-secret';

// The web app's Python as the lab and the tests give it: Debian's python3 + the pinned SQLAlchemy.
const dir = mkdtempSync(join(tmpdir(), 'verify-parser-'));
const webPython = join(dir, 'web-python');
writeFileSync(webPython, `#!/bin/sh\nPYTHONPATH='${VENDOR}' exec /usr/bin/python3 "$@"\n`);
chmodSync(webPython, 0o755);

/** Runs the script as the web host would (`sh -s`, script on standard input), here on this machine. */
function runParser(uri: string, python?: string) {
  const r = spawnSync('/bin/sh', ['-s'], { input: parserScript(uri, python), encoding: 'utf8' });
  return parseParserOutput(r.stdout, r.stderr, r.status ?? 255, python);
}

test('the URI travels base64-encoded inside the script, never as an argument or in clear', (t) => {
  const script = parserScript(`postgresql://u:${ENCODED}@h:5432/s`, '/usr/bin/python3');
  t.false(script.includes(ENCODED));
  t.false(script.includes(SECRET));
  t.regex(script, /^"\$py" \/dev\/fd\/3 3<<'PEMS_PY' <<'PEMS_URI'$/m);
});

test('the web app\'s parser accepts deploy\'s multi-host URI and reports what psycopg gets, password masked', (t) => {
  const v = runParser(`postgresql://pem_user_settings:${ENCODED}@10.0.0.1,10.0.0.2:5432/pem_user_settings?target_session_attrs=read-write`, webPython);
  if (v.status !== 'parsed') return t.fail(JSON.stringify(v));
  t.is(v.sqlalchemy, '2.0.52');
  t.like(v.args, { host: '10.0.0.1,10.0.0.2', port: 5432, user: 'pem_user_settings', dbname: 'pem_user_settings', target_session_attrs: 'read-write', password: '********' });
});

test('the web app\'s parser rejects the documented h1:p1,h2:p2 form with SQLAlchemy\'s own message', (t) => {
  const v = runParser(`postgres://u:${ENCODED}@h1:5432,h2:5433/s`, webPython);
  if (v.status !== 'rejected') return t.fail(JSON.stringify(v));
  t.is(v.error, "ValueError: invalid literal for int() with base 10: '5432,h2:5433'");
});

test('a pem_web_python without sqlalchemy is broken; python3 from PATH without it is only unavailable', (t) => {
  const uri = 'postgresql://u:p@h:5432/s';
  const broken = runParser(uri, '/usr/bin/python3');
  t.is(broken.status, 'broken');
  t.regex((broken as { reason: string }).reason, /^pem_web_python: \/usr\/bin\/python3 cannot import sqlalchemy \(ModuleNotFoundError/);
  t.deepEqual(parseParserOutput('{"status": "no-sqlalchemy", "python": "/usr/bin/python3", "error": "ModuleNotFoundError: x"}\n', '', 0),
    { status: 'unavailable', reason: "/usr/bin/python3 cannot import sqlalchemy (ModuleNotFoundError: x); set pem_web_python to the web app's Python" });
});

const outputs: [string, string, string, number, string | undefined, unknown][] = [
  ['no python3 at all', '#no-python\n', '', 0, undefined, { status: 'unavailable', reason: 'no python3 on the host and pem_web_python is not set' }],
  ['a pem_web_python that is not there', '#missing /opt/py\n', '', 0, '/opt/py', { status: 'broken', reason: 'pem_web_python /opt/py is not an executable on the host' }],
  ['a Python that crashed', '', 'SyntaxError: bad', 1, '/opt/py', { status: 'broken', reason: 'pem_web_python /opt/py did not run the parser: SyntaxError: bad' }],
  ['a python3 from PATH that crashed', '', 'Segmentation fault', 139, undefined, { status: 'unavailable', reason: 'python3 on the host did not run the parser: Segmentation fault' }],
];
for (const [name, stdout, stderr, code, python, expected] of outputs) {
  test(`reads the parser's output: ${name}`, (t) => {
    t.deepEqual(parseParserOutput(stdout, stderr, code, python), expected as ReturnType<typeof parseParserOutput>);
  });
}

test('the check runner reports each verdict live, counts unreachable apart from failed, and never stops early', async (t) => {
  const events: RunEvent[] = [];
  const recaps = await runChecks([
    { name: 'facts', hosts: ['db1'], async check(_h, report) { report('ssl', { status: 'failed', message: 'ssl is off' }); } },
    {
      name: 'web', hosts: ['w1', 'w2', 'w3'],
      async check(host, report) {
        if (host === 'w2') throw new UnreachableError(host, 'connect', 'cannot connect: ECONNREFUSED');
        if (host === 'w3') throw new HostError(host, 'config_local.py', '/x does not exist', 'run deploy');
        report('primary', { status: 'ok', message: 'fine' });
        report('uri parses with the web app\'s parser', { status: 'skipped', message: 'parser could not be checked', warnings: ['parser could not be checked'] });
      },
    },
  ], { forks: 2, onEvent: (e) => events.push(e) });
  t.like(recaps.get('db1'), { failed: 1, ok: 0, unreachable: false });
  t.like(recaps.get('w1'), { ok: 1, skipped: 1, failed: 0 });
  t.deepEqual(recaps.get('w1')!.steps[1]!.warnings, ['parser could not be checked']);
  t.like(recaps.get('w2'), { failed: 0, unreachable: true });
  t.like(recaps.get('w3'), { failed: 1 });
  t.is(recaps.get('w3')!.steps[0]!.message, '/x does not exist (run deploy)');
  t.deepEqual(events.filter((e) => e.kind === 'stage-start').map((e) => (e as { stage: string }).stage), ['facts', 'web']);
  t.true(events.every((e) => e.kind !== 'stage-end' || !e.stopsRun));
});
