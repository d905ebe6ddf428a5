// Where a command writes: the terminal in real use, a buffer in tests. Its own module, so the
// commands and the entry point that dispatches to them never import each other.

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stdout.isTTY) && !process.env['CI'],
};
