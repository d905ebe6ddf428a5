import test from 'ava';
import { readFileSync } from 'node:fs';
import { saslprepDetailed } from '../../tasks/database/saslprep.ts';
import { DEFAULT_ITERATIONS, parseVerifier, scramVerifier, verifierMatches } from '../../tasks/database/scram.ts';

interface Vector {
  name: string;
  why: string;
  password: string;
  verifier: string;
  alsoMatches?: string;
  doesNotMatch?: string;
}
const { vectors } = JSON.parse(
  readFileSync(new URL('../fixtures/database/scram-vectors.json', import.meta.url), 'utf8'),
) as { vectors: Vector[] };

for (const v of vectors) {
  test(`a verifier PostgreSQL stored matches its password: ${v.name} (${v.why})`, (t) => {
    t.true(verifierMatches(v.verifier, v.password));
  });

  test(`same salt and iterations reproduce PostgreSQL's stored verifier byte for byte: ${v.name}`, (t) => {
    const parsed = parseVerifier(v.verifier);
    t.truthy(parsed);
    t.is(scramVerifier(v.password, { salt: parsed!.salt, iterations: parsed!.iterations }), v.verifier);
  });

  if (v.alsoMatches !== undefined) {
    test(`SASLprep makes an equivalent spelling match: ${v.name}`, (t) => {
      t.true(verifierMatches(v.verifier, v.alsoMatches!));
    });
  }
  if (v.doesNotMatch !== undefined) {
    test(`where PostgreSQL hashes raw bytes, the normalised spelling does not match: ${v.name}`, (t) => {
      t.false(verifierMatches(v.verifier, v.doesNotMatch!));
    });
  }
}

test('a different password does not match', (t) => {
  const v = vectors[0]!;
  t.false(verifierMatches(v.verifier, `${v.password}x`));
  t.false(verifierMatches(v.verifier, v.password.toUpperCase()));
});

const notScram: [string, string | null | undefined][] = [
  ['no password (NULL rolpassword)', null],
  ['undefined', undefined],
  ['an md5 hash', 'md5c4ca4238a0b923820dcc509a6f75849b'],
  ['a plain password', 'pw'],
  ['SCRAM-SHA-1', 'SCRAM-SHA-1$4096:c2FsdA==$AAAA:AAAA'],
  ['non-canonical base64 salt', 'SCRAM-SHA-256$4096:c2Fsd!!=$wQIeKs2sZrIno+dUTXOFrB5Jx4XSZm6T0zQAzDlNSqg=:38weOB/OjND/EgL6ieSiKjE5QVc8RR67CvQCgrHhDYY='],
  ['a StoredKey of the wrong length', 'SCRAM-SHA-256$4096:xUt4JXqit3f5JCnUOZpJ6Q==$c2hvcnQ=:38weOB/OjND/EgL6ieSiKjE5QVc8RR67CvQCgrHhDYY='],
  ['zero iterations', 'SCRAM-SHA-256$0:xUt4JXqit3f5JCnUOZpJ6Q==$wQIeKs2sZrIno+dUTXOFrB5Jx4XSZm6T0zQAzDlNSqg=:38weOB/OjND/EgL6ieSiKjE5QVc8RR67CvQCgrHhDYY='],
  ['trailing garbage', `${vectors[0]!.verifier} `],
];
for (const [what, stored] of notScram) {
  test(`a stored value that is not a readable SCRAM-SHA-256 verifier never matches: ${what}`, (t) => {
    t.is(parseVerifier(stored), undefined);
    t.false(verifierMatches(stored, 'pw'));
  });
}

test('parseVerifier returns iterations, salt and both keys', (t) => {
  const stored = vectors[0]!.verifier;
  const v = parseVerifier(stored)!;
  t.is(v.iterations, 4096);
  t.is(`SCRAM-SHA-256$4096:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`, stored);
  t.is(v.storedKey.length, 32);
  t.is(v.serverKey.length, 32);
});

test('new verifiers use a random 16-byte salt and 4096 iterations, and still match', (t) => {
  const a = scramVerifier('pässwörd');
  const b = scramVerifier('pässwörd');
  t.not(a, b);
  for (const v of [a, b]) {
    const parsed = parseVerifier(v)!;
    t.is(parsed.iterations, DEFAULT_ITERATIONS);
    t.is(parsed.salt.length, 16);
    t.true(verifierMatches(v, 'pässwörd'));
  }
});

test('a verifier with other iterations is checked with its own count', (t) => {
  const v = scramVerifier('pw', { iterations: 10000, salt: Buffer.from('0123456789abcdef') });
  t.true(v.startsWith('SCRAM-SHA-256$10000:MDEyMzQ1Njc4OWFiY2RlZg==$'));
  t.true(verifierMatches(v, 'pw'));
  t.false(verifierMatches(v, 'pw2'));
});

const unstorable: [string, string][] = [
  ['a NUL character', 'sec\0ret'],
  ['an unpaired surrogate', 'sec\uD800ret'],
];
for (const [what, password] of unstorable) {
  test(`a password PostgreSQL cannot hold is refused without echoing it: ${what}`, (t) => {
    const e = t.throws(() => scramVerifier(password), { instanceOf: RangeError });
    t.false(e!.message.includes('sec'));
  });
}

const prep: [string, string, ReturnType<typeof saslprepDetailed>][] = [
  ['ASCII is kept as is, control characters included', 'a\tb\x07', { ok: true, value: 'a\tb\x07' }],
  ['non-ASCII spaces become a space', 'a\u00A0b\u3000c', { ok: true, value: 'a b c' }],
  ['commonly-mapped-to-nothing characters are removed', 'a\u00ADb\u2060c\uFEFF', { ok: true, value: 'abc' }],
  ['U+200B counts as a space, as in Unicode 3.2', '\u00E4\u200Bx', { ok: true, value: '\u00E4 x' }],
  ['NFKC is applied', '\uFF21\uFB01', { ok: true, value: 'Afi' }],
  ['nothing left after mapping falls back', '\u00AD', { ok: false, reason: 'empty' }],
  ['a prohibited character falls back', '\u00E4\u0007', { ok: false, reason: 'prohibited' }],
  ['a private-use character falls back', '\u00E4\uE000', { ok: false, reason: 'prohibited' }],
  ['a code point unassigned in Unicode 3.2 falls back', '\u00E4\u{1F600}', { ok: false, reason: 'unassigned' }],
  ['right-to-left mixed with left-to-right falls back', '\u05D0a', { ok: false, reason: 'bidi' }],
  ['right-to-left not at both ends falls back', '\u05D01', { ok: false, reason: 'bidi' }],
  ['right-to-left only is fine', '\u05D01\u05D1', { ok: true, value: '\u05D01\u05D1' }],
];
for (const [what, input, expected] of prep) {
  test(`SASLprep as PostgreSQL does it: ${what}`, (t) => {
    t.deepEqual(saslprepDetailed(input), expected);
  });
}
