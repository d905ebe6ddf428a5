// redact: the last guard between a secret and the screen. It must catch every form the
// password travels in (as is, percent-encoded as config_local.py holds it, base64).
import test from 'ava';
import { MASK, redact, redactDeep } from '../../src/secrets.ts';

const PASSWORD = `Zq9!distinct-p@ss "w0rd"/ä`;

// [where the password shows up, the text]
const leaks: [string, string][] = [
  ['as is', `error: ${PASSWORD} rejected`],
  ['percent-encoded by encodeURIComponent (keeps !)', `uri ${encodeURIComponent(PASSWORD)}@host`],
  ['percent-encoded per RFC 3986, as config_local.py holds it (%21 for !)', 'CONFIG_DATABASE_URI = "postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h:5432/db"'],
  ['percent-encoded with lower-case hex', 'postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2f%c3%a4@h/db'],
  ['base64', `payload ${Buffer.from(PASSWORD, 'utf8').toString('base64')} end`],
];

for (const [where, text] of leaks) {
  test(`redact masks the password ${where}`, (t) => {
    const out = redact(text, [PASSWORD]);
    t.true(out.includes(MASK), out);
    t.false(out.includes('distinct-p'), out);
    t.false(out.includes(Buffer.from(PASSWORD, 'utf8').toString('base64')), out);
  });
}

test('redact keeps everything else byte for byte', (t) => {
  t.is(redact('postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h:5432/db ok', [PASSWORD]), `postgresql://u:${MASK}@h:5432/db ok`);
  t.is(redact('nothing secret here', [PASSWORD, '']), 'nothing secret here');
});

test('redact masks several secrets (role password and sudo password)', (t) => {
  t.is(redact('a=first-secret-1 b=second secret', ['first-secret-1', 'second secret']), `a=${MASK} b=${MASK}`);
});

test('redact survives a secret with a lone surrogate (encodeURIComponent would throw)', (t) => {
  t.is(redact('x \ud800abc-secret-value y', ['\ud800abc-secret-value']), `x ${MASK} y`);
});

test('redactDeep masks every string of a run record and keeps its shape', (t) => {
  const record = { run: 'r1', hosts: { 'web-1': { steps: [{ step: 'restart web app', message: `exited with 3: postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h/db`, record: { exitCode: 3, ok: true, backup: null } }] } } };
  t.deepEqual(redactDeep(record, [PASSWORD]), { run: 'r1', hosts: { 'web-1': { steps: [{ step: 'restart web app', message: `exited with 3: postgresql://u:${MASK}@h/db`, record: { exitCode: 3, ok: true, backup: null } }] } } });
});
