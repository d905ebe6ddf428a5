import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  describeHbaChange,
  desiredHbaRules,
  hbaName,
  planHbaRule,
  planHbaRules,
  removeRuleLine,
  ruleLine,
  type DesiredHbaRule,
  type HbaPlan,
} from '../../tasks/pg-hba/plan.ts';
import { parseHba, type HbaRule } from '../../tasks/pg-hba/parse.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/pg-hba/${name}`, import.meta.url), 'utf8');

const desired = (cidr: string, database = 'pem_user_settings', user = 'pem_user_settings'): DesiredHbaRule => ({
  type: 'hostssl',
  database,
  user,
  cidr,
  method: 'scram-sha-256',
});

const RULE = 'hostssl pem_user_settings pem_user_settings 10.1.2.0/24 scram-sha-256';
const RULE6 = 'hostssl pem_user_settings pem_user_settings fd00:10:1:2::/64 scram-sha-256';

/** Where the plan puts the rule: 'present@N', 'before@N' or 'append'. */
const where = (plan: HbaPlan): string =>
  plan.status === 'present' ? `present@${plan.line}` : plan.beforeLine === undefined ? 'append' : `before@${plan.beforeLine}`;

/** Every insertion must survive these: planning again finds the rule effective (idempotent),
 * and removing the added line gives back the original bytes (rollback). */
function assertInsertRoundTrip(t: import('ava').ExecutionContext, text: string, rule: DesiredHbaRule, plan: HbaPlan, serverMajor?: number): void {
  if (plan.status !== 'insert') return;
  const again = planHbaRule(plan.newText, rule, { serverMajor });
  t.is(again.status, 'present', 'a second plan finds the inserted rule effective');
  const undone = removeRuleLine(plan.newText, plan.addedLine);
  t.true(undone.removed);
  t.is(undone.newText, text, 'removing the added line restores the original bytes');
}

