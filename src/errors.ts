// Error types that decide the exit status (SPEC 2): operator mistakes are typed and print as
// one line; anything else is an internal error and prints with its stack.

/** Bad command line or settings: nothing was touched. Exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A problem in the inventory, with the file and line it comes from. Exit 2. */
export class InventoryError extends Error {
  override name = 'InventoryError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
  }
}

/** Several problems found while validating, reported together (STYLE 8). Exit 2. */
export class ProblemsError extends Error {
  override name = 'ProblemsError';
  constructor(readonly problems: Error[]) {
    super(problems.map((p) => p.message).join('\n'));
  }
}

/**
 * A file we parse (pg_hba.conf, config_local.py) that cannot be read, with the 1-based line.
 * The message never quotes the line: it may hold a password.
 */
export class LineParseError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

/** A step failed on one host: that host is failed, the run goes on per SPEC 4. Exit 1. */
export class HostError extends Error {
  override name = 'HostError';
  constructor(
    readonly host: string,
    readonly step: string,
    readonly reason: string,
    readonly hint?: string,
  ) {
    super(`${host}: ${step}: ${reason}${hint ? ` (${hint})` : ''}`);
  }
}

/** The host could not be reached or authenticated over SSH. */
export class UnreachableError extends HostError {
  override name = 'UnreachableError';
}

export function isOperatorError(e: unknown): e is UsageError | InventoryError | ProblemsError {
  return e instanceof UsageError || e instanceof InventoryError || e instanceof ProblemsError;
}
