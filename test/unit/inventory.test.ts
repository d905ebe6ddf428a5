import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InventoryError, ProblemsError } from '../../src/errors.ts';
import { asBoolean, loadInventory, parseInventory, resolveAll, resolveHost } from '../../src/inventory/index.ts';
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

test('lines break where Python\'s str.splitlines breaks them, and are trimmed as str.strip trims', (t) => {
  const lf = inv('[g]\nh a=1\n[g:vars]\nb=2\n');
  for (const br of ['\r\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x85', '\u2028', '\u2029']) {
    const other = inv(['[g]', 'h a=1', '[g:vars]', 'b=2', ''].join(br));
    t.deepEqual(resolveHost(other, 'h'), { ...resolveHost(lf, 'h'), sources: resolveHost(other, 'h').sources }, JSON.stringify(br));
  }
  t.deepEqual([...inv('[g]\n\u00a0h1\u3000\nh2\x1f\n').hosts.keys()], ['h1', 'h2'], 'Unicode spaces and \\x1f are stripped');
  t.deepEqual([...inv('[g]\nh1 v=a\u00a0b\n').hosts.get('h1')!.vars['v'] as string], [...'a\u00a0b'], 'but only space and tab split words (shlex)');
});

test('a byte-order mark is refused: Ansible would read it as part of the first line', (t) => {
  const [p] = problemsOf('\uFEFF[g]\r\nh a=1\r\n');
  t.is(p!.line, 1);
  t.regex(p!.message, /byte-order mark/);
});

