// What counts as a secret, and how it is hidden (SPEC 7). Secrets come from the environment or
// .env (never the inventory, SPEC 3), but an Ansible inventory may still carry ansible_password,
// an API token or a key, and a config_local.py carries the web app's own secrets: they are
// masked wherever they are shown, by their name and by their shape.
//
// The rules, in the operator's words:
// - A name says "secret" when one of its words is, or contains, password, passwd, passphrase,
//   secret, token or credential; or is pass, pw, pwd, psk, apikey or privkey ("pass" inside
//   "passenger" or "bypass" does not count); or is `key` after private, api, access, secret,
//   signing, encryption, master, auth, shared, session or hmac (private_key, api_key).
// - A name whose last word names a place — file, path, dir, directory, filename, location, url,
//   uri, endpoint — is not a secret: ansible_ssh_private_key_file and vault_password_file hold a
//   path, OAUTH2_TOKEN_URL an address. Its value is still masked if its shape is a secret's.
// - Other `*_key` names (ssh_host_key, cache_key) are masked only when the value looks like key
//   material: one run of 16 or more base64/hex characters with letters and digits, not a path.
// - By shape, whatever the name: a PEM private key block, a password in a URI's userinfo
//   (scheme://user:PASSWORD@host), and `name=value` pairs whose name says secret (a URI's
//   `?password=`, a libpq `password=`, a commented-out `MAIL_PASSWORD = '...'`). yes/no/true/
//   false/on/off/none/null are settings, not secrets, and stay visible (-o PasswordAuthentication=no).

import type { Vars, VarValue } from './inventory/index.ts';

export const MASK = '********';

const SECRET_WORDS = ['password', 'passwd', 'passphrase', 'secret', 'token', 'credential'];
const SECRET_PARTS = new Set(['pass', 'pw', 'pwd', 'psk', 'apikey', 'privkey']);
const KEY_QUALIFIERS = new Set(['private', 'api', 'access', 'secret', 'signing', 'encryption', 'master', 'auth', 'shared', 'session', 'hmac']);
const PLACE_PARTS = new Set(['file', 'path', 'dir', 'directory', 'filename', 'location', 'url', 'uri', 'endpoint']);
/** Values that switch something on or off: never a secret, and hiding them hides a setting. */
const NOT_SECRET_VALUES = /^(?:true|false|yes|no|on|off|none|null)$/i;

/** The words of a name: snake_case, kebab-case, dotted and camelCase alike, lower-cased. */
function nameParts(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** True when the name alone says its value is a secret (see the rules at the top). */
export function isSecretVar(name: string): boolean {
  const parts = nameParts(name);
  if (parts.length === 0 || PLACE_PARTS.has(parts.at(-1)!)) return false;
  if (parts.some((p) => SECRET_PARTS.has(p) || SECRET_WORDS.some((w) => p.includes(w)))) return true;
  return parts.some((p, i) => (p === 'key' || p === 'keys') && i > 0 && KEY_QUALIFIERS.has(parts[i - 1]!));
}

/** A name like ssh_host_key or cache_key: a secret or not depending on what it holds. */
export function isKeyName(name: string): boolean {
  const last = nameParts(name).at(-1);
  return last === 'key' || last === 'keys';
}

/** One run of base64/base64url/hex characters, long, with letters and digits: a key, not a word or a path. */
export function looksLikeKeyMaterial(value: string): boolean {
  const v = value.trim();
  return /^[A-Za-z0-9+/_-]{16,}={0,2}$/.test(v) && /[0-9]/.test(v) && /[A-Za-z]/.test(v) && !v.startsWith('/');
}

/** An inventory variable's value as it may be shown. */
export function maskVarValue(name: string, value: VarValue): VarValue {
  // Nothing to hide in an empty value, and seeing that it is empty helps.
  if (value === null || value === '') return value;
  if (isSecretVar(name)) return MASK;
  if (typeof value !== 'string') return value;
  if (isKeyName(name) && looksLikeKeyMaterial(value)) return MASK;
  // A variable's value is one value: a quote in it is part of it, not the end of a URI.
  return maskSecretsInText(value, { quotesAreData: true });
}

export function maskVars(vars: Vars): Vars {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, maskVarValue(k, v)]));
}

export interface TextMaskOptions {
  /**
   * The text is the inside of one string literal, so a quote in it is data: a URI password may
   * contain one. In free text (a comment, a message) a quote ends the URI.
   */
  quotesAreData?: boolean;
  /**
   * Mask from an unterminated `-----BEGIN ... PRIVATE KEY-----` to the end of the text (the
   * default). Off when the text was already masked piece by piece and only whole blocks that
   * span pieces remain to be found.
   */
  unterminatedKeys?: boolean;
}

/**
 * Masks secrets found by their shape in free text: private key blocks, URI userinfo passwords
 * and secret-named `name=value` / `name: value` pairs. Line breaks are kept, so a masked file
 * has the same lines as the original and a diff of two masked files still lines up.
 */
export function maskSecretsInText(text: string, options: TextMaskOptions = {}): string {
  return maskSecretPairs(maskUriPasswords(maskPrivateKeys(text, options.unterminatedKeys ?? true), options.quotesAreData ?? false));
}

const KEY_BEGIN = /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----/g;

