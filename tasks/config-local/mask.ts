// config_local.py as --diff, rollback and messages may show it (SPEC 7): every secret the web
// app's configuration can hold is masked, not only the URI's password. The file is read as
// Python (the tokenizer that edit.ts uses), so a secret is found by what the code says — an
// assignment, a keyword argument, a dict entry, a subscript — and not by how a line happens to
// be laid out. Line breaks are never touched: masked before and after texts have the same lines
// as the originals, so their diff shows the same hunks.

import { isKeyName, isSecretVar, looksLikeKeyMaterial, MASK, maskLines, maskPrivateKeys, maskSecretsInText } from '../../src/secrets.ts';
import { ConfigParseError, tokenize, type Token } from './tokenize.ts';

const ASSIGN_OPS = new Set(['=', ':=', '+=', '|=']);

/**
 * config_local.py with its secrets masked:
 * - the value of every assignment, keyword argument, dict entry or `config['NAME'] =` whose name
 *   says secret (src/secrets.ts isSecretVar: MAIL_PASSWORD, LDAP_BIND_PASSWORD, SECRET_KEY,
 *   SECURITY_PASSWORD_SALT, OAUTH2_CLIENT_SECRET...): each string literal in it keeps its prefix
 *   and quotes and shows ********, each number shows ********; True/False/None and names stay;
 * - in every string and comment: URI userinfo passwords, secret-named `name=value` pairs
 *   (`?password=`, libpq `password=`), a commented-out `# MAIL_PASSWORD = '...'`;
 * - private key blocks, even when split over several string literals.
 * Text the tokenizer cannot read (a file broken by hand) is masked line by line instead.
 */
export function maskConfigSecrets(text: string): string {
  let tokens: Token[];
  try {
    tokens = tokenize(text);
  } catch (e) {
    if (e instanceof ConfigParseError) return maskSecretsInText(text);
    throw e;
  }
  const edits = new Map<number, string>();
  const tokenAt = new Map<number, Token>();
  for (const t of tokens) {
    tokenAt.set(t.start, t);
    const masked = t.kind === 'string' ? maskInsideString(t.text) : t.kind === 'comment' ? maskSecretsInText(t.text) : t.text;
    if (masked !== t.text) edits.set(t.start, masked);
  }
  const code = tokens.filter((t) => t.kind !== 'nl' && t.kind !== 'comment');
  for (const t of secretValueTokens(code)) edits.set(t.start, t.kind === 'string' ? maskStringLiteral(t.text) : MASK);

  let out = '';
  let from = 0;
  for (const start of [...edits.keys()].sort((a, b) => a - b)) {
    out += text.slice(from, start) + edits.get(start)!;
    from = tokenAt.get(start)!.end;
  }
  out += text.slice(from);
  // A key written as adjacent literals ("-----BEGIN ...\n" "MIIE...\n" ...) is only whole here;
  // each literal's own unterminated block was already masked to its closing quote.
  return maskPrivateKeys(out, false);
}

/**
 * The string and number tokens of every value whose name says secret; for a name like
 * CACHE_KEY that may or may not hold one, the string literals that look like key material.
 */
function secretValueTokens(code: Token[]): Token[] {
  const found: Token[] = [];
  for (let i = 0; i < code.length; i++) {
    const value = valueOf(code, i);
    if (value === undefined) continue;
    const depth = code[value.start - 1]!.depth;
    for (let j = value.start; j < code.length; j++) {
      const t = code[j]!;
      // The value ends with its statement, at a comma or semicolon beside it, or at the bracket
      // that encloses it (a bracket has the depth of the code outside it, so the value's own
      // brackets never end it).
      if (t.kind === 'newline' || t.depth < depth || (t.depth === depth && (t.text === ',' || t.text === ';') && t.kind === 'op')) break;
      if (value.secret ? t.kind === 'string' || t.kind === 'number' : t.kind === 'string' && looksLikeKeyMaterial(literalParts(t.text)[1])) found.push(t);
    }
  }
  return found;
}

/**
 * When code[i] names a setting that a value is given to, where the value starts and whether the
 * name says secret (else it is a *_KEY name): `NAME = v` (also :=, +=, |=, `obj.NAME = v`,
 * `f(NAME=v)`), `NAME: T = v` at the top level, `'NAME': v` in a dict, `x['NAME'] = v`.
 */
function valueOf(code: Token[], i: number): { start: number; secret: boolean } | undefined {
  const t = code[i]!;
  const next = code[i + 1];
  if (!next || next.kind !== 'op') return undefined;
  const name = t.kind === 'name' ? t.text : t.kind === 'string' ? plainStringValue(t.text) : undefined;
  if (name === undefined) return undefined;
  const secret = isSecretVar(name);
  if (!secret && !isKeyName(name)) return undefined;
  let start: number | undefined;
  if (t.kind === 'name') {
    if (ASSIGN_OPS.has(next.text) || (next.text === ':' && t.depth === 0)) start = i + 2;
  } else if (next.text === ':') {
    start = i + 2;
  } else if (next.text === ']' && code[i + 2]?.kind === 'op' && ASSIGN_OPS.has(code[i + 2]!.text)) {
    start = i + 3;
  }
  return start === undefined ? undefined : { start, secret };
}

/** The value of a literal like 'MAIL_PASSWORD' or "SECRET_KEY" that can name a setting. */
function plainStringValue(literal: string): string | undefined {
  return /^[uU]?(["'])([A-Za-z_][\w.-]*)\1$/.exec(literal)?.[2];
}

/** Splits a (complete: the tokenizer checked) string literal into prefix+opening quote, contents, closing quote. */
function literalParts(literal: string): [string, string, string] {
  const open = /^[A-Za-z]*('''|"""|'|")/.exec(literal)!;
  const quote = open[1]!;
  return [open[0], literal.slice(open[0].length, literal.length - quote.length), quote];
}

/** A secret's literal: its prefix and quotes stay, each line of its contents becomes ********. */
function maskStringLiteral(literal: string): string {
  const [open, inner, close] = literalParts(literal);
  return open + maskLines(inner) + close;
}

/** Secrets by shape inside a literal's contents; a quote in there is data (a URI password may hold one). */
function maskInsideString(literal: string): string {
  const [open, inner, close] = literalParts(literal);
  const masked = maskSecretsInText(inner, { quotesAreData: true });
  return masked === inner ? literal : open + masked + close;
}
