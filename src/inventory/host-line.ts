// A line in a [group] section: `name[:port] key=value ...`, split as shlex does, the name
// expanded as Ansible's _expand_hostpattern does. As in Ansible, a port applies when a host is
// first defined (a later `web2:2022` of a known host leaves its port alone), and inline
// variables are set after it, so `web1:2222 ansible_port=2200` uses 2200.
// Unlike Ansible, which lets the last definition win, a host defined again with a different
// value for the same variable is an error naming both lines.

import { isSecretVar } from '../secrets.ts';
import { expandHostPattern, HostRangeError } from './hostpattern.ts';
import { addGroup, fail, type ParseState } from './model.ts';
import { shlexSplit, ShlexError } from './shlex.ts';
import { emptyVars, parseValue, sameValue, UnsupportedValue, type Vars, type VarValue } from './values.ts';

export function parseHostLine(st: ParseState, line: string, lineNo: number): void {
  let tokens: string[];
  try {
    tokens = shlexSplit(line);
  } catch (e) {
    if (e instanceof ShlexError) return fail(st, lineNo, `cannot parse host line: ${e.message}`);
    throw e;
  }
  const [word, ...assignments] = tokens;
  if (word === undefined) return;
  let expanded: { names: string[]; port?: number };
  try {
    expanded = expandHostPattern(word);
  } catch (e) {
    if (!(e instanceof HostRangeError)) throw e;
    const hint = word.startsWith('[') && !word.includes(']') ? ` (a section header needs its closing "]")` : '';
    return fail(st, lineNo, e.message + hint);
  }
  const vars = parseAssignments(st, assignments, lineNo);
  if (!vars) return;
  for (const name of expanded.names) defineHost(st, name, expanded.port, vars, lineNo);
}

/** `key=value` words, each value read as Ansible reads it; undefined after reporting a bad one. */
function parseAssignments(st: ParseState, words: string[], lineNo: number): Vars | undefined {
  const vars = emptyVars();
  let ok = true;
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      fail(st, lineNo, `expected key=value host variable, got "${word}"`);
      ok = false;
      continue;
    }
    try {
      vars[word.slice(0, eq)] = parseValue(word.slice(eq + 1));
    } catch (e) {
      if (!(e instanceof UnsupportedValue)) throw e;
      fail(st, lineNo, `variable ${word.slice(0, eq)}: ${e.message}`);
      ok = false;
    }
  }
  return ok ? vars : undefined;
}

function defineHost(st: ParseState, name: string, port: number | undefined, vars: Vars, lineNo: number): void {
  let host = st.inv.hosts.get(name);
  if (!host) {
    host = { name, line: lineNo, vars: emptyVars(), varLines: {} };
    st.inv.hosts.set(name, host);
    // Ansible's Host(name, port) sets the port only when it is not 0.
    if (port) setHostVar(st, name, 'ansible_port', port, lineNo);
  }
  const group = addGroup(st.inv, st.group);
  if (!group.hosts.includes(name)) group.hosts.push(name);
  for (const [key, value] of Object.entries(vars)) setHostVar(st, name, key, value, lineNo);
}

function setHostVar(st: ParseState, name: string, key: string, value: VarValue, lineNo: number): void {
  const host = st.inv.hosts.get(name)!;
  const before = host.varLines[key];
  if (before !== undefined && before !== lineNo && !sameValue(host.vars[key], value)) {
    return fail(st, lineNo, `host ${name} is defined again with ${key}=${show(key, value)}, ` +
      `conflicting with ${key}=${show(key, host.vars[key])} on line ${before}`);
  }
  host.vars[key] = value;
  host.varLines[key] = lineNo;
}

/** A value for a message; one that looks like a secret is not shown. */
function show(key: string, value: VarValue | undefined): string {
  if (isSecretVar(key)) return '(hidden)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