test('a file that is not UTF-8 is refused at the line of the first bad byte', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pem-inv-'));
  const file = join(dir, 'latin1.ini');
  writeFileSync(file, Buffer.concat([Buffer.from('# caf\u00e9\n[g]\r\nh a=caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  const e = t.throws(() => loadInventory(file), { instanceOf: InventoryError });
  t.is(e!.line, 3);
  t.regex(e!.message, /not valid UTF-8/);
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
    ['[g]\nweb[1:3:-1]\n', 2, /empty/],
    ['[g]\nweb[1:x]\n', 2, /both be numbers or both single letters/],
    ['[g]\nweb[1:3:0]\n', 2, /step must be a positive integer/],
    ['[g]\nweb[1]\n', 2, /expected \[start:end\]/],
    ['[g]\nweb[1:3\n', 2, /never closes it/],
    ['[backends]\ndb1\n[webhosts\nweb1\n', 3, /section header needs its closing/],
    ['[g]\nx[01:100]\n', 2, /leading zeros must be as long as the end/],
    ['[g]\nx[A:z]\n', 2, /start is after end \(letters run a–z then A–Z/],
    ['[g]\n"" a=1\n', 2, /cannot be empty/],
    ['[g]\n---\n', 2, /YAML/],
    ['[g] ; a comment\nh\n', 1, /expected \[start:end\]/],
    ['[g]\nh\n[g:vars]\nansible_group_priority=high\n', 4, /ansible_group_priority must be an integer/],
    ['[g]\nh a=1+2j\n', 2, /complex number/],
    ['[g]\ng\n', 2, /same name as a group/],
    ['[g]\nh:\n', 2, /reserved for a port/],
    ['[g]\nh:abc\n', 2, /neither name:port .* nor an IPv6 address/],
    ['[g]\nx_:22\n', 2, /neither name:port/],
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

test('host:port: the inline ansible_port wins, and a later definition does not move the port', (t) => {
  const i = inv('[web]\nweb1:2222 ansible_port=2200\nweb2:2022\nweb3:0\n[other]\nweb2:2023\nweb3:2024\n');
  t.is(resolveHost(i, 'web1').vars['ansible_port'], 2200);
  t.is(resolveHost(i, 'web2').vars['ansible_port'], 2022, 'Ansible sets the port only when it creates the host');
  t.is(resolveHost(i, 'web3').vars['ansible_port'], undefined, 'port 0 sets nothing, and a later port is ignored');
  t.deepEqual(i.groups.get('other')!.hosts, ['web2', 'web3']);
});

test('a port is split off only where Ansible\'s parse_address accepts the rest', (t) => {
  const i = inv('[g]\n[web5]:2205\n[plain:2206]:2207\n_y:22\n10.0.0.[1:2]:2200\n2001:db8::1:22\n');
  t.deepEqual([...i.hosts.keys()], ['web5', 'plain', '_y', '10.0.0.1', '10.0.0.2', '2001:db8::1:22']);
  t.is(i.hosts.get('web5')!.vars['ansible_port'], 2205);
  t.is(i.hosts.get('plain')!.vars['ansible_port'], 2206, 'both port forms are tried in turn, as Ansible does');
  t.is(i.hosts.get('10.0.0.2')!.vars['ansible_port'], 2200);
  t.is(i.hosts.get('2001:db8::1:22')!.vars['ansible_port'], undefined, 'a bare IPv6 address has no port');
  // Where Ansible would keep the colon in the name (the label ends with "_"), we refuse.
  t.regex(problemsOf('[g]\nx_:22\n')[0]!.message, /colon included/);
});

test('letter ranges follow string.ascii_letters: a–z then A–Z', (t) => {
  const names = expandHostRange('x[a:Z]');
  t.is(names.length, 52);
  t.deepEqual([names[0], names[25], names[26], names[51]], ['xa', 'xz', 'xA', 'xZ']);
  t.deepEqual(expandHostRange('y[y:B]'), ['yy', 'yz', 'yA', 'yB']);
  t.deepEqual(expandHostRange('z[ab:cd]'), ['za', 'zb', 'zc'], 'bounds are found by substring search, as str.index does');
  t.deepEqual(expandHostRange('w[-1:1]'), ['w-1', 'w0', 'w1']);
  t.throws(() => expandHostRange('x[A:z]'), { message: /start is after end/ });
  t.throws(() => expandHostRange('w[1:200000]'), { message: /more than 100000 hosts/ });
});

test('quoted values decode Python escapes where Ansible\'s literal_eval sees a string literal', (t) => {
  const i = inv(`[g]\nh a="\\x41" b='"\\x41"' c='"\\101\\u00e9"'\n[g:vars]\nd="\\x41"\ne = 'tab\\there' # comment\n`);
  const v = resolveHost(i, 'h').vars;
  t.is(v['a'], '\\x41', 'shlex keeps the backslash and drops the quotes: literal_eval then fails, the text stays');
  t.is(v['b'], 'A');
  t.is(v['c'], 'Aé');
  t.is(v['d'], 'A');
  t.is(v['e'], 'tab\there', 'a comment after a literal is Python\'s comment');
});

test('every variable knows the line that set it, through the precedence', (t) => {
  const i = inv('[all:vars]\nx=all\ny=all\n[g]\nh1:2200 z=host\nh2\n[g:vars]\nx=group\n');
  const h1 = resolveHost(i, 'h1');
  t.deepEqual({ ...h1.sources }, {
    x: { file: 'test.ini', line: 8, group: 'g' },
    y: { file: 'test.ini', line: 3, group: 'all' },
    z: { file: 'test.ini', line: 5 },
    ansible_port: { file: 'test.ini', line: 5 },
  });
  t.deepEqual(resolveAll(i).map((h) => h.sources?.['x']?.line), [8, 8]);
});

test('a host defined again with a different value is refused with both lines (Ansible takes the last)', (t) => {
  const [p] = problemsOf('[web]\nweb1:2222\n[other]\nweb1 ansible_port=2200\n');
  t.is(p!.line, 4);
  t.regex(p!.message, /conflicting with ansible_port=2222 on line 2/);
  const [secret] = problemsOf('[a]\nh ansible_password=one\n[b]\nh ansible_password=two\n');
  t.false(/one|two/.test(secret!.message), 'a secret-looking value is not repeated');
});

test('children named before their section are added when it comes, as Ansible does', (t) => {
  const i = inv('[p:children]\nlater\nnow\n[now]\nh1\n[later:vars]\nv=1\n[later]\nh2\n');
  t.deepEqual(i.groups.get('p')!.children, ['now', 'later']);
  t.deepEqual(resolveHost(i, 'h2').groups, ['all', 'later', 'p']);
  t.is(resolveHost(i, 'h2').vars['v'], 1);
  const [p] = problemsOf('[a:children]\na\n');
  t.regex(p!.message, /group cycle: a -> a/);
  const [q] = problemsOf('[g:children]\nall\n');
  t.regex(q!.message, /group cycle: g -> all -> g/);
});

test('ansible_group_priority belongs to the group, not to its variables', (t) => {
  const i = inv('[a]\nh\n[b]\nh\n[a:vars]\nv=a\nansible_group_priority=10\n[b:vars]\nv=b\n');
  t.is(resolveHost(i, 'h').vars['v'], 'a');
  t.is(resolveHost(i, 'h').vars['ansible_group_priority'], undefined);
  t.is(resolveHost(inv('[a]\nh ansible_group_priority=3\n'), 'h').vars['ansible_group_priority'], 3, 'on a host it is just a variable');
});

test('hosts under [all] or before any section are ungrouped until a group takes them', (t) => {
  const i = inv('early\n[all]\nh3\n[ungrouped]\nh4\n[g]\nearly\n');
  t.deepEqual(i.groups.get('ungrouped')!.hosts, ['h4', 'h3']);
});
