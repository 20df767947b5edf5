// The stats page's live half (browser JavaScript, inlined into the page after PAGE_RENDER, in
// the same function scope). Data: /api/events (server-sent events: a /api/stats snapshot every
// interval and each state transition at once), /api/history for charts and timelines at the
// listener's own sampling pace. Without EventSource it polls /api/stats.
//
// The DOM is patched, not replaced: each section's new HTML is parsed off-document and merged
// into the live nodes (children matched by tag and data-key), so a re-render every second
// changes only the text that changed and the admin buttons under the pointer stay the same
// elements — a click is never lost to a re-render.
//
// Admin: a login dialog checks the credentials on /api/whoami; they are kept in sessionStorage
// and sent as basic auth by fetch, with `x-requested-with` so a 401 brings no browser prompt.

export const PAGE_SCRIPT = String.raw`
  var stats = null, hist = {}, evts = [], lastMsg = 0, histEvery = 10000, histTimer = null, deferred = false;
  var auth = sessionStorage.getItem('switchyard-auth'), user = sessionStorage.getItem('switchyard-user') || '';
  var $ = function (id) { return document.getElementById(id); };

  // ---- DOM patching ----
  function sameNode(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName &&
      (a.nodeType !== 1 || a.getAttribute('data-key') === b.getAttribute('data-key'));
  }
  function morph(from, to) {
    var i, name, attrs = to.attributes;
    for (i = 0; i < attrs.length; i++) if (from.getAttribute(attrs[i].name) !== attrs[i].value) from.setAttribute(attrs[i].name, attrs[i].value);
    for (i = from.attributes.length - 1; i >= 0; i--) { name = from.attributes[i].name; if (!to.hasAttribute(name)) from.removeAttribute(name); }
    // The attribute is only the default: a select the user touched keeps its own choice otherwise.
    if (from.nodeName === 'OPTION') from.selected = to.hasAttribute('selected');
    morphChildren(from, to);
  }
  function morphChildren(from, to) {
    var f = from.firstChild, t = to.firstChild, next, old;
    while (t) {
      next = t.nextSibling;
      if (f === null) from.appendChild(t);
      else if (sameNode(f, t)) {
        if (f.nodeType === 1) morph(f, t);
        else if (f.nodeValue !== t.nodeValue) f.nodeValue = t.nodeValue;
        f = f.nextSibling;
      } else {
        old = f;
        f = f.nextSibling;
        from.replaceChild(t, old);
      }
      t = next;
    }
    while (f) { next = f.nextSibling; from.removeChild(f); f = next; }
  }
  function patch(id, html) {
    var el = $(id), tpl = document.createElement('div');
    tpl.innerHTML = html;
    morphChildren(el, tpl);
  }

  var toastTimer = null;
  function toast(msg, bad) {
    var t = $('toast');
    t.textContent = msg;
    t.className = 'show' + (bad ? ' err' : '');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.className = ''; }, 3500);
  }

  function headers(extra) {
    var h = { 'x-requested-with': 'switchyard-page' };
    if (auth) h.authorization = 'Basic ' + auth;
    for (var k in extra) h[k] = extra[k];
    return h;
  }
  function api(method, url, body) {
    // Admin writes must be declared JSON (the listener refuses anything else): every write
    // sends a JSON body, {} when it has nothing to say (reload).
    var write = method !== 'GET';
    return fetch(url, { method: method, headers: headers(write ? { 'content-type': 'application/json' } : {}), body: write ? JSON.stringify(body || {}) : undefined })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; }); });
  }

  function render() {
    if (!stats) return;
    // Re-rendering would close an open strategy drop-down: wait until it loses focus.
    var a = document.activeElement;
    if (a && a.tagName === 'SELECT') { deferred = true; return; }
    deferred = false;
    var now = Date.now(), s = stats, admin = !!auth && s.admin;
    $('meta').textContent = 'pid ' + s.pid + (s.workers ? ' · ' + s.workers.count + ' workers' : '') + ' · config generation ' + s.generation +
      (s.configSource ? ' · ' + s.configSource : ' · embedded config');
    $('login').hidden = !s.admin || !!auth;
    $('logout').hidden = !auth;
    $('reload').hidden = !admin;
    $('who').textContent = auth ? 'admin: ' + user : (s.admin ? '' : 'read-only (no stats.auth)');
    patch('banner', renderReload(s));
    patch('summary', renderSummary(s));
    patch('frontends', renderFrontends(s) + renderTls(s, now) + renderUserCode(s, now));
    patch('backends', s.backends.length ? s.backends.map(function (b) { return renderBackend(b, hist[b.name], now, admin); }).join('') : '<div class="card empty">No backend.</div>');
    patch('events-box', renderEvents(evts.slice(-100).reverse()));
  }

  function setLive(on) {
    $('dot').className = 'dot ' + (on ? 'on' : 'off');
    $('live-text').textContent = on ? 'live' : 'reconnecting…';
  }

  function gotStats(s) {
    stats = s;
    lastMsg = Date.now();
    setLive(true);
    render();
  }

  function loadHistory() {
    return api('GET', '/api/history?minutes=60').then(function (r) {
      if (r.status !== 200 || !r.body.backends) return;
      var all = [];
      r.body.backends.forEach(function (h) {
        hist[h.backend] = h;
        all = all.concat(h.events);
        // Follow the listener's sampling pace: every 2 s at most, every 10 s at least.
        histEvery = Math.min(10000, Math.max(2000, h.intervalSeconds * 1000));
      });
      all.sort(function (a, b) { return a.t - b.t; });
      evts = all;
      render();
    }).catch(function () {}).then(function () {
      clearTimeout(histTimer);
      histTimer = setTimeout(loadHistory, histEvery);
    });
  }

  function poll() {
    api('GET', '/api/stats').then(function (r) { if (r.status === 200) gotStats(r.body); }).catch(function () { setLive(false); });
  }

  function connect() {
    if (!window.EventSource) { poll(); setInterval(poll, 2000); return; }
    var es = new EventSource('/api/events');
    es.addEventListener('stats', function (e) {
      var s;
      try { s = JSON.parse(e.data); } catch (x) { return; }
      gotStats(s);
    });
    es.addEventListener('transition', function (e) {
      var t;
      try { t = JSON.parse(e.data); } catch (x) { return; }
      evts.push(t);
      if (hist[t.backend]) hist[t.backend].events.push(t);
    });
    es.onerror = function () { setLive(false); };
  }

  function failed(r) {
    if (r.status === 401) { logout(); toast('Credentials rejected: log in again', true); }
    else toast((r.body && r.body.error) || ('HTTP ' + r.status), true);
  }
  function logout() {
    auth = null; user = '';
    sessionStorage.removeItem('switchyard-auth'); sessionStorage.removeItem('switchyard-user');
    render();
  }
  function changeState(b, s, st) {
    api('POST', '/api/backends/' + encodeURIComponent(b) + '/servers/' + encodeURIComponent(s) + '/state', { state: st }).then(function (r) {
      if (r.status === 200) toast(b + '/' + s + ' is now ' + r.body.state); else failed(r);
    }).catch(function (e) { toast(String(e), true); });
  }

  document.addEventListener('click', function (e) {
    var el = e.target.closest ? e.target.closest('button[data-act="state"]') : null;
    if (el && !el.disabled) changeState(el.getAttribute('data-backend'), el.getAttribute('data-server'), el.getAttribute('data-state'));
  });
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (!el || el.getAttribute('data-act') !== 'strategy') return;
    var b = el.getAttribute('data-backend'), v = el.value;
    el.blur();
    api('PUT', '/api/backends/' + encodeURIComponent(b) + '/strategy', { strategy: v }).then(function (r) {
      if (r.status === 200) { toast(b + ' now balances with ' + r.body.strategy); poll(); } else { failed(r); render(); }
    }).catch(function (x) { toast(String(x), true); });
  });
  document.addEventListener('focusout', function () { setTimeout(function () { if (deferred) render(); }, 0); });

  $('login').addEventListener('click', function () { $('msg').textContent = ''; $('dlg').showModal(); $('u').focus(); });
  $('cancel').addEventListener('click', function () { $('dlg').close(); });
  $('logout').addEventListener('click', logout);
  $('reload').addEventListener('click', function () {
    api('POST', '/api/reload').then(function (r) {
      if (r.status === 200) toast('Config reloaded (generation ' + r.body.generation + ')');
      else if (r.status === 422) toast('Reload rejected: ' + (r.body.errors || []).join('; '), true);
      else failed(r);
    }).catch(function (x) { toast(String(x), true); });
  });
  $('form').addEventListener('submit', function (e) {
    e.preventDefault();
    var u = $('u').value, p = $('p').value;
    var token = btoa(unescape(encodeURIComponent(u + ':' + p)));
    $('msg').textContent = '';
    fetch('/api/whoami', { headers: { authorization: 'Basic ' + token, 'x-requested-with': 'switchyard-page' } }).then(function (r) {
      if (r.status === 200) {
        auth = token; user = u;
        sessionStorage.setItem('switchyard-auth', token); sessionStorage.setItem('switchyard-user', u);
        $('dlg').close(); $('p').value = '';
        toast('Logged in as ' + u);
        render();
      } else {
        $('msg').textContent = r.status === 403 ? 'Admin is disabled (set stats.auth).' : 'Wrong username or password.';
      }
    }).catch(function (x) { $('msg').textContent = String(x); });
  });

  // Time in state and the charts' "now" move every second, between snapshots too.
  setInterval(function () {
    if (Date.now() - lastMsg > 6000) setLive(false);
    if (stats) render();
  }, 1000);
  connect();
  loadHistory();
`;
