// Python's ast.literal_eval (3.11), which Ansible's INI plugin applies to every value: the text
// is parsed as a Python expression and accepted only if it is a literal — numbers, strings,
// bytes, True/False/None, tuples, lists, dicts, sets, a signed number, `real ± imaginary`.
// The shape of the tree and the order of evaluation follow Python's `_convert`, so the same text
// gives the same answer: a value, "not a literal" (Ansible keeps the raw text) or an error.

import { NotLiteral, tokenize, type Token } from './pytokens.ts';

export { NotLiteral } from './pytokens.ts';

/** A value as Python holds it after literal_eval. */
export type PyValue =
  | { type: 'int'; value: bigint }
  | { type: 'float'; value: number }
  | { type: 'complex' }
  | { type: 'str'; value: string; needsNames: boolean }
  | { type: 'bytes'; value: number[] }
  | { type: 'bool'; value: boolean }
  | { type: 'none' }
  | { type: 'ellipsis' }
  | { type: 'tuple' | 'list' | 'set'; items: PyValue[] }
  | { type: 'dict'; entries: [PyValue, PyValue][] };

type Node =
  | { k: 'const'; value: PyValue }
  | { k: 'unary'; op: string; operand: Node }
  | { k: 'binop'; op: string; left: Node; right: Node }
  | { k: 'tuple' | 'list' | 'set'; items: Node[] }
  | { k: 'dict'; keys: Node[]; values: Node[] }
  | { k: 'name'; id: string }
  | { k: 'emptySet' };

/** Python raised something other than ValueError/SyntaxError (an unhashable key): Ansible fails. */
export class LiteralTypeError extends Error {}

/** literal_eval(text): the value, or NotLiteral where Python raises ValueError or SyntaxError. */
export function literalEval(text: string): PyValue {
  const parser = new Parser(tokenize(text.replace(/^[ \t]+/, '')));
  const node = parser.expressionList();
  if (!parser.atEnd()) throw new NotLiteral('trailing tokens');
  return convert(node);
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  atEnd(): boolean {
    return this.i >= this.tokens.length;
  }

  private peekOp(text: string): boolean {
    const t = this.tokens[this.i];
    return t?.t === 'op' && t.text === text;
  }

  private takeOp(text: string): boolean {
    if (!this.peekOp(text)) return false;
    this.i++;
    return true;
  }

  private expectOp(text: string): void {
    if (!this.takeOp(text)) throw new NotLiteral(`expected ${text}`);
  }

  /** `a`, or `a, b,` (a tuple without parentheses, as at the top of an eval). */
  expressionList(): Node {
    if (this.atEnd()) throw new NotLiteral('empty expression');
    const first = this.sum();
    if (!this.peekOp(',')) return first;
    const items = [first];
    while (this.takeOp(',') && !this.atEnd() && !this.peekOp(')')) items.push(this.sum());
    return { k: 'tuple', items };
  }

  private sum(): Node {
    let left = this.unary();
    for (;;) {
      const op = this.peekOp('+') ? '+' : this.peekOp('-') ? '-' : undefined;
      if (!op) return left;
      this.i++;
      left = { k: 'binop', op, left, right: this.unary() };
    }
  }

  private unary(): Node {
    for (const op of ['+', '-']) if (this.takeOp(op)) return { k: 'unary', op, operand: this.unary() };
    return this.atom();
  }

  private atom(): Node {
    const t = this.tokens[this.i++];
    if (!t) throw new NotLiteral('unexpected end');
    switch (t.t) {
      case 'int': return { k: 'const', value: { type: 'int', value: t.value } };
      case 'float': return { k: 'const', value: { type: 'float', value: t.value } };
      case 'imag': return { k: 'const', value: { type: 'complex' } };
      case 'str': case 'bytes': return { k: 'const', value: this.strings(t) };
      case 'name': return this.name(t.text);
      case 'op': return this.bracketed(t.text);
    }
  }

  /** Adjacent string literals concatenate; str and bytes do not mix. */
  private strings(first: Token & { t: 'str' | 'bytes' }): PyValue {
    const parts: Token[] = [first];
    for (let t = this.tokens[this.i]; t && t.t === first.t; t = this.tokens[++this.i]) parts.push(t);
    const other = this.tokens[this.i];
    if (other && (other.t === 'str' || other.t === 'bytes')) throw new NotLiteral('cannot mix bytes and nonbytes literals');
    if (first.t === 'bytes') return { type: 'bytes', value: parts.flatMap((p) => (p.t === 'bytes' ? p.value : [])) };
    const strs = parts.filter((p): p is Token & { t: 'str' } => p.t === 'str');
    return { type: 'str', value: strs.map((p) => p.value).join(''), needsNames: strs.some((p) => p.needsNames) };
  }

  private name(id: string): Node {
    if (id === 'True' || id === 'False') return { k: 'const', value: { type: 'bool', value: id === 'True' } };
    if (id === 'None') return { k: 'const', value: { type: 'none' } };
    // Python folds identifiers with NFKC, so a full-width `ｓｅｔ()` is set() too.
    if (id.normalize('NFKC') === 'set' && this.peekOp('(') && this.tokens[this.i + 1]?.t === 'op'
      && (this.tokens[this.i + 1] as { text: string }).text === ')') {
      this.i += 2;
      return { k: 'emptySet' };
    }
    return { k: 'name', id };
  }

  private bracketed(open: string): Node {
    if (open === '...') return { k: 'const', value: { type: 'ellipsis' } };
    if (open === '(') {
      if (this.takeOp(')')) return { k: 'tuple', items: [] };
      const inner = this.expressionList();
      this.expectOp(')');
      return inner;
    }
    if (open === '[') return { k: 'list', items: this.items(']') };
    if (open === '{') return this.braces();
    throw new NotLiteral(`unexpected ${open}`);
  }

  /** `a, b, c,` up to the closing bracket. */
  private items(close: string): Node[] {
    const items: Node[] = [];
    while (!this.takeOp(close)) {
      items.push(this.sum());
      if (!this.takeOp(',')) {
        this.expectOp(close);
        break;
      }
    }
    return items;
  }

  private braces(): Node {
    if (this.takeOp('}')) return { k: 'dict', keys: [], values: [] };
    const first = this.sum();
    if (!this.takeOp(':')) {
      if (this.takeOp('}')) return { k: 'set', items: [first] };
      this.expectOp(',');
      return { k: 'set', items: [first, ...this.items('}')] };
    }
    const keys = [first];
    const values = [this.sum()];
    while (this.takeOp(',') && !this.peekOp('}')) {
      keys.push(this.sum());
      this.expectOp(':');
      values.push(this.sum());
    }
    this.expectOp('}');
    return { k: 'dict', keys, values };
  }
}

