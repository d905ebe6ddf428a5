import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigParseError,
  findAssignments,
  pythonStringLiteral,
  readConfigValue,
  setConfigValue,
} from '../../tasks/config-local/edit.ts';
import { bytesAsText, insertable, textAsBytes } from '../../tasks/files/text.ts';

const NAME = 'CONFIG_DATABASE_URI';
const URI = 'postgresql://pem_user_settings:s%40cr%C3%A9t@pem1.example.com,pem2.example.com:5432/pem_user_settings?target_session_attrs=read-write';
const LIT = pythonStringLiteral(URI);
const SET = `${NAME} = ${LIT}`;
const fixture = (f: string) => readFileSync(new URL(`../fixtures/config-local/${f}`, import.meta.url), 'utf8');

interface EditCase {
  name: string;
  before: string;
  after: string;
  line: number;
  disabled?: number[];
  untouched?: number[];
}

const cases: EditCase[] = [
  { name: 'an absent (empty) file gets the assignment as its only line', before: '', after: `${SET}\n`, line: 1 },
  { name: 'a plain file gets the assignment appended as its last line', before: 'DEBUG = False\nLOG_FILE = "/var/log/pem.log"\n', after: `DEBUG = False\nLOG_FILE = "/var/log/pem.log"\n${SET}\n`, line: 3 },
  { name: 'keeps CRLF line endings and ends the new line with CRLF', before: 'A = 1\r\nB = 2\r\n', after: `A = 1\r\nB = 2\r\n${SET}\r\n`, line: 3 },
  { name: 'a file without a final newline gets one before the appended line', before: 'A = 1', after: `A = 1\n${SET}\n`, line: 2 },
  { name: 'a CRLF file without a final newline gets CRLF before and after the appended line', before: 'A = 1\r\nB = 2', after: `A = 1\r\nB = 2\r\n${SET}\r\n`, line: 3 },
  { name: 'a file whose last line is a comment without newline keeps the comment intact', before: 'A = 1\n# end', after: `A = 1\n# end\n${SET}\n`, line: 3 },
  {
    name: 'commented-out assignments stay exactly as they are',
    before: `# ${NAME} = "sqlite:///x"\n#${NAME}='y'\nA = 1\n`,
    after: `# ${NAME} = "sqlite:///x"\n#${NAME}='y'\nA = 1\n${SET}\n`,
    line: 4,
  },
  {
    name: 'an active assignment pointing at SQLite is replaced in place',
    before: `A = 1\n${NAME} = 'sqlite:////var/lib/pem/pem.db'\nB = 2\n`,
    after: `A = 1\n${SET}\nB = 2\n`,
    line: 2,
  },
  {
    name: 'a multi-line parenthesised assignment is replaced whole, keeping the comment on its last line',
    before: `${NAME} = (\n    "postgresql://a"\n    "@b/c"  # inner comment\n)  # keep me\nB = 2\n`,
    after: `${SET}  # keep me\nB = 2\n`,
    line: 1,
  },
  {
    name: 'a backslash-continued assignment is replaced whole',
    before: `${NAME} = \\\n    'sqlite:///x'\nB = 1\n`,
    after: `${SET}\nB = 1\n`,
    line: 1,
  },
  { name: 'keeps a trailing comment on the assignment line', before: `${NAME} = 'x'  # set by hand\n`, after: `${SET}  # set by hand\n`, line: 1 },
  { name: 'keeps the tab before a trailing comment', before: `${NAME}\t=\t'x'\t# c\nX\t=\t1\n`, after: `${SET}\t# c\nX\t=\t1\n`, line: 1 },
  {
    name: 'an assignment indented with a tab inside a block is left alone and reported',
    before: `if True:\n\t${NAME} = 'nested'\n`,
    after: `if True:\n\t${NAME} = 'nested'\n${SET}\n`,
    line: 3,
    untouched: [2],
  },
  { name: 'keeps a UTF-8 BOM when replacing on the first line', before: `\ufeff${NAME} = 'x'\n`, after: `\ufeff${SET}\n`, line: 1 },
  { name: 'keeps a UTF-8 BOM when appending', before: '\ufeffA = 1\n', after: `\ufeffA = 1\n${SET}\n`, line: 2 },
  { name: 'a file holding only a BOM gets no blank line before the assignment', before: '\ufeff', after: `\ufeff${SET}\n`, line: 1 },
  {
    name: 'later duplicates are commented out so exactly one stays active',
    before: `${NAME} = 'a'\nX = 1\n${NAME} = 'b'  # later\n`,
    after: `${SET}\nX = 1\n# ${NAME} = 'b'  # later\n`,
    line: 1,
    disabled: [3],
  },
  {
    name: 'a multi-line duplicate is commented out line by line, CRLF kept',
    before: `${NAME} = 'a'\r\n${NAME} = (\r\n  'b'\r\n)\r\nZ = 0\r\n`,
    after: `${SET}\r\n# ${NAME} = (\r\n#   'b'\r\n# )\r\nZ = 0\r\n`,
    line: 1,
    disabled: [2],
  },
  {
    name: 'a duplicate sharing its line with other statements is cut out with its separator',
    before: `${NAME} = 'a'\nX = 1; ${NAME} = 'b'\n${NAME} = 'c'; Y = 2\n`,
    after: `${SET}\nX = 1\nY = 2\n`,
    line: 1,
    disabled: [2, 3],
  },
  {
    name: 'the name inside a string does not count as an assignment',
    before: `HELP = "set ${NAME} = 'x' here"\nH2 = '${NAME} = 1'\n`,
    after: `HELP = "set ${NAME} = 'x' here"\nH2 = '${NAME} = 1'\n${SET}\n`,
    line: 3,
  },
  {
    name: 'the name inside a docstring does not count as an assignment',
    before: `"""\n${NAME} = 'sqlite'\n"""\nR = r'''\n${NAME} = 2\n'''\n`,
    after: `"""\n${NAME} = 'sqlite'\n"""\nR = r'''\n${NAME} = 2\n'''\n${SET}\n`,
    line: 7,
  },
  {
    name: 'longer names that start or end with the name are not matched',
    before: `${NAME}_X = 'x'\nMY_${NAME} = 'y'\n`,
    after: `${NAME}_X = 'x'\nMY_${NAME} = 'y'\n${SET}\n`,
    line: 3,
  },
  {
    name: 'comparisons, calls and keyword arguments at column 0 are not assignments',
    before: `${NAME} = None\nprint(${NAME} == 'x')\nD = dict(\n${NAME} = 'kw',\n)\n`,
    after: `${SET}\nprint(${NAME} == 'x')\nD = dict(\n${NAME} = 'kw',\n)\n`,
    line: 1,
  },
  {
    name: 'an assignment after a one-line block header belongs to the block and is left alone',
    before: `if False: ${NAME} = 'x'\n`,
    after: `if False: ${NAME} = 'x'\n${SET}\n`,
    line: 2,
  },
  {
    name: 'prefixed and escaped strings before the assignment are skipped correctly',
    before: `x = 1\nA = 'it\\'s # not a comment'; B = b"${NAME} = 1"\nF = f'{x!r}' U"\\\\"; G = Rb"\\""\n${NAME} = 'x'\n`,
    after: `x = 1\nA = 'it\\'s # not a comment'; B = b"${NAME} = 1"\nF = f'{x!r}' U"\\\\"; G = Rb"\\""\n${SET}\n`,
    line: 4,
  },
  {
    name: 'an assignment sharing its line with another statement is replaced alone',
    before: `X = 1; ${NAME} = 'a'  # c\n`,
    after: `X = 1; ${SET}  # c\n`,
    line: 1,
  },
  { name: 'an annotated assignment is replaced whole', before: `${NAME}: str = 'x'\n`, after: `${SET}\n`, line: 1 },
  {
    name: 'an augmented assignment is left alone and reported',
    before: `${NAME} = 'a'\n${NAME} += ''\n`,
    after: `${SET}\n${NAME} += ''\n`,
    line: 1,
    untouched: [2],
  },
  { name: 'the stock PEM file: replaced in place, docstring and comments untouched, duplicate cut', before: fixture('pem-stock.py'), after: fixture('pem-stock.expected.py'), line: 20, disabled: [29] },
  { name: 'a CRLF file without final newline from Windows', before: fixture('crlf-no-final-newline.py'), after: fixture('crlf-no-final-newline.expected.py'), line: 6 },
];

