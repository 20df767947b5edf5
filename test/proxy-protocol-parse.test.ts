import t from 'tap';
import { randomBytes } from 'node:crypto';
import { MAX_V2_BYTES, parseProxyHeader, PROXY_ERROR, PROXY_INCOMPLETE, PROXY_OK, V2_SIGNATURE, V1_MAX_BYTES } from '../src/proxy-protocol/parse.js';
import { checkProxyHeader, proxyHeader } from '../src/proxy-protocol/header.js';
import { parseCidr } from '../src/config/cidr.js';
import { addressInBlocks } from '../src/routing/cidr.js';

// The PROXY protocol parser is strict and bounded (haproxy.org proxy-protocol.txt): these
// check every shape it accepts against the spec's examples, that what we send parses back to
// the same endpoints, and, fuzz-style, that no input makes it throw, claim more bytes than it
// got, or wait for more than the largest header allowed.

const v1 = (s: string) => Buffer.from(s, 'latin1');

t.test('v1: TCP4, TCP6 and UNKNOWN as the spec writes them', async (t) => {
  const r = parseProxyHeader(v1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n'));
  t.equal(r.status, PROXY_OK);
  t.equal(r.length, 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'.length);
  t.same(r.addresses, { family: 'tcp4', srcIp: '192.168.0.1', srcPort: 56324, dstIp: '192.168.0.11', dstPort: 443 });
  const r6 = parseProxyHeader(v1('PROXY TCP6 2001:db8::1 ::1 65535 0\r\n'));
  t.equal(r6.status, PROXY_OK);
  t.same(r6.addresses, { family: 'tcp6', srcIp: '2001:db8::1', srcPort: 65535, dstIp: '::1', dstPort: 0 });
  const u = parseProxyHeader(v1('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'));
  t.equal(u.status, PROXY_OK, 'UNKNOWN may carry anything up to the CRLF');
  t.equal(u.addresses, null, 'and keeps the real addresses');
  t.equal(parseProxyHeader(v1('PROXY UNKNOWN\r\n')).status, PROXY_OK);
});

t.test('v1: partial lines wait, malformed ones are refused', async (t) => {
  const full = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
  for (let i = 1; i < full.length; i++) t.equal(parseProxyHeader(v1(full.slice(0, i))).status, PROXY_INCOMPLETE, `prefix of ${i} bytes waits`);
  const bad = [
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n', // LF without CR
    'PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n', // leading zero
    'PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n', // port out of range
    'PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n', // leading zero in an octet
    'PROXY TCP4 192.168.0.1  192.168.0.11 1 2\r\n', // two spaces
    'PROXY TCP4 ::1 ::1 1 2\r\n', // family mismatch
    'PROXY TCP6 1.2.3.4 ::1 1 2\r\n',
    'PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n',
    'PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n',
    'PROXY UNKNOWNX\r\n',
    'PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n',
    'PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n',
    'proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n',
    'GET / HTTP/1.1\r\n\r\n',
    `PROXY TCP4 1.2.3.4 1.2.3.4 1 2\x00\r\n`,
  ];
  for (const b of bad) t.equal(parseProxyHeader(v1(b)).status, PROXY_ERROR, JSON.stringify(b));
  t.equal(parseProxyHeader(v1(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES)}`)).status, PROXY_ERROR, 'no CRLF within 107 bytes');
});

t.test('v2: PROXY over IPv4 and IPv6, LOCAL, UNSPEC, TLVs skipped', async (t) => {
  const h4 = proxyHeader(2, { srcIp: '10.1.2.3', srcPort: 40000, dstIp: '10.0.0.1', dstPort: 8080 });
  const r4 = parseProxyHeader(Buffer.concat([h4, v1('payload')]));
  t.equal(r4.status, PROXY_OK);
  t.equal(r4.length, h4.length);
  t.same(r4.addresses, { family: 'tcp4', srcIp: '10.1.2.3', srcPort: 40000, dstIp: '10.0.0.1', dstPort: 8080 });
  const h6 = proxyHeader(2, { srcIp: '2001:db8::7', srcPort: 1, dstIp: 'fe80::1:2', dstPort: 2 });
  t.same(parseProxyHeader(h6).addresses, { family: 'tcp6', srcIp: '2001:db8::7', srcPort: 1, dstIp: 'fe80::1:2', dstPort: 2 });
  const local = parseProxyHeader(checkProxyHeader(2));
  t.equal(local.status, PROXY_OK);
  t.equal(local.addresses, null, 'LOCAL keeps the real addresses');
  // A header with a TLV after the addresses (len covers it): the length is honoured.
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]);
  const withTlv = Buffer.concat([h4.subarray(0, 14), Buffer.from([0, 12 + tlv.length]), h4.subarray(16), tlv, v1('rest')]);
  const rt = parseProxyHeader(withTlv);
  t.equal(rt.status, PROXY_OK);
  t.equal(rt.length, h4.length + tlv.length);
  const unspec = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])]);
  t.equal(parseProxyHeader(unspec).addresses, null);
  for (let i = 1; i < h4.length; i++) t.equal(parseProxyHeader(h4.subarray(0, i)).status, PROXY_INCOMPLETE);
});

t.test('v2: wrong version, command, family, short address block or oversized length', async (t) => {
  const h4 = proxyHeader(2, { srcIp: '10.1.2.3', srcPort: 1, dstIp: '10.0.0.1', dstPort: 2 });
  const mutate = (at: number, v: number) => {
    const b = Buffer.from(h4);
    b[at] = v;
    return b;
  };
  t.equal(parseProxyHeader(mutate(12, 0x11)).status, PROXY_ERROR, 'version 1 in a v2 header');
  t.equal(parseProxyHeader(mutate(12, 0x22)).status, PROXY_ERROR, 'command 2');
  t.equal(parseProxyHeader(mutate(13, 0x41)).status, PROXY_ERROR, 'family 4');
  t.equal(parseProxyHeader(mutate(15, 4)).status, PROXY_ERROR, 'IPv4 block of 4 bytes');
  t.equal(parseProxyHeader(mutate(5, 0x0a)).status, PROXY_ERROR, 'signature broken');
  const big = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  t.equal(parseProxyHeader(big).status, PROXY_ERROR, 'a length past the bound is refused at once, not waited for');
});

t.test('v1 headers we send parse back to the same endpoints; mixed families are mapped', async (t) => {
  const e = { srcIp: '::ffff:127.0.0.2', srcPort: 5000, dstIp: '127.0.0.1', dstPort: 80 };
  const r = parseProxyHeader(proxyHeader(1, e));
  t.same(r.addresses, { family: 'tcp4', srcIp: '127.0.0.2', srcPort: 5000, dstIp: '127.0.0.1', dstPort: 80 });
  const mixed = parseProxyHeader(proxyHeader(1, { srcIp: '2001:db8::1', srcPort: 1, dstIp: '127.0.0.1', dstPort: 2 }));
  t.same(mixed.addresses, { family: 'tcp6', srcIp: '2001:db8::1', srcPort: 1, dstIp: '::ffff:127.0.0.1', dstPort: 2 });
  t.equal(proxyHeader(1, null).toString(), 'PROXY UNKNOWN\r\n');
});

t.test('fuzz: random and mutated input never throws, never over-reads, stays bounded', async (t) => {
  const seeds = [
    proxyHeader(1, { srcIp: '1.2.3.4', srcPort: 1, dstIp: '5.6.7.8', dstPort: 2 }),
    proxyHeader(2, { srcIp: '1.2.3.4', srcPort: 1, dstIp: '5.6.7.8', dstPort: 2 }),
    proxyHeader(2, { srcIp: '2001:db8::1', srcPort: 1, dstIp: '::1', dstPort: 2 }),
  ];
  let ok = 0;
  let errors = 0;
  let incomplete = 0;
  for (let i = 0; i < 20000; i++) {
    let input: Buffer;
    if (i % 3 === 0) input = randomBytes(1 + (i % 300));
    else {
      input = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + (i % 4);
      for (let f = 0; f < flips; f++) input[(i * 7919 + f * 104729) % input.length] = (i * 31 + f) & 0xff;
      if (i % 5 === 0) input = input.subarray(0, i % input.length);
      if (i % 7 === 0) input = Buffer.concat([input, randomBytes(i % 50)]);
    }
    const r = parseProxyHeader(input);
    if (r.status === PROXY_OK) {
      ok++;
      if (r.length < 8 || r.length > input.length) t.fail(`OK with length ${r.length} for ${input.length} bytes`);
    } else if (r.status === PROXY_ERROR) errors++;
    else {
      incomplete++;
      if (input.length >= MAX_V2_BYTES) t.fail('waiting past the largest header allowed');
    }
  }
  t.ok(ok > 0 && errors > 0 && incomplete > 0, `every outcome seen (ok ${ok}, error ${errors}, incomplete ${incomplete})`);
});

t.test('CIDR ranges: v4, v6, mapped addresses, bare addresses, bad text', async (t) => {
  const ranges = Object.freeze(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);
  for (const c of ranges) t.type(parseCidr(c), 'object', `${c} is valid config`);
  t.ok(addressInBlocks(ranges, '10.200.3.4'));
  t.ok(addressInBlocks(ranges, '::ffff:10.1.1.1'), 'IPv4-mapped IPv6 matches the IPv4 range');
  t.ok(addressInBlocks(ranges, '192.168.1.7'));
  t.notOk(addressInBlocks(ranges, '192.168.1.8'));
  t.ok(addressInBlocks(ranges, 'fd12:3456::1'));
  t.notOk(addressInBlocks(ranges, 'fe80::1'));
  t.notOk(addressInBlocks(ranges, 'not an ip'));
  t.type(parseCidr('10.0.0.0/33'), 'string');
  t.type(parseCidr('10.0.0/8'), 'string');
  t.type(parseCidr('::/129'), 'string');
  t.type(parseCidr(42), 'string');
  t.ok(addressInBlocks(['0.0.0.0/0'], '8.8.8.8'));
});
