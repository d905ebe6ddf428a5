// Parsing CONFIG_DATABASE_URI with the web app's own Python on the web host (SPEC 5), as a fact:
// `parserScript` is the shell script that runs it, `parseParserOutput` the pure reading of its
// output. The web app (pgAdmin 4) rewrites postgres:// and postgresql:// to
// postgresql+psycopg:// and gives the URI to SQLAlchemy 2; the script does exactly that, like
// shared/webapp-consumer/consumer.py. The Python program and the URI both travel inside the
// script that goes to `sh -s` on standard input (here-documents on fd 3 and 0): the URI carries
// the password and must never be on a command line.

import { shellQuote } from '../../src/remote/shell.ts';

const PYTHON = String.raw`import base64, json, re, sys
def out(**kw):
    print(json.dumps(kw, ensure_ascii=False, sort_keys=True, default=str))
    sys.exit(0)
try:
    import sqlalchemy as sa
except Exception as e:
    out(status="no-sqlalchemy", python=sys.executable, error="%s: %s" % (type(e).__name__, e))
uri = base64.b64decode(sys.stdin.read()).decode("utf-8")
uri = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", uri)
try:
    engine = sa.create_engine(sa.engine.make_url(uri))
    _, kwargs = engine.dialect.create_connect_args(engine.url)
except Exception as e:
    out(status="rejected", python=sys.executable, sqlalchemy=getattr(sa, "__version__", "?"), error="%s: %s" % (type(e).__name__, e))
kwargs.pop("context", None)
kwargs["password"] = "********" if kwargs.get("password") else None
try:
    import psycopg
    libpq = psycopg.pq.version()
except Exception:
    libpq = None
out(status="parsed", python=sys.executable, sqlalchemy=sa.__version__, args=kwargs, libpq=libpq)
`;

/**
 * The script that runs the parser: `pem_web_python` when given, else python3 from PATH (which
 * counts only if it can import sqlalchemy). Prints one JSON line, or `#no-python`.
 */
export function parserScript(uri: string, webPython?: string): string {
  const encoded = Buffer.from(uri, 'utf8').toString('base64');
  const pick = webPython
    ? `py=${shellQuote(webPython)}\ncommand -v "$py" >/dev/null 2>&1 || { echo "#missing $py"; exit 0; }`
    : 'py=$(command -v python3 2>/dev/null) || { echo "#no-python"; exit 0; }';
  return [
    pick,
    // fd 3 carries the program, standard input the base64 URI: neither is an argument.
    `"$py" /dev/fd/3 3<<'PEMS_PY' <<'PEMS_URI'`,
    PYTHON + 'PEMS_PY',
    encoded,
    'PEMS_URI',
    '',
  ].join('\n');
}

export type ParserVerdict =
  /** `libpq`: the version the web app's psycopg links (PQlibVersion), when it tells. */
  | { status: 'parsed'; python: string; sqlalchemy: string; args: Record<string, unknown>; libpq?: number }
  | { status: 'rejected'; python: string; sqlalchemy: string; error: string }
  /** No parser to ask: a warning (the operator did not say which Python the web app uses). */
  | { status: 'unavailable'; reason: string }
  /** pem_web_python was given but cannot serve as the web app's parser: a failure. */
  | { status: 'broken'; reason: string };

export function parseParserOutput(stdout: string, stderr: string, code: number, webPython?: string): ParserVerdict {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  if (line === '#no-python') return { status: 'unavailable', reason: 'no python3 on the host and pem_web_python is not set' };
  if (line.startsWith('#missing ')) return { status: 'broken', reason: `pem_web_python ${line.slice(9)} is not an executable on the host` };
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(line) as Record<string, unknown>;
  } catch {
    const why = stderr.trim().split('\n').at(-1) || `exit status ${code}`;
    return webPython
      ? { status: 'broken', reason: `pem_web_python ${webPython} did not run the parser: ${why}` }
      : { status: 'unavailable', reason: `python3 on the host did not run the parser: ${why}` };
  }
  const python = String(doc['python'] ?? webPython ?? 'python3');
  if (doc['status'] === 'no-sqlalchemy') {
    const reason = `${python} cannot import sqlalchemy (${String(doc['error'])})`;
    return webPython ? { status: 'broken', reason: `pem_web_python: ${reason}` } : { status: 'unavailable', reason: `${reason}; set pem_web_python to the web app's Python` };
  }
  const sqlalchemy = String(doc['sqlalchemy'] ?? '?');
  if (doc['status'] === 'rejected') return { status: 'rejected', python, sqlalchemy, error: String(doc['error']) };
  if (doc['status'] === 'parsed' && doc['args'] && typeof doc['args'] === 'object') {
    const libpq = typeof doc['libpq'] === 'number' ? doc['libpq'] : undefined;
    return { status: 'parsed', python, sqlalchemy, args: doc['args'] as Record<string, unknown>, ...(libpq !== undefined ? { libpq } : {}) };
  }
  return { status: 'broken', reason: `the parser printed something unexpected` };
}
