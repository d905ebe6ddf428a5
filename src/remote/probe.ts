// Small read-only questions to a host: which programs are there, and whether a user can read a
// file. Each is an operation like any other, so it can share a round trip through `batch`.

import { OpError, failure, type RemoteOp } from './op.ts';
import { shellQuote } from './shell.ts';

/** Where each program is on PATH, or undefined. */
export function whichCommands(names: string[]): RemoteOp<Record<string, string | undefined>> {
  return {
    script: names.map((n) => `printf '%s %s\\n' ${shellQuote(n)} "$(command -v ${shellQuote(n)} 2>/dev/null || echo -)"`).join('\n'),
    read(out) {
      if (out.code !== 0) throw new OpError(failure(out, 'looking up programs'), out.code);
      const found: Record<string, string | undefined> = {};
      for (const line of out.stdout.split('\n')) {
        const at = line.indexOf(' ');
        if (at > 0) found[line.slice(0, at)] = line.slice(at + 1) === '-' ? undefined : line.slice(at + 1);
      }
      return found;
    },
  };
}

/** yes/no; 'no-user' when the user does not exist; 'unchecked' when only root could tell. */
export type CanRead = 'yes' | 'no' | 'no-user' | 'unchecked';

export function canRead(user: string, path: string): RemoteOp<CanRead> {
  const u = shellQuote(user);
  const f = shellQuote(path);
  return {
    script: [
      `if ! id -u ${u} >/dev/null 2>&1; then echo no-user`,
      `elif [ "$(id -un)" = ${u} ]; then if [ -r ${f} ]; then echo yes; else echo no; fi`,
      `elif [ "$(id -u)" = 0 ]; then if runuser -u ${u} -- test -r ${f}; then echo yes; else echo no; fi`,
      // Without root, sudo -n may still be allowed to ask (it never prompts here).
      `elif sudo -n -u ${u} test -r ${f} 2>/dev/null; then echo yes`,
      'else echo unchecked; fi',
    ].join('\n'),
    read(out) {
      const answer = out.stdout.trim();
      if (answer === 'yes' || answer === 'no' || answer === 'no-user' || answer === 'unchecked') return answer;
      throw new OpError(failure(out, 'the readability check'), out.code);
    },
  };
}
