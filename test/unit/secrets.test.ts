// redact: the last guard between a secret and the screen. It must catch every form the
// password travels in (as is, percent-encoded as config_local.py holds it, base64).
import test from 'ava';
import { isSecretVar, MASK, maskSecretsInText, maskVars, redact, redactDeep } from '../../src/secrets.ts';

const PASSWORD = `Zq9!distinct-p@ss "w0rd"/ä`;

// [where the password shows up, the text]
const leaks: [string, string][] = [
  ['as is', `error: ${PASSWORD} rejected`],
  ['percent-encoded by encodeURIComponent (keeps !)', `uri ${encodeURIComponent(PASSWORD)}@host`],
  ['percent-encoded per RFC 3986, as config_local.py holds it (%21 for !)', 'CONFIG_DATABASE_URI = "postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h:5432/db"'],
  ['percent-encoded with lower-case hex', 'postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2f%c3%a4@h/db'],
  ['base64', `payload ${Buffer.from(PASSWORD, 'utf8').toString('base64')} end`],
];

for (const [where, text] of leaks) {
  test(`redact masks the password ${where}`, (t) => {
    const out = redact(text, [PASSWORD]);
    t.true(out.includes(MASK), out);
    t.false(out.includes('distinct-p'), out);
    t.false(out.includes(Buffer.from(PASSWORD, 'utf8').toString('base64')), out);
  });
}

test('redact keeps everything else byte for byte', (t) => {
  t.is(redact('postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h:5432/db ok', [PASSWORD]), `postgresql://u:${MASK}@h:5432/db ok`);
  t.is(redact('nothing secret here', [PASSWORD, '']), 'nothing secret here');
});

test('redact masks several secrets (role password and sudo password)', (t) => {
  t.is(redact('a=first-secret-1 b=second secret', ['first-secret-1', 'second secret']), `a=${MASK} b=${MASK}`);
});

test('redact survives a secret with a lone surrogate (encodeURIComponent would throw)', (t) => {
  t.is(redact('x \ud800abc-secret-value y', ['\ud800abc-secret-value']), `x ${MASK} y`);
});

test('redactDeep masks every string of a run record and keeps its shape', (t) => {
  const record = { run: 'r1', hosts: { 'web-1': { steps: [{ step: 'restart web app', message: `exited with 3: postgresql://u:Zq9%21distinct-p%40ss%20%22w0rd%22%2F%C3%A4@h/db`, record: { exitCode: 3, ok: true, backup: null } }] } } };
  t.deepEqual(redactDeep(record, [PASSWORD]), { run: 'r1', hosts: { 'web-1': { steps: [{ step: 'restart web app', message: `exited with 3: postgresql://u:${MASK}@h/db`, record: { exitCode: 3, ok: true, backup: null } }] } } });
});

// ---- what `hosts` and every other output hide: by name, then by shape ----

// [variable name, is its value a secret by its name alone]
const names: [string, boolean][] = [
  ['ansible_password', true], ['ansible_become_pass', true], ['ansible_ssh_pass', true], ['ansible_become_password', true],
  ['api_secret_key', true], ['vault_token_id', true], ['my_passwd', true], ['ssh_passphrase', true],
  ['private_key_passphrase', true], ['tls_private_key', true], ['api_key', true], ['aws_credentials', true], ['db_pwd', true],
  ['apiSecretKey', true], ['ldapBindPW', true], ['MAIL_PASSWORD', true], ['SECURITY_PASSWORD_SALT', true], ['authtoken', true],
  // a path (or address) of a secret is not the secret
  ['ansible_ssh_private_key_file', false], ['vault_password_file', false], ['pem_db_passfile', false], ['OAUTH2_TOKEN_URL', false],
  // "pass" inside another word, and key names that say nothing of secrecy
  ['passenger_port', false], ['bypass_proxy', false], ['compass', false], ['ssh_host_key', false], ['sort_key', false],
  ['ansible_host', false], ['pem_web_subnet', false], ['pem_settings_user', false],
];
for (const [name, secret] of names) {
  test(`${name} is ${secret ? '' : 'not '}a secret by its name`, (t) => t.is(isSecretVar(name), secret));
}

