// The ClientHello reader used by SNI routing (src/balancer/client-hello.ts): real ClientHellos
// from Node's TLS client and from openssl s_client, read whole, in every prefix and split
// across records; then a fuzz-ish pass of truncations, bit flips, length lies and random bytes
// that must never throw, never read past the input, and never report a name that is not one.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { HELLO_INCOMPLETE, HELLO_INVALID, HELLO_OK, HELLO_OVERSIZED, MAX_HELLO_BYTES, parseClientHello } from '../src/balancer/client-hello.js';

/** The first flight a TLS client sends, captured by a plain TCP server. */
async function capture(connectTo: (port: number) => void): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d) => {
        parts.push(d);
        const all = Buffer.concat(parts);
        if (parseClientHello(all).status !== HELLO_INCOMPLETE || all.length > 20000) {
          s.destroy();
          server.close();
          resolve(all);
        }
      });
      s.on('error', () => {});
    });
    server.listen(0, '127.0.0.1', () => connectTo((server.address() as AddressInfo).port));
  });
}

function nodeHello(options: ConnectionOptions): Promise<Buffer> {
  return capture((port) => {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    c.on('error', () => {});
  });
}

function opensslHello(servername: string): Promise<Buffer> {
  return capture((port) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.on('error', () => {});
    setTimeout(() => p.kill(), 5000).unref();
  });
}

/** Split a single-record hello into two records at `at` bytes of handshake payload. */
function splitRecords(hello: Buffer, at: number): Buffer {
  const payload = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const rec = (p: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, p.length >> 8, p.length & 0xff]), p]);
  return Buffer.concat([rec(payload.subarray(0, at)), rec(payload.subarray(at))]);
}

const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

t.test('real ClientHellos: the server name, no name, TLS 1.2 and 1.3, ALPN, every prefix incomplete', async (t) => {
  const hellos: [string, Buffer, string | null][] = [
    ['node sni', await nodeHello({ servername: 'a.example.test' }), 'a.example.test'],
    ['node no sni', await nodeHello({}), null],
    ['node tls1.2 + alpn', await nodeHello({ servername: 'API.Example.Test', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'] }), 'api.example.test'],
    ['openssl s_client', await opensslHello('b.example.test'), 'b.example.test'],
  ];
  for (const [label, hello, name] of hellos) {
    const r = parseClientHello(hello);
    t.equal(r.status, HELLO_OK, `${label}: ok`);
    t.equal(r.serverName, name, `${label}: name`);
    let allIncomplete = true;
    for (let n = 0; n < hello.length; n++) if (parseClientHello(hello.subarray(0, n)).status !== HELLO_INCOMPLETE) allIncomplete = false;
    t.ok(allIncomplete, `${label}: every prefix asks for more`);
    const split = splitRecords(hello, 3);
    t.same(parseClientHello(split), { status: HELLO_OK, serverName: name, error: '' }, `${label}: split across two records`);
    t.equal(parseClientHello(splitRecords(hello, 100)).serverName, name);
  }
});

t.test('refused at once: not TLS, not a handshake, SSLv2, plain HTTP', async (t) => {
  for (const bytes of ['GET / HTTP/1.1\r\n', '\x80\x2e\x01\x03\x01', '\x17\x03\x03\x00\x10', '\x16\x02\x00', 'SSH-2.0-x']) {
    t.equal(parseClientHello(Buffer.from(bytes, 'latin1')).status, HELLO_INVALID, JSON.stringify(bytes));
  }
  // A ServerHello (type 2) is a handshake, but not what a client sends.
  t.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x30, 0x02, 0x00, 0x00, 0x2c])).status, HELLO_INVALID);
  t.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])).status, HELLO_INVALID, 'empty record');
  t.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x48, 0x01])).status, HELLO_INVALID, 'record over 2^14');
});

t.test('oversized: a hello announcing more than MAX_HELLO_BYTES is refused from its header', async (t) => {
  const n = MAX_HELLO_BYTES;
  const head = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  t.equal(parseClientHello(head).status, HELLO_OVERSIZED);
});

t.test('fuzz: mutations of real hellos and random bytes never throw and never invent a name', async (t) => {
  const base = [await nodeHello({ servername: 'fuzz.example.test' }), await nodeHello({ servername: 'x.test', maxVersion: 'TLSv1.2' })];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const counts = [0, 0, 0, 0];
  const failures: string[] = [];
  const check = (input: Buffer) => {
    const r = parseClientHello(input);
    counts[r.status]!++;
    if (r.status === HELLO_OK && r.serverName !== null && !NAME.test(r.serverName)) throw new Error(`invented name ${JSON.stringify(r.serverName)}`);
    if (r.status !== HELLO_OK && r.serverName !== null) throw new Error('a name on a refused hello');
  };
  for (let i = 0; i < 20000; i++) {
    const src = base[i % 2]!;
    let m = Buffer.from(src);
    switch (i % 5) {
      case 0:
        m[rand(m.length)]! ^= 1 << rand(8);
        break; // one bit flip
      case 1:
        for (let k = 0; k < 8; k++) m[rand(m.length)] = rand(256);
        break; // several bytes
      case 2: {
        const p = 5 + rand(m.length - 7);
        m.writeUInt16BE(rand(65536), p);
        break;
      } // a length lie
      case 3:
        m = m.subarray(0, rand(m.length));
        break; // truncation
      default:
        m = Buffer.from(Array.from({ length: rand(600) }, () => rand(256)));
        break; // noise
    }
    try {
      check(m);
    } catch (error) {
      failures.push(`${(error as Error).message}: ${m.toString('hex')}`);
    }
  }
  t.same(failures, [], 'no input threw or produced a bad name');
  // The fuzzer reached each outcome (the mutations are not all trivially refused).
  t.ok(counts[HELLO_OK]! > 100, `ok: ${counts[HELLO_OK]}`);
  t.ok(counts[HELLO_INVALID]! > 1000, `invalid: ${counts[HELLO_INVALID]}`);
  t.ok(counts[HELLO_INCOMPLETE]! > 100, `incomplete: ${counts[HELLO_INCOMPLETE]}`);
});

t.test('server names are validated: bad bytes, empty labels, a trailing dot', async (t) => {
  const hello = await nodeHello({ servername: 'abc.test' });
  const at = hello.indexOf(Buffer.from('abc.test'));
  t.ok(at > 0);
  for (const [replacement, why] of [
    ['ab\x00.test', 'NUL'],
    ['ab/.test', 'slash'],
    ['a..test\x2e', 'empty label'],
    ['ab c.tst', 'space'],
  ] as const) {
    const m = Buffer.from(hello);
    Buffer.from(replacement, 'latin1').copy(m, at);
    t.equal(parseClientHello(m).status, HELLO_INVALID, why);
  }
  const trailing = Buffer.from(hello);
  Buffer.from('abc.tes.', 'latin1').copy(trailing, at);
  t.equal(parseClientHello(trailing).serverName, 'abc.tes', 'a trailing dot is dropped');
});