/** Replaces each line of every private key block's body; the BEGIN and END lines stay. */
export function maskPrivateKeys(text: string, unterminated = true): string {
  let out = '';
  let from = 0;
  KEY_BEGIN.lastIndex = 0;
  for (let m = KEY_BEGIN.exec(text); m; m = KEY_BEGIN.exec(text)) {
    const bodyStart = m.index + m[0].length;
    const end = text.indexOf(`-----END ${m[1]!}-----`, bodyStart);
    if (end < 0 && !unterminated) continue;
    const bodyEnd = end < 0 ? text.length : end;
    out += text.slice(from, bodyStart) + maskLines(text.slice(bodyStart, bodyEnd));
    from = bodyEnd;
    KEY_BEGIN.lastIndex = bodyEnd;
  }
  return out + text.slice(from);
}

/** Every non-empty line of `s` becomes the mask; the line breaks stay where they were. */
export function maskLines(s: string): string {
  return s.replace(/[^\r\n]+/g, MASK);
}

/** The password in the userinfo of every URI in the text (scheme://user:PASSWORD@host). */
export function maskUriPasswords(text: string, quotesAreData = false): string {
  const uri = quotesAreData ? /([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/?#\s'"]*:)([^@\s]+)@/g : /([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/?#\s'"]*:)([^@\s'"]+)@/g;
  return text.replace(uri, `$1${MASK}@`);
}

// A name, optionally quoted (a dict key), not glued to a longer name, then =, := or :.
const PAIR = /(?<![\w.-])(["']?)([A-Za-z_][\w.-]*)\1([ \t]*(?::=|=|:)[ \t]*)/g;

/**
 * The value of each `name=value`, `name = 'value'`, `'name': 'value'` or `name: value` whose
 * name says secret. A quoted value keeps its quotes (and a triple-quoted one its lines); a bare
 * value ends at a space, a quote, `&`, `,`, `;` or a closing bracket.
 */
export function maskSecretPairs(text: string): string {
  let out = '';
  let from = 0;
  PAIR.lastIndex = 0;
  for (let m = PAIR.exec(text); m; m = PAIR.exec(text)) {
    const [whole = '', quote = '', name = '', sep = ''] = m;
    const at = m.index + whole.length;
    // `name == x` compares; `user:pw` in a URI and `host:port` are not `name: value`.
    const isPair = text[at] !== '=' && (!sep.trimStart().startsWith(':') || sep.includes(':=') || quote !== '' || /:[ \t]/.test(sep));
    if (!isPair || !isSecretVar(name)) continue;
    const value = valueAt(text, at);
    if (!value) continue;
    out += text.slice(from, value.start) + value.masked;
    from = value.end;
    PAIR.lastIndex = Math.max(value.end, PAIR.lastIndex);
  }
  return out + text.slice(from);
}

interface MaskedValue {
  start: number;
  end: number;
  masked: string;
}

const QUOTED = /[rRbBuUfF]{0,2}('''|"""|'|")/y;
const BARE = /[^\s'"&,;)\]}]+/y;

function valueAt(text: string, at: number): MaskedValue | undefined {
  QUOTED.lastIndex = at;
  const q = QUOTED.exec(text);
  if (q) {
    const innerStart = at + q[0].length;
    const innerEnd = closingQuote(text, innerStart, q[1]!);
    return { start: innerStart, end: innerEnd, masked: maskLines(text.slice(innerStart, innerEnd)) };
  }
  BARE.lastIndex = at;
  const bare = BARE.exec(text);
  if (!bare || NOT_SECRET_VALUES.test(bare[0])) return undefined;
  return { start: at, end: at + bare[0].length, masked: MASK };
}

/** Where the quoted value starting at `from` ends: its closing quote, else the end of its line (or text). */
function closingQuote(text: string, from: number, quote: string): number {
  if (quote.length === 3) {
    const end = text.indexOf(quote, from);
    return end < 0 ? text.length : end;
  }
  for (let j = from; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === quote || c === '\n' || c === '\r') return j;
  }
  return text.length;
}

/**
 * Replaces every occurrence of each secret in text, in each form it travels in: as is,
 * percent-encoded (encodeURIComponent's form, and RFC 3986's, which also encodes !'()* — the
 * form config_local.py holds, so an operator's restart command that prints the file is still
 * masked), and base64 (file contents go to the hosts base64-encoded).
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    // Longest first, so a form that contains another is masked whole.
    const forms = [...new Set([s, ...encodedForms(s)])].filter(Boolean).sort((a, b) => b.length - a.length);
    for (const form of forms) out = out.split(form).join(MASK);
  }
  return out;
}

function encodedForms(s: string): string[] {
  const rfc3986 = [...Buffer.from(s, 'utf8')]
    .map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
  let component = rfc3986;
  try {
    component = encodeURIComponent(s);
  } catch {
    // a lone surrogate: encodeURIComponent cannot encode it; the RFC 3986 form stands in
  }
  return [component, rfc3986, rfc3986.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()), Buffer.from(s, 'utf8').toString('base64')];
}

/**
 * A copy of a JSON-like value with every string passed through redact: for what is written to
 * disk (run records), whose messages may quote what a host printed (an operator's restart
 * command that echoes config_local.py).
 */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  return mapStrings(value, (text) => redact(text, secrets));
}

/** A copy of a JSON-like value with `f` applied to every string in it. */
export function mapStrings<T>(value: T, f: (text: string) => string): T {
  if (typeof value === 'string') return f(value) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)])) as T;
  return value;
}