test('hosts masks secret-named variables whatever their type, and keeps empty ones visible', (t) => {
  t.deepEqual(maskVars({ api_secret_key: 'k3y', vault_token_id: 12345, my_passwd: true, ssh_passphrase: '', ansible_password: null, ansible_port: 22 }),
    { api_secret_key: MASK, vault_token_id: MASK, my_passwd: MASK, ssh_passphrase: '', ansible_password: null, ansible_port: 22 });
});

test('hosts shows a key file path but masks key material in a *_key variable', (t) => {
  t.deepEqual(maskVars({
    ansible_ssh_private_key_file: '/home/ops/.ssh/id_ed25519', ssh_host_key: 'AAAAC3NzaC1lZDI1NTE5AAAAIOMq', cache_key: 'pem-settings',
    deploy_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq ops@example',
  }), {
    ansible_ssh_private_key_file: '/home/ops/.ssh/id_ed25519', ssh_host_key: MASK, cache_key: 'pem-settings',
    deploy_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq ops@example',
  });
});

test('hosts masks secrets by their shape in any variable', (t) => {
  const vars = maskVars({
    vault_addr: 'https://ops:s3cret"pw@vault.example:8200/v1',
    pem_web_health: 'curl -fsS "https://web/health?user=ops&password=hunter22&x=1"',
    pem_web_restart: "PGPASSWORD='pw with space' systemctl restart pem",
    ansible_ssh_common_args: '-o ProxyJump=jump@bastion -o PasswordAuthentication=no',
    tls_material: '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----',
  });
  t.deepEqual(vars, {
    vault_addr: `https://ops:${MASK}@vault.example:8200/v1`,
    pem_web_health: `curl -fsS "https://web/health?user=ops&password=${MASK}&x=1"`,
    pem_web_restart: `PGPASSWORD='${MASK}' systemctl restart pem`,
    ansible_ssh_common_args: '-o ProxyJump=jump@bastion -o PasswordAuthentication=no',
    tls_material: `-----BEGIN EC PRIVATE KEY-----\n${MASK}\n-----END EC PRIVATE KEY-----`,
  });
});

// [what, text, masked]
const shapes: [string, string, string][] = [
  ['a URI password', 'could not connect to postgresql://u:pw@h:5432/db', `could not connect to postgresql://u:${MASK}@h:5432/db`],
  ['a URI without a password', 'postgresql://u@h/db and http://h:8080/x', 'postgresql://u@h/db and http://h:8080/x'],
  ['password= in a query string', 'postgresql://u@h/db?sslmode=require&password=pw&connect_timeout=5', `postgresql://u@h/db?sslmode=require&password=${MASK}&connect_timeout=5`],
  ['passwd= in a query string', 'mysql://h/db?passwd=pw', `mysql://h/db?passwd=${MASK}`],
  ['a libpq conninfo password', "host=h password='a b' dbname=d", `host=h password='${MASK}' dbname=d`],
  ['a name: value pair', 'token: abc123', `token: ${MASK}`],
  ['a user:password URI userinfo that is not a pair', 'https://token:x-oauth-basic@github.com/o/r', `https://token:${MASK}@github.com/o/r`],
  ['comparisons and host:port', 'if token == expected and host:5432', 'if token == expected and host:5432'],
  ['settings that switch something', 'PasswordAuthentication=no ALLOW_SAVE_PASSWORD = True', 'PasswordAuthentication=no ALLOW_SAVE_PASSWORD = True'],
  ['a private key block, line by line', 'k=\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\nAAAAB\n-----END OPENSSH PRIVATE KEY-----\nnext',
    `k=\n-----BEGIN OPENSSH PRIVATE KEY-----\n${MASK}\n${MASK}\n-----END OPENSSH PRIVATE KEY-----\nnext`],
  ['a key block cut short', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\nAAAA', `-----BEGIN RSA PRIVATE KEY-----\n${MASK}\n${MASK}`],
  ['a public key or certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
];
for (const [what, text, masked] of shapes) {
  test(`maskSecretsInText: ${what}`, (t) => t.is(maskSecretsInText(text), masked));
}
