// Forwarded headers and `trusted_proxies`: a client-sent `Forwarded` never reaches a server as
// the client wrote it; X-Forwarded-For and Forwarded are kept and appended to only when the
// connection's peer is in the frontend's trusted_proxies (empty by default), and replaced
// otherwise; `[0.0.0.0/0, ::/0]` appends always (HAProxy's behaviour); a reload that changes
// the list applies to the next request, even on an open keep-alive connection.
import t from 'tap';
import { request, Agent } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { isTrustedPeer } from '../src/balancer/trusted-proxies.js';
import { backendConfig, config, frontendConfig, httpServer, start } from './support/proxy-harness.js';

const SPOOFED = { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=198.51.100.7;proto=https', 'x-forwarded-proto': 'https' };

async function through(trustedProxies: string[]) {
  const srv = await httpServer('a');
  const sy = await start(config([frontendConfig('web', 'http', 'api', { trustedProxies })], [backendConfig('api', 'http', [srv.address])]));
  const port = sy.frontendAddress('web').port;
  const send = async (headers: Record<string, string>, dispatcher?: Agent) => {
    await (await request(`http://127.0.0.1:${port}/`, { headers, ...(dispatcher ? { dispatcher } : {}) })).body.text();
    return srv.seen.at(-1)!.headers;
  };
  return {
    srv,
    sy,
    send,
    close: async () => {
      await sy.stop(200);
      await srv.close();
    },
  };
}

t.test('default (trust nobody): client-sent X-Forwarded-For and Forwarded are replaced', async (t) => {
  const p = await through([]);
  t.teardown(p.close);
  const h = await p.send(SPOOFED);
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the peer switchyard saw');
  t.equal(h.forwarded, 'for=127.0.0.1;proto=http', "Forwarded is ours alone: the client's never reaches the server");
  t.equal(h['x-forwarded-proto'], 'http', 'X-Forwarded-Proto is ours');
});

t.test('a peer outside trusted_proxies is not trusted', async (t) => {
  const p = await through(['10.0.0.0/8', 'fd00::/8']);
  t.teardown(p.close);
  const h = await p.send(SPOOFED);
  t.equal(h['x-forwarded-for'], '127.0.0.1');
  t.equal(h.forwarded, 'for=127.0.0.1;proto=http');
});

t.test('a trusted peer: X-Forwarded-For and Forwarded are kept and appended to', async (t) => {
  const p = await through(['127.0.0.0/8']);
  t.teardown(p.close);
  const h = await p.send(SPOOFED);
  t.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.equal(h.forwarded, 'for=198.51.100.7;proto=https, for=127.0.0.1;proto=http');
  t.equal(h['x-forwarded-proto'], 'http', 'X-Forwarded-Proto is still ours (this hop is http)');
  const only = await p.send({ forwarded: 'for=192.0.2.1' });
  t.equal(only['x-forwarded-for'], '127.0.0.1', 'no prior X-Forwarded-For: ours alone');
  t.equal(only.forwarded, 'for=192.0.2.1, for=127.0.0.1;proto=http', 'a prior Forwarded alone is appended to');
});

t.test('[0.0.0.0/0, ::/0] appends always (HAProxy option forwardfor)', async (t) => {
  const p = await through(['0.0.0.0/0', '::/0']);
  t.teardown(p.close);
  const h = await p.send(SPOOFED);
  t.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});

t.test('a reload that changes trusted_proxies applies to the next request on an open connection', async (t) => {
  const p = await through([]);
  t.teardown(p.close);
  const agent = new Agent({ connections: 1 });
  t.teardown(() => agent.close());
  t.equal((await p.send(SPOOFED, agent))['x-forwarded-for'], '127.0.0.1');
  const fe = frontendConfig('web', 'http', 'api', { trustedProxies: ['127.0.0.1/32'] });
  const cfg = p.sy.runtime().config;
  const r = await p.sy.apply({ ...cfg, frontends: [{ ...fe, bind: cfg.frontends[0]!.bind }] });
  t.ok(r.ok, 'reloaded');
  t.equal((await p.send(SPOOFED, agent))['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'trusted after the reload');
});

t.test('trusted_proxies: matching and config errors', async (t) => {
  const fe = (list: string[]) => ({ ...frontendConfig('w', 'http', 'b'), trustedProxies: list });
  t.ok(isTrustedPeer(fe(['127.0.0.1/32']), '::ffff:127.0.0.1'), 'an IPv4-mapped peer matches its IPv4 block');
  t.ok(isTrustedPeer(fe(['::1/128']), '::1'));
  t.notOk(isTrustedPeer(fe(['10.0.0.0/8']), '11.0.0.1'));
  t.notOk(isTrustedPeer(fe([]), '127.0.0.1'));
  const yaml = (list: string) =>
    `frontends:\n  web: { bind: 1, backend: b, trusted_proxies: ${list} }\nbackends:\n  b: { servers: [{ address: "127.0.0.1:1" }] }\n`;
  t.same(parseConfig(yaml('[10.0.0.1, "FD00::/8"]'), null).frontends[0]!.trustedProxies, ['10.0.0.1/32', 'fd00::/8'], 'a bare address is a /32 (/128)');
  for (const bad of ['[10.0.0.0/33]', '[example.com]', '[::/129]']) {
    const error = (() => {
      try {
        parseConfig(yaml(bad), 'f.yaml');
      } catch (e) {
        return e as ConfigError;
      }
      return null;
    })();
    t.type(error, ConfigError, `${bad} is refused`);
    t.match(error?.issues[0]?.path, /^frontends\.web\.trusted_proxies\[0\]$/, `${bad}: the error names the key path`);
  }
});
