// The password file's traps (SPEC 3): dotenv ends an unquoted value at '#', and a sudo password
// with a line break would hand the rest of the line to a root shell. Each is refused before
// anything connects, naming the place and never the password.
import test from 'ava';
import dotenv from 'dotenv';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProblemsError, UsageError } from '../../src/errors.ts';
import { readEnvAssignments } from '../../tasks/env-file.ts';
import { readSecrets } from '../../tasks/settings.ts';

/** An inventory path in a fresh directory whose .env holds `dotEnv`. */
function siteWith(dotEnv: string): { inv: string; envPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pems-secrets-'));
  const inv = join(dir, 'site.ini');
  writeFileSync(inv, '[backends]\nb\n');
  writeFileSync(join(dir, '.env'), dotEnv);
  return { inv, envPath: join(dir, '.env') };
}

const refusal = (dotEnv: string, env: NodeJS.ProcessEnv = {}) => {
  const { inv, envPath } = siteWith(dotEnv);
  try {
    readSecrets(inv, { allowWeakPassword: false, env });
  } catch (e) {
    return { error: e as Error, envPath };
  }
  throw new Error('readSecrets accepted it');
};

// [the .env line, why dotenv would cut it]
const cutLines: [string, string][] = [
  ['PEM_SETTINGS_PASSWORD=correcthorse #battery-staple', 'a # after a space'],
  ['PEM_SETTINGS_PASSWORD=correcthorse#battery-staple', 'a # with no space before it (dotenv 17 cuts there too)'],
  ['PEM_SETTINGS_PASSWORD=#correcthorsebattery', 'a value that starts with #'],
  ['export PEM_SETTINGS_PASSWORD = correct horse#battery', 'export and spaces around ='],
  ['PEM_SETTINGS_PASSWORD="correct"horse#battery', 'quotes that do not enclose the whole value'],
];
for (const [line, why] of cutLines) {
  test(`an unquoted password cut at '#' is refused: ${why}`, (t) => {
    t.true(dotenv.parse(line)['PEM_SETTINGS_PASSWORD']!.length < 'correcthorse#battery-staple'.length - 5, 'dotenv does cut it');
    const { error, envPath } = refusal(`# site secrets\n\n${line}\n`);
    t.true(error instanceof UsageError, error.message);
    t.true(error.message.startsWith(`${envPath}:3: the value of PEM_SETTINGS_PASSWORD is not quoted and has a '#' in it`), error.message);
    t.regex(error.message, /Quote it: PEM_SETTINGS_PASSWORD='\.\.\.'/);
    t.false(/correct|horse|battery/.test(error.message), 'the password is not quoted');
  });
}

test('a quoted password keeps its #, and a comment after the quotes is a comment', (t) => {
  for (const line of ["PEM_SETTINGS_PASSWORD='correcthorse #battery' # the role", 'PEM_SETTINGS_PASSWORD="correcthorse#battery"#x', 'PEM_SETTINGS_PASSWORD=`correcthorse #battery`']) {
    const { inv } = siteWith(`${line}\n`);
    t.is(readSecrets(inv, { allowWeakPassword: false, env: {} }).password, line.includes(' #battery') ? 'correcthorse #battery' : 'correcthorse#battery', line);
  }
});

test('an unquoted password without # is read as before, and a # on the next line is only a comment', (t) => {
  const { inv } = siteWith('PEM_SETTINGS_PASSWORD=correct-horse-battery\n# rotated 2026-01\nPEM_BECOME_PASSWORD=sudo-pw\n');
  t.deepEqual(readSecrets(inv, { allowWeakPassword: false, env: {} }), { password: 'correct-horse-battery', becomePassword: 'sudo-pw' });
});

