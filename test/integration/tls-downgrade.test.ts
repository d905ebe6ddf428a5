// A server that has no TLS and asks for a clear-text password, sitting where a backend should
// be (someone who took over its address): libpq's default sslmode=prefer falls back to plain
// text and answers with the password. With the URI deploy writes (sslmode=require,
// channel_binding=require), the web app's own parser and libpq refuse to send it. The web app
// is played by shared/webapp-consumer/consumer.py (SQLAlchemy 2 + Debian's psycopg, as pgAdmin).
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pythonStringLiteral } from '../../tasks/config-local/edit.ts';
import { settingsUri } from '../../tasks/config-local/uri.ts';
import { run } from '../lab/sh.ts';

const CONSUMER = fileURLToPath(new URL('../../../shared/webapp-consumer/consumer.py', import.meta.url));
const PASSWORD = 'the-settings-password-42';

/** Says "no TLS" to an SSLRequest, then asks for a clear-text password and records what comes. */
function impostor(): Promise<{ server: Server; port: number; received: () => string[] }> {
  const received: string[] = [];
  const server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    let started = false;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4) {
        if (!started) {
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          buf = buf.subarray(len);
          if (code === 80877103 || code === 80877104) socket.write('N'); // SSLRequest, GSSENCRequest: not here
          else {
            started = true; // the startup message: ask for the password in clear
            socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
          }
        } else {
          if (buf.length < 5) return;
          const len = buf.readInt32BE(1);
          if (buf.length < len + 1) return;
          if (buf[0] === 0x70) received.push(buf.subarray(5, len).toString('utf8').replace(/\0$/, ''));
          buf = buf.subarray(len + 1);
          socket.end();
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, received: () => received })));
}

function configWith(uri: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pems-tls-'));
  const file = join(dir, 'config_local.py');
  writeFileSync(file, `CONFIG_DATABASE_URI = ${pythonStringLiteral(uri)}\n`);
  return file;
}

test.serial('libpq\'s default answers an impostor without TLS with the password in clear', async (t) => {
  const fake = await impostor();
  try {
    const uri = settingsUri({ user: 'pem_user_settings', password: PASSWORD, database: 'pem_user_settings', backends: [{ host: '127.0.0.1', port: fake.port }] }).uri;
    const r = await run('/usr/bin/python3', [CONSUMER, configWith(uri)]);
    t.not(r.code, 0);
    t.deepEqual(fake.received(), [PASSWORD], 'the threat is real: sslmode=prefer sent it');
  } finally {
    fake.server.close();
  }
});

test.serial('with the URI deploy writes, the web app\'s parser keeps the options and libpq refuses: no password leaves', async (t) => {
  const fake = await impostor();
  try {
    const uri = settingsUri({
      user: 'pem_user_settings', password: PASSWORD, database: 'pem_user_settings', backends: [{ host: '127.0.0.1', port: fake.port }],
      security: { channelBinding: true },
    }).uri;
    t.regex(uri, /\?sslmode=require&channel_binding=require$/);
    const parsed = await run('/usr/bin/python3', [CONSUMER, '--parse', configWith(uri)]);
    t.is(parsed.code, 0, parsed.stderr);
    t.like(JSON.parse(parsed.stdout), { sslmode: 'require', channel_binding: 'require' });
    const r = await run('/usr/bin/python3', [CONSUMER, configWith(uri)]);
    t.not(r.code, 0);
    t.regex(r.stderr, /server does not support SSL|SSL.*required|SSL/i);
    t.deepEqual(fake.received(), [], 'the password was never sent');
  } finally {
    fake.server.close();
  }
});
