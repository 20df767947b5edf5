// @ts-check
// Hooks that go with the canary router: tell the servers and the client which way a request
// went. onRequest runs after the routing decision, before the request is sent; onResponse
// runs on the server's response head. Both edit headers through the same mechanism as the
// config's header rules (framing fields such as content-length cannot be touched).

/** @type {import('switchyard').Hook} */
const hooks = {
  onRequest(req) {
    req.setHeader('x-routed-to', req.backend ?? 'none');
    req.removeHeader('x-debug');
  },
  onResponse(req, res) {
    if (req.backend === 'canary') res.setHeader('x-canary', `served by ${req.server}`);
    if (res.status >= 500) res.setHeader('cache-control', 'no-store');
  },
};

export default hooks;
