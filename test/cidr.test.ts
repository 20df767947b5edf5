import t from 'tap';
import { ipBytes, parseCidr } from '../src/config/cidr.js';
import { CidrList, addressInBlocks, parseAddress } from '../src/routing/cidr.js';

// One address parser (config/cidr.ts) under both the config check and the run-time matcher.
t.test('the matcher accepts exactly what the config check accepts', async (t) => {
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fd00::/129', '1.2.3.4/', 'x', '::ffff:10.0.0.0/104']) {
    t.type(parseCidr(bad), 'string', `config refuses ${bad}`);
    t.throws(() => new CidrList([bad]), { message: parseCidr(bad) as string }, `matcher refuses ${bad} with the same message`);
  }
  for (const good of ['10.0.0.0/8', '0.0.0.0/0', 'fd00::/8', '::/0', '::ffff:0:0/96', '192.168.1.7', '2001:db8::1']) {
    t.type(parseCidr(good), 'object', good);
    t.doesNotThrow(() => new CidrList([good]), good);
  }
});

t.test('addresses: IPv4, IPv6, IPv4-mapped however spelled, zones', async (t) => {
  t.same(parseAddress('10.1.2.3'), { v4: true, w: Uint32Array.of(0, 0, 0, 0x0a010203) });
  t.same(parseAddress('::ffff:10.1.2.3'), { v4: true, w: Uint32Array.of(0, 0, 0, 0x0a010203) });
  t.same(parseAddress('::ffff:a01:203'), { v4: true, w: Uint32Array.of(0, 0, 0, 0x0a010203) }, 'hex-spelled mapped address');
  t.same(parseAddress('fe80::1%eth0'), { v4: false, w: Uint32Array.of(0xfe800000, 0, 0, 1) });
  t.equal(parseAddress('10.1.2'), null);
  t.same([...ipBytes('::ffff:10.1.2.3')!], [10, 1, 2, 3], 'PROXY v2 writes the IPv4 it carries');
  t.ok(addressInBlocks(['10.0.0.0/8'], '::ffff:a01:203'));
  t.ok(addressInBlocks(['::ffff:0:0/96'], '10.1.2.3'), 'the mapped prefix reaches IPv4 clients');
  t.ok(addressInBlocks(['2001:db8::/32'], '2001:db8:ffff::1'));
  t.notOk(addressInBlocks(['2001:db8::/33'], '2001:db8:ffff::1'));
  t.notOk(addressInBlocks(['10.0.0.0/8'], '11.0.0.1'));
});