/** ast.literal_eval's _convert, in its order: a malformed node is NotLiteral when reached. */
function convert(node: Node): PyValue {
  switch (node.k) {
    case 'const': return node.value;
    case 'tuple': case 'list': return { type: node.k, items: node.items.map(convert) };
    case 'set': return { type: 'set', items: node.items.map((n) => hashable(convert(n))) };
    case 'emptySet': return { type: 'set', items: [] };
    case 'dict': return { type: 'dict', entries: node.keys.map((k, i) => {
      const key = convert(k);
      const value = convert(node.values[i]!);
      return [hashable(key), value] as [PyValue, PyValue];
    }) };
    case 'binop': return complexSum(node) ?? signedNumber(node);
    default: return signedNumber(node);
  }
}

/** `real ± imaginary`: the only operation literal_eval allows. */
function complexSum(node: Node & { k: 'binop' }): PyValue | undefined {
  const left = signedNumber(node.left);
  const right = number(node.right);
  return (left.type === 'int' || left.type === 'float') && right.type === 'complex' ? { type: 'complex' } : undefined;
}

function signedNumber(node: Node): PyValue {
  if (node.k !== 'unary') return number(node);
  const operand = number(node.operand);
  if (node.op === '+') return operand;
  if (operand.type === 'int') return { type: 'int', value: -operand.value };
  if (operand.type === 'float') return { type: 'float', value: -operand.value };
  return operand;
}

function number(node: Node): PyValue {
  if (node.k === 'const' && (node.value.type === 'int' || node.value.type === 'float' || node.value.type === 'complex')) return node.value;
  throw new NotLiteral('malformed node or string');
}

/** set members and dict keys must be hashable, or Python raises TypeError (which Ansible does not catch). */
function hashable(value: PyValue): PyValue {
  const ok = (v: PyValue): boolean => v.type === 'tuple' ? v.items.every(ok) : v.type !== 'list' && v.type !== 'dict' && v.type !== 'set';
  if (!ok(value)) throw new LiteralTypeError(`unhashable type: '${value.type}'`);
  return value;
}