for (const c of cases) {
  test(`setConfigValue: ${c.name}`, (t) => {
    const r = setConfigValue(c.before, NAME, LIT);
    t.is(r.newText, c.after);
    t.is(r.changed, c.before !== c.after);
    t.is(r.line, c.line);
    t.deepEqual(r.disabled, c.disabled ?? []);
    t.deepEqual(r.untouched, c.untouched ?? []);
    t.true(r.newText.split(/\r\n|\n|\r/)[c.line - 1]!.includes(SET));
  });
  test(`setConfigValue is idempotent: ${c.name}`, (t) => {
    const once = setConfigValue(c.before, NAME, LIT).newText;
    const twice = setConfigValue(once, NAME, LIT);
    t.is(twice.newText, once);
    t.false(twice.changed);
    t.deepEqual(twice.disabled, []);
  });
}

test('setConfigValue leaves an assignment with the same value in other quotes unchanged', (t) => {
  const before = `${NAME}='${URI}'\n`;
  const r = setConfigValue(before, NAME, LIT);
  t.is(r.newText, before);
  t.false(r.changed);
});

test('setConfigValue replaces a value that differs only slightly', (t) => {
  const r = setConfigValue(`${NAME} = '${URI}x'\n`, NAME, LIT);
  t.is(r.newText, `${SET}\n`);
  t.true(r.changed);
});

