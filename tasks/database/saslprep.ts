// SASLprep (RFC 4013) exactly as PostgreSQL applies it to a password before hashing it into a
// SCRAM verifier (src/common/saslprep.c, server and libpq alike). We must reproduce the server's
// bytes, not the RFC's ideal, because the verifier we compute is compared with the one the server
// stores and the web app's libpq prepares the password the same way when it logs in.
//
// What PostgreSQL does, and so what we do:
//  - a pure-ASCII password is used as is (even control characters);
//  - otherwise: map (non-ASCII spaces → U+0020, "commonly mapped to nothing" removed), then NFKC;
//  - the prohibited-output, unassigned-in-Unicode-3.2 and bidi checks run on the MAPPED string
//    before normalisation (a PostgreSQL quirk we copy on purpose);
//  - when a check fails, or the mapped string is empty, PostgreSQL does not reject the password:
//    it hashes the raw UTF-8 bytes instead. `saslprep` returns undefined in that case.
// NFKC comes from the JS engine (a newer Unicode than PostgreSQL's); normalisation is stable for
// characters assigned in Unicode 3.2, and any other character makes PostgreSQL fall back to the raw
// bytes before normalising, so the results agree.

import * as tables from './saslprep-tables.ts';

type RangeTable = Uint32Array; // flat [from, to, from, to, ...], sorted

function parseTable(text: string): RangeTable {
  const parts = text.split(' ');
  const out = new Uint32Array(parts.length * 2);
  parts.forEach((part, i) => {
    const [from = '', to = from] = part.split('-');
    out[2 * i] = parseInt(from, 16);
    out[2 * i + 1] = parseInt(to, 16);
  });
  return out;
}

const NON_ASCII_SPACE = parseTable(tables.nonAsciiSpace);
const MAPPED_TO_NOTHING = parseTable(tables.mappedToNothing);
const PROHIBITED = parseTable(tables.prohibited);
const UNASSIGNED = parseTable(tables.unassigned);
const RAND_AL = parseTable(tables.randAL);
const L_CAT = parseTable(tables.lcat);

function inTable(code: number, table: RangeTable): boolean {
  let lo = 0;
  let hi = table.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (code < table[2 * mid]!) hi = mid - 1;
    else if (code > table[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Why PostgreSQL would skip SASLprep for this password (for tests and docs). */
export type SaslprepFallback = 'empty' | 'prohibited' | 'unassigned' | 'bidi';

export type SaslprepResult = { ok: true; value: string } | { ok: false; reason: SaslprepFallback };

/** SASLprep as PostgreSQL does it; `ok: false` means PostgreSQL hashes the raw bytes. */
export function saslprepDetailed(password: string): SaslprepResult {
  if (/^[\x00-\x7f]*$/.test(password)) return { ok: true, value: password };

  const mapped: number[] = [];
  for (const ch of password) {
    const code = ch.codePointAt(0)!;
    if (inTable(code, NON_ASCII_SPACE)) mapped.push(0x20);
    else if (!inTable(code, MAPPED_TO_NOTHING)) mapped.push(code);
  }
  if (mapped.length === 0) return { ok: false, reason: 'empty' };

  for (const code of mapped) {
    if (inTable(code, PROHIBITED)) return { ok: false, reason: 'prohibited' };
    if (inTable(code, UNASSIGNED)) return { ok: false, reason: 'unassigned' };
  }
  if (mapped.some((code) => inTable(code, RAND_AL))) {
    const first = mapped[0]!;
    const last = mapped[mapped.length - 1]!;
    if (mapped.some((code) => inTable(code, L_CAT))) return { ok: false, reason: 'bidi' };
    if (!inTable(first, RAND_AL) || !inTable(last, RAND_AL)) return { ok: false, reason: 'bidi' };
  }
  return { ok: true, value: String.fromCodePoint(...mapped).normalize('NFKC') };
}

/** The prepared password, or undefined when PostgreSQL would use the raw bytes. */
export function saslprep(password: string): string | undefined {
  const result = saslprepDetailed(password);
  return result.ok ? result.value : undefined;
}