// Which record the rule must precede (first match wins), or whether it is already effective.
const placements: { name: string; file: string; cidr?: string; major?: number; user?: string; want: string }[] = [
  { name: 'an empty file gets the rule appended', file: '', want: 'append' },
  { name: 'comments only: appended', file: '# nothing yet\n', want: 'append' },
  { name: 'local lines never match TCP connections', file: 'local all all peer\nlocal all all reject\n', want: 'append' },
  { name: 'hostnossl never matches an SSL connection', file: 'hostnossl all all 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'hostgssenc never matches a connection without GSS encryption', file: 'hostgssenc all all 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'replication does not match a normal database', file: 'hostssl replication all 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'a quoted "all" is a database named all', file: 'host "all" all 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'a rule for another database does not match', file: 'host pem all 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'a rule for another user does not match', file: 'host all pem_user 0.0.0.0/0 reject\n', want: 'append' },
  { name: 'a rule for another subnet does not match', file: 'host all all 10.1.3.0/24 reject\n', want: 'append' },
  { name: 'an IPv4 rule does not match IPv6 clients', file: 'host all all 0.0.0.0/0 reject\n', cidr: 'fd00::/64', want: 'append' },
  { name: 'an IPv6 rule does not match IPv4 clients', file: 'host all all ::/0 reject\n', want: 'append' },
  { name: 'sameuser does not match when database and user differ', file: 'host sameuser all 0.0.0.0/0 reject\n', user: 'pem_web', want: 'append' },
  { name: 'goes before host all all 0.0.0.0/0 reject', file: 'local all all peer\nhost all all 0.0.0.0/0 reject\n', want: 'before@2' },
  { name: 'goes before a broader md5 rule', file: 'host all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 reject\n', want: 'before@1' },
  { name: 'goes before a /16 reject that contains the /24', file: 'host all all 10.1.0.0/16 reject\n', want: 'before@1' },
  { name: 'goes before a reject that overlaps part of the subnet', file: 'host all all 10.1.2.128/25 reject\n', want: 'before@1' },
  { name: 'a narrower /28 scram rule is not enough: goes before it', file: `hostssl pem_user_settings pem_user_settings 10.1.2.16/28 scram-sha-256\n`, want: 'before@1' },
  { name: 'goes before a matching rule with the wrong method', file: 'hostssl all all 10.1.2.0/24 md5\n', want: 'before@1' },
  { name: 'goes before an otherwise equal rule with options', file: `${RULE} clientcert=verify-full\n`, want: 'before@1' },
  { name: 'goes before a +group rule (membership is unknowable)', file: 'host all +admins 0.0.0.0/0 reject\n', want: 'before@1' },
  { name: 'goes before an @file database list', file: 'host @dbs.txt all 0.0.0.0/0 md5\n', want: 'before@1' },
  { name: 'goes before an @file user list', file: 'host all @users 0.0.0.0/0 md5\n', want: 'before@1' },
  { name: 'goes before samenet', file: 'host all all samenet md5\n', want: 'before@1' },
  { name: 'goes before samehost', file: 'host all all samehost md5\n', want: 'before@1' },
  { name: 'goes before a host name', file: 'host all all web1.example.com trust\n', want: 'before@1' },
  { name: 'goes before samerole when the user is not the database', file: 'host samerole all 0.0.0.0/0 reject\n', user: 'pem_web', want: 'before@1' },
  { name: 'goes before a regex name on Postgres 16', file: 'host /^pem all 0.0.0.0/0 reject\n', want: 'before@1' },
  { name: 'a leading slash is a plain name on Postgres 15', file: 'host /^pem all 0.0.0.0/0 reject\n', major: 15, want: 'append' },
  { name: 'goes before an include (its rules are unknowable)', file: 'local all all peer\ninclude_dir conf.d\n', want: 'before@2' },
  { name: 'goes before ::/0 reject for an IPv6 subnet', file: 'host all all 0.0.0.0/0 reject\nhost all all ::/0 reject\n', cidr: 'fd00::/64', want: 'before@2' },
  { name: 'an identical rule is effective', file: `${RULE}\nhost all all 0.0.0.0/0 reject\n`, want: 'present@1' },
  { name: 'quoted names and the mask form are the same rule', file: 'host "pem_user_settings" "pem_user_settings" 10.1.2.0 255.255.255.0 scram-sha-256\n', want: 'present@1' },
  { name: 'host bits in the address are ignored, as Postgres does', file: 'hostssl all all 10.1.2.77/24 scram-sha-256\n', want: 'present@1' },
  { name: 'a broader all/all scram rule is effective', file: 'hostssl all all 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n', want: 'present@1' },
  { name: 'the address keyword all covers every client', file: 'hostssl all all all scram-sha-256\n', want: 'present@1' },
  { name: 'sameuser matches when database and user are the same name', file: 'hostssl sameuser pem_user_settings 10.1.2.0/24 scram-sha-256\n', want: 'present@1' },
  { name: 'samerole and +self match the role itself', file: 'hostssl samerole +pem_user_settings 10.1.2.0/24 scram-sha-256\n', want: 'present@1' },
  { name: 'hostnogssenc matches our connection', file: 'hostnogssenc pem_user_settings pem_user_settings 10.1.2.0/24 scram-sha-256\n', want: 'present@1' },
  { name: 'a rule after a non-matching local and hostnossl line is effective', file: `local all all peer\nhostnossl all all 0.0.0.0/0 reject\n${RULE}\n`, want: 'present@3' },
  { name: 'an effective rule behind a reject does not count', file: `host all all 0.0.0.0/0 reject\n${RULE}\n`, want: 'before@1' },
  { name: 'a commented-out rule does not count', file: `# ${RULE}\n`, want: 'append' },
  { name: 'an IPv6 rule covering the subnet is effective', file: 'hostssl all all fd00::/16 scram-sha-256\n', cidr: 'fd00:1:2::/64', want: 'present@1' },
  { name: 'an IPv4 rule under an IPv6 reject is effective for IPv4', file: `host all all ::/0 reject\n${RULE}\n`, want: 'present@2' },
];

for (const { name, file, cidr = '10.1.2.0/24', major, user, want } of placements) {
  test(`placement: ${name}`, (t) => {
    const rule = desired(cidr, 'pem_user_settings', user);
    const plan = planHbaRule(file, rule, { serverMajor: major });
    t.is(where(plan), want);
    assertInsertRoundTrip(t, file, rule, plan, major);
  });
}

// Whole files as they are found on backends.
const fixtures: { file: string; cidr: string; want: string }[] = [
  { file: 'debian-default.conf', cidr: '10.1.2.0/24', want: 'append' },
  { file: 'pem-server.conf', cidr: '10.1.2.0/24', want: 'before@19' },
  { file: 'pem-server.conf', cidr: 'fd00:10:1:2::/64', want: 'before@20' },
  { file: 'broad-md5.conf', cidr: '10.1.2.0/24', want: 'before@3' },
  { file: 'already-present.conf', cidr: '10.1.2.0/24', want: 'present@5' },
  { file: 'already-present.conf', cidr: '10.1.2.128/25', want: 'present@5' },
  { file: 'already-present.conf', cidr: '10.1.0.0/16', want: 'before@5' },
  { file: 'ipv6.conf', cidr: 'fd00:10:1:2::/64', want: 'present@4' },
  { file: 'ipv6.conf', cidr: 'fd00:10::/32', want: 'before@4' },
  { file: 'ipv6.conf', cidr: '10.1.2.0/24', want: 'before@5' },
  { file: 'pg16-features.conf', cidr: '10.1.2.0/24', want: 'before@5' },
];
for (const { file, cidr, want } of fixtures) {
  test(`${file}: the rule for ${cidr} is ${want}`, (t) => {
    const text = fixture(file);
    const rule = desired(cidr);
    const plan = planHbaRule(text, rule);
    t.is(where(plan), want);
    assertInsertRoundTrip(t, text, rule, plan);
  });
}

test('inserts exactly one line before the matching record and keeps every other byte', (t) => {
  const text = fixture('broad-md5.conf');
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.like(plan, { status: 'insert', addedLine: RULE });
  const lines = text.split('\n');
  t.is(plan.status === 'insert' && plan.newText, [...lines.slice(0, 2), RULE, ...lines.slice(2)].join('\n'));
  t.regex(plan.status === 'insert' ? plan.reason : '', /^line 3 \(host all all 10\.0\.0\.0\/8 md5\) matches these connections first, with method md5$/);
});

test('appends to the Debian default file after its last line', (t) => {
  const text = fixture('debian-default.conf');
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `${text}${RULE}\n`);
});

