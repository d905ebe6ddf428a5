// What counts as a secret, and how it is hidden. Secrets come from the environment or .env
// (never the inventory, SPEC 3), but an Ansible inventory may still carry ansible_password and
// the like: those are masked wherever variables are shown.

import type { Vars } from './inventory/index.ts';

export const MASK = '********';

const SECRET_VAR = /(pass(word)?|secret|token|private_key_passphrase)$/i;

export function isSecretVar(name: string): boolean {
  return SECRET_VAR.test(name);
}

export function maskVars(vars: Vars): Vars {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, isSecretVar(k) && v !== null && v !== '' ? MASK : v]));
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
  if (typeof value === 'string') return redact(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)])) as T;
  }
  return value;
}
