import test from 'ava';
import { readFileSync } from 'node:fs';
import { InventoryError, ProblemsError } from '../../src/errors.ts';
import { parseInventory, resolveHost, resolveAll, asBoolean } from '../../src/inventory/index.ts';
import { expandHostRange } from '../../src/inventory/ranges.ts';
import { parseValue } from '../../src/inventory/values.ts';

const inv = (text: string) => parseInventory(text, 'test.ini');
const vars = (text: string, host: string) => resolveHost(inv(text), host).vars;

function problemsOf(text: string): InventoryError[] {
  try {
    parseInventory(text, 'bad.ini');
  } catch (e) {
    if (e instanceof InventoryError) return [e];
    if (e instanceof ProblemsError) return e.problems as InventoryError[];
    throw e;
  }
  throw new Error('expected the inventory to be rejected');
}

test('a real Ansible site inventory resolves hosts, groups and variables as Ansible does', (t) => {
  const site = parseInventory(readFileSync('test/fixtures/inventory/ansible-site.ini', 'utf8'), 'site.ini');
  const hosts = resolveAll(site);
  t.deepEqual(hosts.map((h) => h.name), [
    'bastion.example.com', 'pem-db1.example.com', 'pem-db2.example.com', 'pem-db3.example.com',
    'web01.example.com', 'web02.example.com', 'web03.example.com', 'web04.example.com', 'web-canary.example.com',
  ]);
  const db2 = resolveHost(site, 'pem-db2.example.com');
  t.deepEqual(db2.groups, ['all', 'backends', 'pem_standbys', 'site']);
  t.is(db2.vars['pg_port'], 5444, 'host var beats every group var, and is a number');
  t.is(db2.vars['ansible_user'], 'ops', 'all:vars applies where nothing closer sets it');
  t.is(db2.vars['ansible_ssh_common_args'], '-o ProxyJump=bastion.example.com');
  t.is(db2.vars['pem_settings_db'], 'pem_user_settings', 'quotes are removed');
  const web = resolveHost(site, 'web03.example.com');
  t.is(web.vars['pg_port'], 5432, 'parent group var beats all:vars');
  t.is(web.vars['ansible_user'], 'deploy', 'child group var beats parent and all');
  t.is(asBoolean(web.vars['ansible_become']), true);
  const canary = resolveHost(site, 'web-canary.example.com');
  t.is(canary.vars['ansible_port'], 2222);
  t.is(canary.vars['ansible_user'], 'deploy user');
  t.is(canary.vars['pem_web_restart'], 'systemctl restart httpd');
  t.deepEqual(resolveHost(site, 'bastion.example.com').groups, ['all', 'ungrouped']);
});

test('precedence: host > child group > parent group > all, siblings by priority then name', (t) => {
  const text = `
[all:vars]
v=all
[parent:children]
child
[parent:vars]
v=parent
[child]
h1
h2 v=host
[child:vars]
v=child
[zeta]
h1
[zeta:vars]
w=zeta
[alpha]
h1
[alpha:vars]
w=alpha
u=alpha
[beta]
h1
[beta:vars]
u=beta
ansible_group_priority=0
`;
  t.is(vars(text, 'h1')['v'], 'child');
  t.is(vars(text, 'h2')['v'], 'host');
  t.is(vars(text, 'h1')['w'], 'zeta', 'same depth: alphabetical, later wins');
  t.is(vars(text, 'h1')['u'], 'alpha', 'lower ansible_group_priority loses');
  const only = inv('[g]\nh\n[parent:children]\ng\n[parent:vars]\nv=p\n[all:vars]\nv=a');
  t.is(resolveHost(only, 'h').vars['v'], 'p');
});

test('nested children: a host of a grandchild group is in every ancestor', (t) => {
  const i = inv('[a:children]\nb\n[b:children]\nc\n[c]\nh\n[a:vars]\nx=1\n');
  t.deepEqual(resolveHost(i, 'h').groups, ['a', 'all', 'b', 'c']);
  t.is(resolveHost(i, 'h').vars['x'], 1);
});

test('a host in several groups gets vars from all of them', (t) => {
  const v = vars('[a]\nh\n[b]\nh\n[a:vars]\nx=1\n[b:vars]\ny=2\n', 'h');
  t.deepEqual(v, { x: 1, y: 2 });
});

test('host ranges expand like Ansible (leading zeros, letters, steps)', (t) => {
  t.deepEqual(expandHostRange('web[01:03].example.com'), ['web01.example.com', 'web02.example.com', 'web03.example.com']);
  t.deepEqual(expandHostRange('db-[a:c]'), ['db-a', 'db-b', 'db-c']);
  t.deepEqual(expandHostRange('n[1:10:3]'), ['n1', 'n4', 'n7', 'n10']);
  t.deepEqual(expandHostRange('r[1:2]c[a:b]'), ['r1ca', 'r1cb', 'r2ca', 'r2cb']);
  t.deepEqual(expandHostRange('x[:2]'), ['x0', 'x1', 'x2']);
  const i = inv('[web]\nweb[1:3] ansible_user=u\n');
  t.deepEqual([...i.hosts.keys()], ['web1', 'web2', 'web3']);
  t.is(resolveHost(i, 'web2').vars['ansible_user'], 'u');
});

