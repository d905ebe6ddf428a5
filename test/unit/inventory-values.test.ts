// A value in the inventory means what Python's ast.literal_eval makes of it, as in Ansible.
// The expectations were recorded from Python itself (test/fixtures/inventory/literal-eval-cases.py).

import test from 'ava';
import { readFileSync } from 'node:fs';
import { shlexSplit, ShlexError } from '../../src/inventory/shlex.ts';
import { asBoolean, parseValue, UnsupportedValue } from '../../src/inventory/values.ts';

interface Cases { python: string; cases: [string, 'value' | 'raw' | 'error' | 'unrepresentable', unknown][] }
const recorded = JSON.parse(readFileSync('test/fixtures/inventory/literal-eval-cases.json', 'utf8')) as Cases;

test('every value reads as Python reads it: a literal, or else the text as written', (t) => {
  for (const [text, kind, want] of recorded.cases) {
    if (kind === 'value' && !text.includes('\\N')) t.deepEqual(parseValue(text), want, `${text} (Python ${recorded.python})`);
    if (kind === 'raw') t.is(parseValue(text), text, text);
  }
});

test('a value Ansible would fail on, or hold as something JSON has no form for, is refused with the reason', (t) => {
  const refused = recorded.cases.filter(([text, kind]) => kind === 'error' || kind === 'unrepresentable' || text.includes('\\N'));
  t.true(refused.length >= 10);
  for (const [text] of refused) t.throws(() => parseValue(text), { instanceOf: UnsupportedValue }, text);
  t.throws(() => parseValue('1+2j'), { message: /Python reads 1\+2j as a complex number/ });
  t.throws(() => parseValue('"\\N{DIGIT ONE}"'), { message: /\\N\{name\} escape/ });
});

test('integers have no negative zero; floats do, as in Python', (t) => {
  t.true(Object.is(parseValue('-0'), 0));
  t.true(Object.is(parseValue('-0.0'), -0));
});

test('a variable named __proto__ is an ordinary variable', (t) => {
  const v = parseValue("{'__proto__': 1, 'constructor': 2}") as Record<string, unknown>;
  t.deepEqual(Object.keys(v), ['__proto__', 'constructor']);
  t.is(v['__proto__'], 1);
});

test('host lines split as Python\'s shlex.split(line, comments=True)', (t) => {
  const cases: [string, string[]][] = [
    ['h a=1 b=2', ['h', 'a=1', 'b=2']],
    ['h\ta=1', ['h', 'a=1']],
    ['h a=x\u00a0y', ['h', 'a=x\u00a0y']],
    [`h a="x y" b='p q'`, ['h', 'a=x y', 'b=p q']],
    ['h a=pre"fix"post', ['h', 'a=prefixpost']],
    ['h a=x\\ y', ['h', 'a=x y']],
    ['h a="say \\"hi\\"" b="a\\qb" c="a\\\\b"', ['h', 'a=say "hi"', 'b=a\\qb', 'c=a\\b']],
    [`h a='\\x41'`, ['h', 'a=\\x41']],
    ['h a=1#comment b=2', ['h', 'a=1']],
    ['h a="#kept" # dropped', ['h', 'a=#kept']],
    [`h a='' b=""`, ['h', 'a=', 'b=']],
    [`'' x`, ['', 'x']],
  ];
  for (const [line, words] of cases) t.deepEqual(shlexSplit(line), words, line);
  t.throws(() => shlexSplit('h a="open'), { instanceOf: ShlexError, message: 'No closing quotation' });
  t.throws(() => shlexSplit('h a=b\\'), { instanceOf: ShlexError, message: 'No escaped character' });
  t.deepEqual(shlexSplit('-o A=#x', { comments: false }), ['-o', 'A=#x']);
});

test('ansible_become and friends take Ansible\'s boolean words', (t) => {
  for (const yes of ['true', 'yes', 'True', 1, '1', 'on', true]) t.true(asBoolean(yes as never), String(yes));
  for (const no of ['false', 'no', 0, '0', false]) t.false(asBoolean(no as never), String(no));
  t.is(asBoolean([1] as never), undefined);
});