test('setConfigValue refuses an expression that is not one line of Python', (t) => {
  for (const bad of ['"a"\nimport os', '"a"  # c', '"a"; import os', '"a', '(1,']) {
    t.throws(() => setConfigValue('', NAME, bad), { message: /not a one-line Python expression/ }, bad);
  }
});

const invalid: { name: string; text: string; line: number; reason: RegExp }[] = [
  { name: 'an unterminated string', text: "A = 1\nB = 'x\n", line: 2, reason: /unterminated string/ },
  { name: 'an unterminated triple-quoted string', text: 'A = """x\n\nB = 1\n', line: 1, reason: /unterminated triple-quoted/ },
  { name: 'an unclosed bracket', text: 'A = (1,\n2\n', line: 1, reason: /'\(' was never closed/ },
  { name: 'an unmatched bracket', text: 'A = 1\nB = 2)\n', line: 2, reason: /unmatched '\)'/ },
  { name: 'a mismatched bracket', text: 'A = [1)\n', line: 1, reason: /unmatched '\)'/ },
  { name: 'a stray character after a line continuation', text: 'A = 1 \\ 2\n', line: 1, reason: /after line continuation/ },
  { name: 'a character Python does not allow', text: 'A = 1\nB = $\n', line: 2, reason: /invalid character U\+0024/ },
];

for (const c of invalid) {
  test(`invalid Python is reported with its line, not its text: ${c.name}`, (t) => {
    const e = t.throws(() => setConfigValue(c.text, NAME, LIT), { instanceOf: ConfigParseError });
    t.is(e?.line, c.line);
    t.regex(e?.reason ?? '', c.reason);
    t.is(e?.message, `line ${c.line}: ${e?.reason}`);
  });
}

const reads: { name: string; text: string; value: string | undefined }[] = [
  { name: 'a double-quoted literal', text: `${NAME} = "${URI}"\n`, value: URI },
  { name: 'escapes', text: `${NAME} = 'a\\'b\\\\c\\x41\\u00e9\\U0001F600\\101\\n\\q'\n`, value: "a'b\\cAé😀A\n\\q" },
  { name: 'adjacent literals in parentheses over several lines', text: `${NAME} = (\n  'post'  # c\n  "gres"\n)\n`, value: 'postgres' },
  { name: 'a raw string', text: `${NAME} = r'a\\nb'\n`, value: 'a\\nb' },
  { name: 'a u-prefixed string', text: `${NAME} = u'x'\n`, value: 'x' },
  { name: 'an f-string without fields', text: `${NAME} = f'a{{b}}'\n`, value: 'a{b}' },
  { name: 'an f-string with fields is not a plain value', text: `x = 1\n${NAME} = f'a{x}'\n`, value: undefined },
  { name: 'bytes are not a str value', text: `${NAME} = b'x'\n`, value: undefined },
  { name: 'a computed value', text: `import os\n${NAME} = os.environ['URI']\n`, value: undefined },
  { name: 'a tuple is not a string', text: `${NAME} = ('a', 'b')\n`, value: undefined },
  { name: 'no assignment', text: `# ${NAME} = 'x'\n`, value: undefined },
  { name: 'the last of several top-level assignments (what Python binds)', text: `${NAME} = 'a'\n${NAME} = 'b'\n`, value: 'b' },
  { name: 'a later assignment inside a block makes it unknown', text: `${NAME} = 'a'\nif True:\n    ${NAME} = 'b'\n`, value: undefined },
  { name: 'a later augmented assignment makes it unknown', text: `${NAME} = 'a'\n${NAME} += 'b'\n`, value: undefined },
  { name: 'a triple-quoted literal with CRLF inside reads as LF', text: `${NAME} = """a\r\nb"""\r\n`, value: 'a\nb' },
];

