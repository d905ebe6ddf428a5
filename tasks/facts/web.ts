// Facts of one web host (SPEC 4 stage 1), in one round trip as the become user: config_local.py
// (bytes, owner, mode, where a link leads), config.py's owner (a new file takes it), and whether
// python3 is there to check the new file compiles.

import { OpError, batch, nothing, readOp, type Output, type RemoteOp } from '../../src/remote/op.ts';
import { whichCommands } from '../../src/remote/probe.ts';
import { readFiles, type FileFact } from '../../src/remote/read-files.ts';
import { shellQuote } from '../../src/remote/shell.ts';
import type { WebSettings } from '../settings.ts';

export interface WebFacts {
  file: FileFact;
  configPy: FileFact;
  python3: boolean;
  /** The web app's libpq (PQlibVersion), asked of pem_web_python; undefined when not known. */
  libpq?: number;
  /** pem_db_passfile as it is now. */
  passfile?: FileFact;
}

const LIBPQ_VERSION = `import sys
try:
    import psycopg
    print(psycopg.pq.version())
except Exception:
    import psycopg2
    print(psycopg2.extensions.libpq_version())`;

/** The libpq version the web app's Python links, or undefined when it cannot tell. */
export function libpqVersionOp(python: string): RemoteOp<number | undefined> {
  return {
    script: `py=${shellQuote(python)}; command -v "$py" >/dev/null 2>&1 || exit 0\n"$py" -c ${shellQuote(LIBPQ_VERSION)} 2>/dev/null || exit 0`,
    read: (out) => (/^\d{5,6}$/.test(out.stdout.trim()) ? Number(out.stdout.trim()) : undefined),
  };
}

export function configPyPath(configLocal: string): string {
  return `${configLocal.replace(/\/[^/]*$/, '') || ''}/config.py`;
}

export function webFactsOp(w: WebSettings): RemoteOp<WebFacts> {
  const files = [{ path: w.configLocal }, { path: configPyPath(w.configLocal), content: false }, ...(w.dbPassfile ? [{ path: w.dbPassfile }] : [])];
  // pem_web_python costs a Python start: asked only when the operator named it.
  const op = batch(readFiles(files), whichCommands(['python3']), w.webPython ? libpqVersionOp(w.webPython) : nothing);
  return {
    script: op.script,
    read(out) {
      const [[file, configPy, passfile], programs, libpq] = op.read(out);
      if (file!.state === 'special') throw new OpError(`${w.configLocal} is not a regular file`, undefined, 'check pem_config_local');
      // Planned as a new file, it would fail at the write, every run: the path is taken (by the link).
      if (file!.state === 'dangling') {
        throw new OpError(`${w.configLocal} is a symbolic link to a file that does not exist`, undefined, 'create the file it points to (it is edited where the link leads), or remove the link');
      }
      if (file!.state === 'unreadable') throw new OpError(`${w.configLocal} is not readable by the SSH user`, undefined, 'set ansible_become so the file is read as root');
      return { file: file!, configPy: configPy!, python3: programs['python3'] !== undefined, ...(libpq !== undefined ? { libpq } : {}), ...(passfile ? { passfile } : {}) };
    },
  };
}


/** The facts from an opened session's output, or the host's failure in the operator's words. */
export function readWebFacts(host: string, w: WebSettings, out: Output): WebFacts {
  return readOp(host, 'facts', webFactsOp(w), out);
}
