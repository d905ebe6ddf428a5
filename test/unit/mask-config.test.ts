// config_local.py as --diff and rollback show it: every secret the web app's configuration can
// hold is masked (SPEC 7), and the masked file keeps its lines so the diff still lines up.
import test from 'ava';
import { createTwoFilesPatch } from 'diff';
import { readFileSync } from 'node:fs';
import { maskConfigSecrets } from '../../tasks/config-local/mask.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/config-local/${name}`, import.meta.url), 'utf8');
const SECRETS = fixture('secrets.py');

test('a config_local.py with mail, LDAP, OAuth2, key, conninfo and URI secrets shows none of them', (t) => {
  const masked = maskConfigSecrets(SECRETS);
  t.is(masked, fixture('secrets.masked.py'));
  t.false(masked.includes('LEAK'), masked);
});

test('settings that are not secrets stay readable', (t) => {
  const masked = maskConfigSecrets(SECRETS);
  for (const line of [
    'ALLOW_SAVE_PASSWORD = False', 'MASTER_PASSWORD_REQUIRED = True', "MAIL_USERNAME = 'pem@example.com'",
    "LDAP_KEY_FILE = '/etc/pki/tls/private/pem.key'", "    'OAUTH2_TOKEN_URL': 'https://github.com/login/oauth/access_token',",
    "CACHE_KEY = 'pem-web'", '-----END PRIVATE KEY-----', 'MAIL_PASSWORD = \'********\'  # rotated yearly',
  ]) t.true(masked.split('\n').includes(line), line);
});

test('masking keeps every line, so the diff of the masked files has the same hunks', (t) => {
  const after = SECRETS.replace(/^CONFIG_DATABASE_URI = .*$/m, 'CONFIG_DATABASE_URI = "postgresql://pem_user_settings:LEAK-new@10.0.0.11:5432/pem_user_settings"');
  const hunks = (a: string, b: string) => createTwoFilesPatch('f', 'f', a, b).split('\n').filter((l) => l.startsWith('@@'));
  t.is(maskConfigSecrets(SECRETS).split('\n').length, SECRETS.split('\n').length);
  t.deepEqual(hunks(maskConfigSecrets(SECRETS), maskConfigSecrets(after)), hunks(SECRETS, after));
  const patch = createTwoFilesPatch('f', 'f', maskConfigSecrets(SECRETS), maskConfigSecrets(after));
  t.false(patch.includes('LEAK'), patch);
  t.regex(patch, /^\+CONFIG_DATABASE_URI = "postgresql:\/\/pem_user_settings:\*{8}@10\.0\.0\.11:5432\/pem_user_settings"$/m);
});

test('CRLF line endings survive masking', (t) => {
  const crlf = SECRETS.replace(/\n/g, '\r\n');
  t.is(maskConfigSecrets(crlf), fixture('secrets.masked.py').replace(/\n/g, '\r\n'));
});

test('a file without secrets is unchanged but for URI passwords, docstrings included', (t) => {
  const stock = fixture('pem-stock.py');
  t.is(maskConfigSecrets(stock), stock.replace('pem_user_settings:secret@db', 'pem_user_settings:********@db').replace('old:old@olddb', 'old:********@olddb'));
});

// [what, config_local.py snippet, as shown]
const snippets: [string, string, string][] = [
  ['an annotated assignment', 'SECRET_KEY: str = "k"\n', 'SECRET_KEY: str = "********"\n'],
  ['an f-string and a raw string', "MAIL_PASSWORD = f'{prefix}pw'\nLDAP_BIND_PASSWORD = r'a\\b'\n", "MAIL_PASSWORD = f'********'\nLDAP_BIND_PASSWORD = r'********'\n"],
  ['keyword arguments in a call', "app.config.update(MAIL_PASSWORD='pw', MAIL_PORT=587)\n", "app.config.update(MAIL_PASSWORD='********', MAIL_PORT=587)\n"],
  ['an attribute', "app.config.SECRET_KEY = 'k'\n", "app.config.SECRET_KEY = '********'\n"],
  ['a subscript', 'config["SECURITY_PASSWORD_SALT"] = "s"\n', 'config["SECURITY_PASSWORD_SALT"] = "********"\n'],
  ['two statements on a line', "MAIL_PASSWORD = 'pw'; MAIL_PORT = 587\n", "MAIL_PASSWORD = '********'; MAIL_PORT = 587\n"],
  ['a multi-line triple-quoted secret', "SECRET_KEY = '''one\ntwo'''\nX = 1\n", "SECRET_KEY = '''********\n********'''\nX = 1\n"],
  ['a backslash continuation', "MAIL_PASSWORD = \\\n    'pw'\n", "MAIL_PASSWORD = \\\n    '********'\n"],
  ['an empty secret stays visibly empty', "MAIL_PASSWORD = ''\n", "MAIL_PASSWORD = ''\n"],
  ['a secret read from the environment', "SECRET_KEY = os.environ['PEM_SECRET_KEY']\n", "SECRET_KEY = os.environ['********']\n"],
  ['a URI password with a quote in it', `CONFIG_DATABASE_URI = 'postgresql://u:p"w@h/db'\n`, `CONFIG_DATABASE_URI = 'postgresql://u:********@h/db'\n`],
  ['a key split over adjacent literals', 'TLS_KEY = ("-----BEGIN RSA PRIVATE KEY-----\\n"\n  "MIIEpAIBAAKCAQEA\\n"\n  "-----END RSA PRIVATE KEY-----\\n")\n',
    'TLS_KEY = ("-----BEGIN RSA PRIVATE KEY-----********\n********\n********-----END RSA PRIVATE KEY-----\\n")\n'],
  ['a comparison is not an assignment', "if MAIL_PASSWORD == 'pw':\n    pass\n", "if MAIL_PASSWORD == 'pw':\n    pass\n"],
];
for (const [what, text, shown] of snippets) {
  test(`maskConfigSecrets: ${what}`, (t) => t.is(maskConfigSecrets(text), shown));
}

test('a file the tokenizer cannot read is still masked, line by line', (t) => {
  const broken = "X = 'never closed\nMAIL_PASSWORD = 'pw'\nCONFIG_DATABASE_URI = \"postgresql://u:pw@h/db\"\n";
  t.is(maskConfigSecrets(broken), "X = 'never closed\nMAIL_PASSWORD = '********'\nCONFIG_DATABASE_URI = \"postgresql://u:********@h/db\"\n");
});