for (const c of reads) {
  test(`readConfigValue: ${c.name}`, (t) => {
    t.is(readConfigValue(c.text, NAME), c.value);
  });
}

test('findAssignments reports every assignment with its lines and whether it is top level', (t) => {
  const text = `${NAME} = (\n 'a'\n)\nif x:\n    ${NAME} = 'b'\n${NAME} += 'c'\n`;
  t.deepEqual(
    findAssignments(text, NAME).map((a) => [a.kind, a.topLevel, a.line, a.endLine, a.value]),
    [
      ['assign', true, 1, 3, 'a'],
      ['assign', false, 5, 5, 'b'],
      ['augmented', false, 6, 6, undefined],
    ],
  );
});

const literals: { name: string; value: string; literal: string }[] = [
  { name: 'plain ASCII', value: 'postgresql://u:p@h/db', literal: '"postgresql://u:p@h/db"' },
  { name: 'backslash and double quote', value: 'a\\b"c\'d', literal: '"a\\\\b\\"c\'d"' },
  { name: 'control characters', value: '\n\r\t\x00\x1f\x7f', literal: '"\\n\\r\\t\\x00\\x1f\\x7f"' },
  { name: 'non-ASCII as escapes', value: 'pä ss€😀\u0085\u2028', literal: '"p\\xe4 ss\\u20ac\\U0001f600\\x85\\u2028"' },
];

for (const c of literals) {
  test(`pythonStringLiteral writes ASCII-only Python: ${c.name}`, (t) => {
    t.is(pythonStringLiteral(c.value), c.literal);
    t.is(readConfigValue(`V = ${pythonStringLiteral(c.value)}\n`, 'V'), c.value);
  });
}

// Python itself is the judge: every edited file must compile, and running it must bind the name
// to the URI (one python3 process for all files, to keep the suite fast).
test('every edited file is valid Python that binds CONFIG_DATABASE_URI to the URI', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-local-edit-'));
  const files = cases.map((c, i) => {
    const path = join(dir, `case${i}.py`);
    writeFileSync(path, setConfigValue(c.before, NAME, LIT).newText);
    return path;
  });
  const literalFile = join(dir, 'literals.py');
  writeFileSync(literalFile, literals.map((c, i) => `V${i} = ${pythonStringLiteral(c.value)}\n`).join(''));
  const script = [
    'import json, os, runpy, sys',
    'os.environ.pop("PEM_DEBUG", None)',
    'paths = json.load(sys.stdin)',
    'out = [runpy.run_path(p).get("CONFIG_DATABASE_URI") for p in paths[:-1]]',
    'g = runpy.run_path(paths[-1])',
    'out.append([g["V%d" % i] for i in range(' + String(literals.length) + ')])',
    'print(json.dumps(out))',
  ].join('\n');
  const stdout = execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify([...files, literalFile]), encoding: 'utf8' });
  // Some cases print; the JSON is the last line.
  const values = JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as unknown[];
  cases.forEach((c, i) => t.is(values[i], URI, c.name));
  t.deepEqual(values[cases.length], literals.map((c) => c.value));
});

test('a UTF-8 BOM in a file read as bytes (files/text.ts) is skipped like Python skips it, and kept', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-local-bom-'));
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
  const files: [string, Buffer, number][] = [
    [`${NAME} = 'x'  # caf\u00e9\n`, Buffer.from(`${SET}  # caf\u00e9\n`, 'utf8'), 1],
    ['A = 1\r\n', Buffer.from(`A = 1\r\n${SET}\r\n`, 'utf8'), 2],
    ['', Buffer.from(`${SET}\n`, 'utf8'), 1],
  ].map(([before, after, line], i) => {
    const bytes = Buffer.concat([BOM, Buffer.from(before as string, 'utf8')]);
    const r = setConfigValue(bytesAsText(bytes), NAME, insertable(LIT));
    const out = textAsBytes(r.newText);
    t.deepEqual(out, Buffer.concat([BOM, after as Buffer]), `case ${i}`);
    t.is(r.line, line as number, `case ${i}: line`);
    t.is(readConfigValue(r.newText, NAME), URI, `case ${i}: read back`);
    const path = join(dir, `bom${i}.py`);
    writeFileSync(path, out);
    return [path, out, i];
  });
  const script = 'import json, runpy, sys\nprint(json.dumps([runpy.run_path(p)["CONFIG_DATABASE_URI"] for p in sys.argv[1:]]))';
  const values = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, ...files.map((f) => f[0])], { encoding: 'utf8' })) as unknown[];
  t.deepEqual(values, files.map(() => URI));
});
