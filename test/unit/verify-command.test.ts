import test from 'ava';
import { fileURLToPath } from 'node:url';
import { InventoryError, UsageError } from '../../src/errors.ts';
import { verifyCommand } from '../../src/commands/verify.ts';
import { pemJob } from '../../tasks/job.ts';

const SITE = fileURLToPath(new URL('../fixtures/inventory/ansible-site.ini', import.meta.url));
const BROKEN = fileURLToPath(new URL('../fixtures/inventory/broken.ini', import.meta.url));
const io = { stdout: () => {}, stderr: () => {}, isTTY: false };
const opts = { inventory: SITE, forks: '50', connectTimeout: '10' };
const PASSWORD = 'a-long-enough-password';

/** Starts verify with the given PEM_SETTINGS_PASSWORD. Validation runs before verify's first
 *  await, so the environment is restored before any other test can look at it. */
function startVerify(o: Parameters<typeof verifyCommand>[1], password: string | undefined): Promise<number> {
  const saved = process.env['PEM_SETTINGS_PASSWORD'];
  if (password === undefined) delete process.env['PEM_SETTINGS_PASSWORD'];
  else process.env['PEM_SETTINGS_PASSWORD'] = password;
  try {
    return verifyCommand(pemJob, o, io);
  } finally {
    if (saved === undefined) delete process.env['PEM_SETTINGS_PASSWORD'];
    else process.env['PEM_SETTINGS_PASSWORD'] = saved;
  }
}

// Each of these is an operator mistake (exit 2) found before any host is contacted.
const mistakes: [string, Parameters<typeof verifyCommand>[1], string | undefined, new (...a: never[]) => Error, RegExp][] = [
  ['a --forks that is not a positive number', { ...opts, forks: '0' }, PASSWORD, UsageError, /--forks must be a positive number/],
  ['a --connect-timeout that is not a number', { ...opts, connectTimeout: 'soon' }, PASSWORD, UsageError, /--connect-timeout must be a positive number/],
  ['no PEM_SETTINGS_PASSWORD: drift cannot be judged without it', opts, undefined, UsageError, /PEM_SETTINGS_PASSWORD is not set/],
  ['a --limit that matches no host', { ...opts, limit: 'nosuchhost*' }, PASSWORD, UsageError, /matches no host/],
  ['a broken inventory, with its file and line', { ...opts, inventory: BROKEN }, PASSWORD, InventoryError, /broken\.ini:\d+:/],
];
for (const [name, o, password, type, message] of mistakes) {
  test(`verify refuses ${name} before connecting`, async (t) => {
    const err = await t.throwsAsync(startVerify(o, password), { instanceOf: type });
    t.regex(err!.message, message);
  });
}
