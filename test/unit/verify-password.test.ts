// verify logs in with the `pg` client, the web app with libpq: both must hash the same bytes for
// SCRAM, or verify and the web app disagree about a password. libpq SASLpreps the password and
// falls back to its raw bytes where SASLprep fails; pg applies a SASLprep of its own on top of
// what it is given. This checks that what verify gives pg comes out as libpq's bytes.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { passwordBytes } from '../../tasks/database/scram.ts';
import { libpqPassword } from '../../tasks/verify/probe.ts';

// pg's own preparation, as its SCRAM client applies it (lib/crypto/sasl.js).
function pgSaslprep(password: string): string {
  return password.replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    .replace(/[\u00AD\u034F\u1806\u180B\u180C\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '').normalize('NFKC');
}

test('pg really prepares passwords this way (the check below is about the installed pg)', (t) => {
  const source = createRequire(import.meta.url).resolve('pg/lib/crypto/sasl.js');
  t.regex(readFileSync(source, 'utf8'), /normalize\('NFKC'\)/);
});

const passwords: [string, string][] = [
  ['plain ASCII', 'correct horse battery staple'],
  ['a combining accent (e + U+0301)', 'cafe\u0301-password'],
  ['a precomposed accent', 'café-password'],
  ['a non-ASCII space', 'two\u00a0words-password'],
  ['a soft hyphen, mapped to nothing', 'soft\u00adhyphen-password'],
  ['a ligature NFKC unfolds', 'ﬁsh-password'],
  ['a control character: SASLprep fails, libpq sends the raw bytes', 'bell\u0007-password'],
  ['an unassigned code point: SASLprep fails, raw bytes', 'unassigned\u0378-password'],
];
for (const [name, password] of passwords) {
  test(`verify hashes what libpq hashes: ${name}`, (t) => {
    t.deepEqual(Buffer.from(pgSaslprep(libpqPassword(password)), 'utf8'), passwordBytes(password));
  });
}