test('keeps CRLF line endings: the inserted line ends in CRLF too', (t) => {
  const text = '# header\r\nlocal all all peer\r\nhost all all 0.0.0.0/0 reject\r\n';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `# header\r\nlocal all all peer\r\n${RULE}\r\nhost all all 0.0.0.0/0 reject\r\n`);
  assertInsertRoundTrip(t, text, desired('10.1.2.0/24'), plan);
});

test('keeps CRLF line endings when appending', (t) => {
  const text = 'local all all peer\r\n';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `local all all peer\r\n${RULE}\r\n`);
});

test('a file without a final newline stays without one when the rule is appended', (t) => {
  const text = 'local all all peer';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `local all all peer\n${RULE}`);
  assertInsertRoundTrip(t, text, desired('10.1.2.0/24'), plan);
});

test('a file without a final newline keeps its last line as is when the rule goes before it', (t) => {
  const text = 'local all all peer\r\nhost all all 0.0.0.0/0 reject';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `local all all peer\r\n${RULE}\r\nhost all all 0.0.0.0/0 reject`);
  assertInsertRoundTrip(t, text, desired('10.1.2.0/24'), plan);
});

test('a byte order mark stays first when the rule goes on line 1', (t) => {
  const text = '\uFEFFhost all all 0.0.0.0/0 reject\n';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `\uFEFF${RULE}\nhost all all 0.0.0.0/0 reject\n`);
  assertInsertRoundTrip(t, text, desired('10.1.2.0/24'), plan);
});

test('goes before the first line of a record continued over several lines', (t) => {
  const text = '# c\nhost all all \\\n  0.0.0.0/0 reject\n';
  const plan = planHbaRule(text, desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.newText, `# c\n${RULE}\nhost all all \\\n  0.0.0.0/0 reject\n`);
});

test('is not appended into a comment that ends in a backslash at the end of the file', (t) => {
  for (const text of ['local all all peer\n# to do \\\n', 'local all all peer\n# to do \\']) {
    const rule = desired('10.1.2.0/24');
    const plan = planHbaRule(text, rule);
    t.is(where(plan), 'before@2');
    t.true(plan.status === 'insert' && plan.newText.startsWith(`local all all peer\n${RULE}\n# to do \\`));
    assertInsertRoundTrip(t, text, rule, plan);
  }
});

test('a bare address is written as a single-host CIDR', (t) => {
  t.is(ruleLine(desired('10.1.2.7')), 'hostssl pem_user_settings pem_user_settings 10.1.2.7/32 scram-sha-256');
  t.is(ruleLine(desired('fd00::7')), 'hostssl pem_user_settings pem_user_settings fd00::7/128 scram-sha-256');
});

// Names are quoted only when Postgres would otherwise read them as something else.
const quoting: [string, string][] = [
  ['pem_user_settings', 'pem_user_settings'],
  ['Settings-DB.1', 'Settings-DB.1'],
  ['all', '"all"'],
  ['replication', '"replication"'],
  ['samerole', '"samerole"'],
  ['+admins', '"+admins"'],
  ['@file', '"@file"'],
  ['my db', '"my db"'],
  ['a,b', '"a,b"'],
  ['we"ird', '"we""ird"'],
  ['x#y', '"x#y"'],
];
for (const [name, written] of quoting) {
  test(`writes the name ${JSON.stringify(name)} as ${written}, and reads it back as the same name`, (t) => {
    t.is(hbaName(name), written);
    const rule = desired('10.1.2.0/24', name, name);
    const parsed = parseHba(ruleLine(rule) + '\n')[0] as HbaRule;
    t.deepEqual([parsed.databases.map((x) => x.value), parsed.users.map((x) => x.value)], [[name], [name]]);
    t.is(where(planHbaRule(ruleLine(rule) + '\nhost all all 0.0.0.0/0 reject\n', rule)), 'present@1');
  });
}

