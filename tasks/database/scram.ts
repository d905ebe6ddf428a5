// SCRAM-SHA-256 verifiers in PostgreSQL's stored format (RFC 5802 / RFC 7677):
//   SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
// We compute the verifier here so that the SQL we send carries it instead of the password
// (SPEC 4 stage 2), and we check a stored verifier against the desired password so that a
// second deploy leaves an unchanged password alone.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from './saslprep.ts';

/** PostgreSQL's default (and, before 16, only) iteration count. */
export const DEFAULT_ITERATIONS = 4096;
/** PostgreSQL generates 16-byte salts. */
export const DEFAULT_SALT_LENGTH = 16;
const KEY_LENGTH = 32; // SHA-256 output

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface ScramOptions {
  salt?: Buffer;
  iterations?: number;
}

/**
 * The bytes PostgreSQL hashes: the SASLprep'd password, or the raw UTF-8 bytes when SASLprep
 * fails (PostgreSQL falls back instead of rejecting; see saslprep.ts).
 * Throws for passwords PostgreSQL cannot hold at all; messages never include the password.
 */
export function passwordBytes(password: string): Buffer {
  if (password.includes('\0')) {
    throw new RangeError('the password contains a NUL character, which PostgreSQL cannot store');
  }
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(password)) {
    throw new RangeError('the password is not valid Unicode (unpaired surrogate)');
  }
  return Buffer.from(saslprep(password) ?? password, 'utf8');
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function deriveKeys(password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(passwordBytes(password), salt, iterations, KEY_LENGTH, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/** A verifier for `password`, as `CREATE ROLE ... PASSWORD '<verifier>'` stores it verbatim. */
export function scramVerifier(password: string, options: ScramOptions = {}): string {
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  const salt = options.salt ?? randomBytes(DEFAULT_SALT_LENGTH);
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`SCRAM iterations must be a positive integer, got ${iterations}`);
  }
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  const { storedKey, serverKey } = deriveKeys(password, salt, iterations);
  return formatVerifier({ iterations, salt, storedKey, serverKey });
}

export function formatVerifier(v: ScramVerifier): string {
  const b64 = (b: Buffer) => b.toString('base64');
  return `SCRAM-SHA-256$${v.iterations}:${b64(v.salt)}$${b64(v.storedKey)}:${b64(v.serverKey)}`;
}

// Canonical, padded base64 only: Buffer.from(..., 'base64') silently skips junk, and a verifier
// we cannot read exactly must count as "different", never as a match.
const B64 = '(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?';
const VERIFIER = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]{0,9}):(${B64})\\$(${B64}):(${B64})$`);

/**
 * Reads a stored `rolpassword`. Undefined for anything else: NULL, an md5 hash, a plain
 * password (pre-10 servers), or a malformed verifier.
 */
export function parseVerifier(stored: string | null | undefined): ScramVerifier | undefined {
  const m = stored == null ? null : VERIFIER.exec(stored);
  if (!m) return undefined;
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (!Number.isSafeInteger(iterations) || salt.length === 0) return undefined;
  if (storedKey.length !== KEY_LENGTH || serverKey.length !== KEY_LENGTH) return undefined;
  return { iterations, salt, storedKey, serverKey };
}

/**
 * True when `stored` is a SCRAM-SHA-256 verifier of `password` (recomputed with the stored salt
 * and iterations, compared in constant time). False for md5 hashes and anything unreadable, so
 * that deploy replaces them with a SCRAM verifier.
 */
export function verifierMatches(stored: string | null | undefined, password: string): boolean {
  const v = parseVerifier(stored);
  if (!v) return false;
  const { storedKey, serverKey } = deriveKeys(password, v.salt, v.iterations);
  // Both comparisons always run, so timing does not tell which half differed.
  const a = timingSafeEqual(storedKey, v.storedKey);
  const b = timingSafeEqual(serverKey, v.serverKey);
  return a && b;
}