test('values keep the types Ansible gives them', (t) => {
  const cases: [string, unknown][] = [
    ['5432', 5432], ['-1', -1], ['0x10', 16], ['1.5', 1.5], ['True', true], ['False', false], ['None', null],
    ['yes', 'yes'], ['true', 'true'], ['"quoted value"', 'quoted value'], ["'single'", 'single'],
    ['0755', '0755'], ['a b # not a comment', 'a b # not a comment'], ['"a\\"b"', 'a"b'], ['10.0.0.0/24', '10.0.0.0/24'],
    ['', ''],
  ];
  for (const [raw, want] of cases) t.deepEqual(parseValue(raw), want, raw);
  for (const yes of ['true', 'yes', 'True', 1, '1', 'on', true]) t.true(asBoolean(yes as never), String(yes));
  for (const no of ['false', 'no', 0, '0', false]) t.false(asBoolean(no as never), String(no));
});

test('inline vars: quoted values with spaces and # comments after the host', (t) => {
  const i = inv(`[web]\nw1 a="x y" b='p q' c=plain # comment d=not\nw2 e=1#comment\n`);
  t.deepEqual(i.hosts.get('w1')!.vars, { a: 'x y', b: 'p q', c: 'plain' });
  t.deepEqual(i.hosts.get('w2')!.vars, { e: 1 });
});

test('host:port sets ansible_port; IPv6 hosts keep their colons', (t) => {
  const i = inv('[g]\nh1:2200\n[g2]\n2001:db8::1\n[2001:db8::2]:2201\n');
  t.is(i.hosts.get('h1')!.vars['ansible_port'], 2200);
  t.true(i.hosts.has('2001:db8::1'));
  t.is(i.hosts.get('2001:db8::2')!.vars['ansible_port'], 2201);
});

test('implicit groups: all holds every host, ungrouped those in no group', (t) => {
  const i = inv('lonely\n[g]\nh\n');
  t.deepEqual(i.groups.get('ungrouped')!.hosts, ['lonely']);
  t.true(i.groups.get('all')!.children.includes('g'));
  t.deepEqual(resolveHost(i, 'h').groups, ['all', 'g']);
});

test('a CRLF inventory with a BOM parses the same as LF', (t) => {
  const lf = inv('[g]\nh a=1\n[g:vars]\nb=2\n');
  const crlf = inv('\uFEFF[g]\r\nh a=1\r\n[g:vars]\r\nb=2\r\n');
  t.deepEqual(resolveHost(crlf, 'h'), resolveHost(lf, 'h'));
});

test('every inventory error names the file and line', (t) => {
  const cases: [string, number, RegExp][] = [
    ['[g:bogus]\nh\n', 1, /unknown type "bogus"/],
    ['[bad group]\n', 1, /invalid section header/],
    ['[g]\nh novalue\n', 2, /expected key=value host variable/],
    ['[g]\nh a="unterminated\n', 2, /No closing quotation/],
    ['[g:vars]\nx=1\n', 1, /not defined anywhere/],
    ['[g]\nh\n[g:vars]\njustakey\n', 4, /expected key=value/],
    ['[p:children]\nmissing\n', 2, /includes group "missing", which is not defined/],
    ['[g]\nweb[5:1]\n', 2, /start is after end/],
    ['[g]\nweb[1:x]\n', 2, /both be numbers or both single letters/],
    ['[g]\nweb[1:3:0]\n', 2, /step must be a positive integer/],
    ['[g]\nweb[1]\n', 2, /expected \[start:end\]/],
    ['[g]\nh:\n', 2, /reserved for a port/],
    ['[g]\nh:abc\n', 2, /port after ':' must be a number/],
    ['[a]\nh ansible_host=10.0.0.1\n[b]\nh ansible_host=10.0.0.2\n', 4, /conflicting with ansible_host=10.0.0.1 on line 2/],
  ];
  for (const [text, line, message] of cases) {
    const [p] = problemsOf(text);
    t.is(p!.file, 'bad.ini', text);
    t.is(p!.line, line, text);
    t.regex(p!.message, message, text);
    t.true(p!.message.startsWith(`bad.ini:${line}: `), p!.message);
  }
});

test('a group cycle through :children is reported', (t) => {
  const [p] = problemsOf('[a:children]\nb\n[b:children]\nc\n[c:children]\na\n');
  t.regex(p!.message, /group cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/);
});

test('all problems of an inventory are reported together', (t) => {
  const problems = problemsOf('[g]\nh bad\n[x:nope]\n[p:children]\nghost\n');
  t.deepEqual(problems.map((p) => p.line), [2, 3, 5]);
});

test('the same host defined twice with the same vars is fine', (t) => {
  const i = inv('[a]\nh x=1\n[b]\nh x=1 y=2\n');
  t.deepEqual(i.hosts.get('h')!.vars, { x: 1, y: 2 });
});
