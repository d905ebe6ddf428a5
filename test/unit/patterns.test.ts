import test from 'ava';
import { UsageError } from '../../src/errors.ts';
import { parseInventory, selectHosts, splitPattern } from '../../src/inventory/index.ts';

const inventory = parseInventory(`
[backends]
pg-primary
pg-standby
[webhosts]
web-1
web-2
web-3
web-10
[canary]
web-2
[outsiders]
outsider
[site:children]
backends
webhosts
`, 'lab.ini');

const select = (pattern: string, files: Record<string, string> = {}) =>
  selectHosts(inventory, pattern, { cwd: '/r', readFile: (p) => {
    if (!(p in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    return files[p]!;
  } });

test('selects hosts by Ansible pattern, in inventory order', (t) => {
  const cases: [string, string[]][] = [
    ['all', ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3', 'web-10', 'outsider']],
    ['*', ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3', 'web-10', 'outsider']],
    ['web-2', ['web-2']],
    ['backends', ['pg-primary', 'pg-standby']],
    ['site', ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3', 'web-10']],
    ['web-1*', ['web-1', 'web-10']],
    ['web-?', ['web-1', 'web-2', 'web-3']],
    ['pg-*', ['pg-primary', 'pg-standby']],
    ['web*', ['web-1', 'web-2', 'web-3', 'web-10']],
    ['~web-\\d$', ['web-1', 'web-2', 'web-3']],
    ['~(pg|web)-1', ['web-1', 'web-10']],
    ['web-3,pg-primary', ['pg-primary', 'web-3']],
    ['web-3:pg-primary', ['pg-primary', 'web-3']],
    ['webhosts:!web-2', ['web-1', 'web-3', 'web-10']],
    ['webhosts,!canary', ['web-1', 'web-3', 'web-10']],
    ['site:&webhosts', ['web-1', 'web-2', 'web-3', 'web-10']],
    ['webhosts:&canary', ['web-2']],
    ['!webhosts', ['pg-primary', 'pg-standby', 'outsider']],
    ['&backends', ['pg-primary', 'pg-standby']],
    ['!backends:webhosts', ['web-1', 'web-2', 'web-3', 'web-10']],
    ['webhosts[0]', ['web-1']],
    ['webhosts[-1]', ['web-10']],
    ['webhosts[1:2]', ['web-2', 'web-3']],
    ['webhosts[2:]', ['web-3', 'web-10']],
    [' web-1 , web-2 ', ['web-1', 'web-2']],
  ];
  for (const [pattern, want] of cases) t.deepEqual(select(pattern), want, pattern);
});

test('@retryfile selects the hosts it lists, one a line, relative to the current directory', (t) => {
  t.deepEqual(select('@lab.retry', { '/r/lab.retry': 'web-3\npg-standby\n\n' }), ['pg-standby', 'web-3']);
  t.deepEqual(select('@/abs/x.retry:!web-3', { '/abs/x.retry': 'web-3\r\nweb-1\r\n' }), ['web-1']);
});

test('a pattern term that matches nothing is an error naming the closest names', (t) => {
  const err = t.throws(() => select('web-20'), { instanceOf: UsageError });
  t.regex(err!.message, /"web-20" matches no host; did you mean "web-2", "web-10", "web-1"\?/);
  t.regex(t.throws(() => select('bakends'))!.message, /did you mean "backends"/);
  t.regex(t.throws(() => select('webhosts:&backends:nothere'))!.message, /"nothere" matches no host/);
  t.regex(t.throws(() => select('zzz*'))!.message, /"zzz\*" matches no host$/);
  t.regex(t.throws(() => select('~('))!.message, /not a valid regular expression/);
  t.regex(t.throws(() => select('@missing.retry'))!.message, /cannot read \/r\/missing.retry: ENOENT/);
  t.regex(t.throws(() => select('@empty', { '/r/empty': '\n' }))!.message, /lists no hosts/);
  t.regex(t.throws(() => select(' , '))!.message, /no host pattern/);
});

test('patterns split like Ansible: commas first, else colons outside brackets', (t) => {
  t.deepEqual(splitPattern('a:b:!c'), ['a', 'b', '!c']);
  t.deepEqual(splitPattern('a:b,c'), ['a:b', 'c']);
  t.deepEqual(splitPattern('web[1:2]:db'), ['web[1:2]', 'db']);
  t.deepEqual(splitPattern('2001:db8::1'), ['2001:db8::1']);
});
