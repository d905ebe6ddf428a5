// Python's shlex.split(line, comments=True) in POSIX mode, which Ansible uses for host lines.
// Only ' \t\r\n' separate words (not every Unicode space); quotes group and may sit mid-word;
// inside "..." a backslash escapes only `"` and `\` and is otherwise kept; `#` starts a comment
// even in the middle of a word. Error messages are Python's.

export class ShlexError extends Error {}

const WHITESPACE = ' \t\r\n';

interface Word {
  text: string;
  /** A quote was seen: an empty word ('' or "") still counts. */
  quoted: boolean;
}

/** `comments: false` for option strings (ansible_ssh_common_args), where `#` is an ordinary character. */
export function shlexSplit(line: string, { comments = true } = {}): string[] {
  const words: string[] = [];
  let word: Word | undefined;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (WHITESPACE.includes(c)) {
      if (word) words.push(word.text);
      word = undefined;
      i++;
    } else if (c === '#' && comments) {
      break;
    } else {
      word ??= { text: '', quoted: false };
      i = readWordPart(line, i, word);
    }
  }
  if (word && (word.text !== '' || word.quoted)) words.push(word.text);
  return words;
}

/** Reads one quoted run, escape or plain character into word; returns the next index. */
function readWordPart(line: string, i: number, word: Word): number {
  const c = line[i]!;
  if (c === "'") {
    const end = line.indexOf("'", i + 1);
    if (end < 0) throw new ShlexError('No closing quotation');
    word.text += line.slice(i + 1, end);
    word.quoted = true;
    return end + 1;
  }
  if (c === '"') return readDoubleQuoted(line, i + 1, word);
  if (c === '\\') {
    if (i + 1 >= line.length) throw new ShlexError('No escaped character');
    word.text += line[i + 1];
    return i + 2;
  }
  word.text += c;
  return i + 1;
}

function readDoubleQuoted(line: string, start: number, word: Word): number {
  let i = start;
  word.quoted = true;
  while (i < line.length) {
    const d = line[i]!;
    if (d === '"') return i + 1;
    if (d === '\\') {
      if (i + 1 >= line.length) throw new ShlexError('No escaped character');
      const next = line[i + 1]!;
      word.text += next === '"' || next === '\\' ? next : d + next;
      i += 2;
      continue;
    }
    word.text += d;
    i++;
  }
  throw new ShlexError('No closing quotation');
}