test('refuses names Postgres 16 would read as a regex, or that would break the line', (t) => {
  t.throws(() => hbaName('/x'));
  t.throws(() => hbaName('a\nb'));
});

test('one rule per CIDR of pem_web_subnet, in order, each before the reject', (t) => {
  const text = 'local all all peer\nhost all all 0.0.0.0/0 reject\n';
  const rules = desiredHbaRules('pem_user_settings', 'pem_user_settings', '10.1.2.0/24, 10.1.3.0/24');
  const plan = planHbaRules(text, rules);
  const second = 'hostssl pem_user_settings pem_user_settings 10.1.3.0/24 scram-sha-256';
  t.deepEqual(plan.added, [RULE, second]);
  t.is(plan.newText, `local all all peer\n${RULE}\n${second}\nhost all all 0.0.0.0/0 reject\n`);
  t.deepEqual(planHbaRules(plan.newText, rules), { newText: plan.newText, added: [], present: [2, 3], plans: [{ status: 'present', line: 2 }, { status: 'present', line: 3 }] });
  const undone = plan.added.reduceRight((acc, line) => removeRuleLine(acc, line).newText, plan.newText);
  t.is(undone, text);
});

test('a CIDR inside one already added needs no rule of its own', (t) => {
  const rules = desiredHbaRules('pem_user_settings', 'pem_user_settings', ['10.1.0.0/16', '10.1.2.0/24']);
  const plan = planHbaRules('host all all 0.0.0.0/0 reject\n', rules);
  t.deepEqual(plan.added, ['hostssl pem_user_settings pem_user_settings 10.1.0.0/16 scram-sha-256']);
  t.deepEqual(plan.present, [1]);
});

test('removeRuleLine removes only the first occurrence and nothing else', (t) => {
  const text = `a\n${RULE}\nb\n${RULE}\n`;
  t.deepEqual(removeRuleLine(text, RULE), { newText: `a\nb\n${RULE}\n`, removed: true });
});

test('removeRuleLine leaves the file alone when the line is gone', (t) => {
  const text = `a\n  ${RULE}\nb`;
  t.deepEqual(removeRuleLine(text, RULE), { newText: text, removed: false });
});

test('removeRuleLine removes a CRLF line whole', (t) => {
  t.deepEqual(removeRuleLine(`a\r\n${RULE6}\r\nb\r\n`, RULE6), { newText: 'a\r\nb\r\n', removed: true });
});

test('the diff shows the added line in unified format, with the path in the header', (t) => {
  const before = 'local all all peer\nhost all all 0.0.0.0/0 reject\n';
  const plan = planHbaRule(before, desired('10.1.2.0/24'));
  const diff = describeHbaChange(before, plan.status === 'insert' ? plan.newText : before, '/etc/postgresql/15/main/pg_hba.conf');
  t.regex(diff, /^--- \/etc\/postgresql\/15\/main\/pg_hba\.conf$/m);
  t.regex(diff, /^\+\+\+ \/etc\/postgresql\/15\/main\/pg_hba\.conf$/m);
  t.regex(diff, new RegExp(`^\\+${RULE}$`, 'm'));
  t.is(diff.split('\n').filter((l) => /^[+-](?![+-])/.test(l)).length, 1);
});

test('the diff masks LDAP and RADIUS secrets found in the file', (t) => {
  const before = 'host all all 0.0.0.0/0 ldap ldapserver=ldap ldapbindpasswd=s3cret radiussecrets="a,b"\n';
  const after = `${RULE}\n${before}`;
  const diff = describeHbaChange(before, after, 'pg_hba.conf');
  t.false(diff.includes('s3cret'));
  t.false(diff.includes('"a,b"'));
  t.regex(diff, /ldapbindpasswd=\*{8}/);
});

test('the reason names the record by its fields, never its options', (t) => {
  const plan = planHbaRule('host all all 0.0.0.0/0 ldap ldapbindpasswd=s3cret\n', desired('10.1.2.0/24'));
  t.is(plan.status === 'insert' && plan.reason, 'line 1 (host all all 0.0.0.0/0 ldap) matches these connections first, with method ldap');
});