test('the sudo password is checked for # the same way, and both problems are reported together', (t) => {
  const { error, envPath } = refusal('PEM_SETTINGS_PASSWORD=correcthorse #battery\r\nPEM_BECOME_PASSWORD=sudo#pw\r\n');
  t.true(error instanceof ProblemsError, error.message);
  t.deepEqual((error as ProblemsError).problems.map((p) => p.message.split(': the value of ')[0]), [`${envPath}:1`, `${envPath}:2`]);
  t.regex(error.message, /PEM_BECOME_PASSWORD is not quoted/);
  t.false(/horse|battery|sudo#pw/.test(error.message));
});

test('only the line dotenv uses counts: a later quoted line wins, and the environment overrides .env', (t) => {
  const { inv } = siteWith('PEM_SETTINGS_PASSWORD=old #one\nPEM_SETTINGS_PASSWORD="correcthorse #battery"\n');
  t.is(readSecrets(inv, { allowWeakPassword: false, env: {} }).password, 'correcthorse #battery');
  const overridden = siteWith('PEM_SETTINGS_PASSWORD=correcthorse #battery\n');
  t.is(readSecrets(overridden.inv, { allowWeakPassword: false, env: { PEM_SETTINGS_PASSWORD: 'from-the-environment' } }).password, 'from-the-environment');
  const wrongLater = refusal('PEM_SETTINGS_PASSWORD="fine-password-1"\nPEM_SETTINGS_PASSWORD=cut#here-later\n');
  t.regex(wrongLater.error.message, /\.env:2: /);
});

// [where the sudo password comes from, the .env text, the environment]
const becomeBreaks: [string, string, NodeJS.ProcessEnv][] = [
  ['the environment, with a line break', '', { PEM_BECOME_PASSWORD: 'pw\nrm -rf /' }],
  ['the environment, with a carriage return', '', { PEM_BECOME_PASSWORD: 'pw\rid' }],
  ['the environment, with a NUL', '', { PEM_BECOME_PASSWORD: 'pw\0id' }],
  ['.env, \\n inside double quotes', 'PEM_BECOME_PASSWORD="pw\\nid"\n', {}],
  ['.env, a quote left open', "PEM_BECOME_PASSWORD='pw\nid'\n", {}],
];
for (const [where, dotEnv, env] of becomeBreaks) {
  test(`a sudo password with a line break or NUL is refused: ${where}`, (t) => {
    const { error, envPath } = refusal(`PEM_SETTINGS_PASSWORD=correct-horse-battery\n${dotEnv}`, env);
    t.true(error instanceof UsageError, error.message);
    t.regex(error.message, /^PEM_BECOME_PASSWORD \(from .*\) must not contain a line break or NUL: sudo reads one line as the password and the rest would be run by the shell/);
    t.true(error.message.includes(env['PEM_BECOME_PASSWORD'] ? 'from the environment' : `from ${envPath}:2`), error.message);
    t.false(/rm -rf|pw.id/.test(error.message));
  });
}

test('the role password with a line break is refused wherever it comes from, naming the place', (t) => {
  const { error, envPath } = refusal("PEM_SETTINGS_PASSWORD='correct-horse\nbattery'\n");
  t.regex(error.message, new RegExp(`^PEM_SETTINGS_PASSWORD \\(from ${envPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1\\) must not contain NUL or line breaks`));
  t.regex(refusal('', { PEM_SETTINGS_PASSWORD: 'correct-horse\0battery' }).error.message, /from the environment\) must not contain NUL/);
});

test('a .env that cannot be read is a usage error naming it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pems-secrets-'));
  const inv = join(dir, 'site.ini');
  // A directory where the file should be: EISDIR for root and non-root alike.
  mkdirSync(join(dir, '.env'));
  t.throws(() => readSecrets(inv, { allowWeakPassword: false, env: { PEM_SETTINGS_PASSWORD: 'correct-horse-battery' } }), { instanceOf: UsageError, message: /^cannot read .*\.env: EISDIR$/ });
});

test('the .env reader gives the values dotenv gives, so its line numbers and verdicts are about the same values', (t) => {
  const corpus = [
    'A=plain\nB=with #comment\nC=glued#comment\nD=#only\nE=\nF= spaced  \n',
    'export G = exported\nH: colon\nI="dq #kept"\nJ=\'sq #kept\'\nK=`bt #kept`\nL="esc\\nline"\n',
    "M='open\nN=swallowed'\nO=after\r\nP=crlf\rQ=cr\n",
    'R="a"b#c\nS="x" # c\nT="unterminated #x\nU=last\nU=again\n',
  ];
  for (const text of corpus) {
    const ours: Record<string, string> = {};
    for (const a of readEnvAssignments(text)) ours[a.key] = a.value;
    t.deepEqual(ours, dotenv.parse(text), text);
  }
  const lines = readEnvAssignments(corpus[0]!).map((a) => [a.key, a.line, a.cutAtHash]);
  t.deepEqual(lines, [['A', 1, false], ['B', 2, true], ['C', 3, true], ['D', 4, true], ['E', 5, false], ['F', 6, false]]);
});
