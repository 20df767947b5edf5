import t from 'tap';
import { ConfigError } from '../src/errors.js';
import { parseConfig } from '../src/config/load.js';

// The keys of the runtime API and the PROXY protocol: their forms, defaults, and an error with
// its key path for each kind of mistake.

const base = (extra = '', frontend = '', backend = '', server = '') => `
frontends:
  web: { bind: 127.0.0.1:0, backend: api${frontend} }
backends:
  api:
    servers:
      - { address: 127.0.0.1:9001${server} }
${backend}
${extra}`;

function errors(text: string): string[] {
  try {
    parseConfig(text, '/etc/switchyard/switchyard.yaml');
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

t.test('stats.socket: a path, a mapping, a list; defaults; relative paths against the config', async (t) => {
  const one = parseConfig(base('stats: { socket: run/admin.sock }'), '/etc/switchyard/switchyard.yaml');
  t.same(one.stats.sockets, [
    { path: '/etc/switchyard/run/admin.sock', address: null, mode: 0o600, user: null, group: null, level: 'admin', timeoutMs: 10_000 },
  ]);
  const many = parseConfig(
    base(`stats:
  socket:
    - { path: /run/sy/admin.sock, mode: "0660", user: root, group: 0, level: operator, timeout: 2m }
    - { address: 127.0.0.1:9999, level: user }`),
    null,
  );
  t.same(many.stats.sockets, [
    { path: '/run/sy/admin.sock', address: null, mode: 0o660, user: 'root', group: '0', level: 'operator', timeoutMs: 120_000 },
    { path: null, address: { host: '127.0.0.1', port: 9999 }, mode: 0o600, user: null, group: null, level: 'user', timeoutMs: 10_000 },
  ]);
  t.same(parseConfig(base(), null).stats.sockets, [], 'none by default');
});

t.test('stats.socket mistakes name their key', async (t) => {
  t.match(errors(base('stats: { socket: { address: 0.0.0.0:9999 } }')), [
    'stats.socket[0].address: the runtime API listens on loopback only (127.0.0.1 or ::1), got 0.0.0.0',
  ]);
  t.match(errors(base('stats: { socket: { path: /a.sock, address: 127.0.0.1:1 } }')), ['stats.socket[0]: set path or address, not both']);
  t.match(errors(base('stats: { socket: { level: admin } }')), ['stats.socket[0]: expected a path or an address']);
  t.match(errors(base('stats: { socket: [ { path: /a, level: root } ] }')), [/^stats\.socket\[0\]\.level: expected one of user, operator, admin/]);
  t.match(errors(base('stats: { socket: { path: /a, mode: "0999" } }')), ['stats.socket[0].mode: expected an octal file mode like "0600"']);
  t.match(errors(base('stats: { socket: { address: 127.0.0.1:1, mode: "0600" } }')), [
    'stats.socket[0]: mode, user and group apply to a Unix socket path, not to an address',
  ]);
});

t.test('accept_proxy, trusted_sources, send_proxy, check_send_proxy', async (t) => {
  const c = parseConfig(
    base('', ', accept_proxy: true, trusted_sources: [10.0.0.0/8, "::1"]', '    send_proxy: v2\n    check_send_proxy: false', ', send_proxy: v1'),
    null,
  );
  t.equal(c.frontends[0]!.acceptProxy, true);
  t.same(c.frontends[0]!.trustedSources, ['10.0.0.0/8', '::1']);
  t.equal(c.backends[0]!.sendProxy, 2);
  t.equal(c.backends[0]!.servers[0]!.sendProxy, 1);
  t.equal(c.backends[0]!.health.sendProxy, false);
  const d = parseConfig(base(), null);
  t.equal(d.frontends[0]!.acceptProxy, false);
  t.equal(d.backends[0]!.sendProxy, 0);
  t.equal(d.backends[0]!.health.sendProxy, 'auto');
  t.match(errors(base('', ', accept_proxy: true, trusted_sources: [10.0.0.0/33]')), [
    'frontends.web.trusted_sources[0]: prefix length must be 0 to 32 in "10.0.0.0/33"',
  ]);
  t.match(errors(base('', ', trusted_sources: [10.0.0.0/8]')), [
    'frontends.web.trusted_sources: trusted_sources limits who may send the PROXY header: it needs accept_proxy: true',
  ]);
  t.match(errors(base('', '', '    send_proxy: v3')), [/^backends\.api\.send_proxy: expected one of v1, v2, none/]);
  t.match(errors(base('', ', accept_proxy: yes please')), [/^frontends\.web\.accept_proxy: /]);
  t.match(errors(base('', '', '    send_proxy: v1\n    tls: {}')), [
    'backends.api.send_proxy: send_proxy is not supported together with tls to the servers yet',
  ]);
  t.match(errors(base('', ', mode: tcp, accept_proxy: true, sni_routes: { a.example.com: api }', '    mode: tcp')), [
    'frontends.web.accept_proxy: accept_proxy is not supported together with tls or sni_routes yet',
  ]);
});
