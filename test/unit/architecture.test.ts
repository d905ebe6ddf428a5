// The layout rules of SPEC 8 and STYLE, checked on the source itself so they cannot rot: the
// engine (src/) knows nothing of the PEM job (tasks/) — bin/ hands the job in — and no function
// grows past what a reader can hold at once. Both read the files with the TypeScript compiler,
// so a specifier or a brace inside a string or a comment never fools them.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAX_FUNCTION_LINES = 60;

/** Every .ts file under `dir` (relative to the repository), sorted so failures read the same each run. */
function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
}

/** Every module a file names: import/export … from, import x = require(…), import(…) and import type. */
function moduleSpecifiers(source: ts.SourceFile): string[] {
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      found.push(n.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)
      && ts.isStringLiteral(n.moduleReference.expression)) {
      found.push(n.moduleReference.expression.text);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword
      && n.arguments[0] && ts.isStringLiteralLike(n.arguments[0])) {
      found.push(n.arguments[0].text);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      found.push(n.argument.literal.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(source);
  return found;
}

/** Whether a specifier written in `file` points into tasks/ (only paths can: there are no aliases). */
function reachesTasks(file: string, specifier: string): boolean {
  if (!specifier.startsWith('.') && !isAbsolute(specifier)) return false;
  const target = relative(join(ROOT, 'tasks'), resolve(ROOT, dirname(file), specifier));
  return target === '' || (!target.startsWith('..') && !isAbsolute(target));
}

type FunctionNode = ts.FunctionLikeDeclaration;

function isFunction(n: ts.Node): n is FunctionNode {
  return ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n)
    || ts.isGetAccessorDeclaration(n) || ts.isSetAccessorDeclaration(n) || ts.isConstructorDeclaration(n);
}

/** The name a reader would search for: the declaration's own, else what it is assigned to. */
function functionName(n: FunctionNode, source: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(n)) return 'constructor';
  if (n.name) return n.name.getText(source);
  const p = n.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(source);
  return '<anonymous>';
}

/** Functions longer than the limit, as `file:line name length`; the lines counted run from the keyword (or parameter list) to the closing brace. */
function longFunctions(file: string): string[] {
  const source = parse(file);
  const long: string[] = [];
  const visit = (n: ts.Node): void => {
    if (isFunction(n)) {
      const first = source.getLineAndCharacterOfPosition(n.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(n.getEnd()).line;
      const length = last - first + 1;
      if (length > MAX_FUNCTION_LINES) long.push(`${file}:${first + 1} ${functionName(n, source)} ${length}`);
    }
    ts.forEachChild(n, visit);
  };
  visit(source);
  return long;
}

test('the engine in src/ imports nothing from tasks/ (the job is handed in by bin/)', (t) => {
  const files = sourceFiles('src');
  t.true(files.length > 0);
  const offending = files.flatMap((file) => moduleSpecifiers(parse(file))
    .filter((specifier) => reachesTasks(file, specifier))
    .map((specifier) => `${file} imports '${specifier}'`));
  t.deepEqual(offending, [], `src/ must not import from tasks/:\n${offending.join('\n')}`);
});

test(`no function in src/ or tasks/ is longer than ${MAX_FUNCTION_LINES} lines`, (t) => {
  const files = [...sourceFiles('src'), ...sourceFiles('tasks')];
  const long = files.flatMap(longFunctions);
  t.deepEqual(long, [], `split these functions (file:line name length):\n${long.join('\n')}`);
});

test('the import check sees through relative paths, and only paths', (t) => {
  t.true(reachesTasks(`src${sep}commands${sep}deploy.ts`, '../../tasks/job.ts'));
  t.true(reachesTasks(`src${sep}cli.ts`, '../tasks'));
  t.false(reachesTasks(`src${sep}cli.ts`, './tasks.ts'));
  t.false(reachesTasks(`src${sep}cli.ts`, '../tasks-old/x.ts'));
  t.false(reachesTasks(`src${sep}cli.ts`, 'tasks'));
});
