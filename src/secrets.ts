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

/** Replaces every occurrence of each secret (and its percent-encoded form) in text. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join(MASK);
  }
  return out;
}
