// The stats page's rendering half (browser JavaScript, kept as a string and inlined into the
// page): formatting, the SVG charts and timelines, and one HTML string per section built from
// the /api/stats JSON (cells keyed by the column table's names, as in the CSV header) and the
// /api/history JSON. Plain ES5 on purpose: it runs as is, no build step, no library fetched.
// page-script.ts holds the live half (event stream, DOM patching, login, admin calls); both
// share the scope of one function (see page.ts).

export const PAGE_RENDER = String.raw`
  var STRATEGIES = ['round-robin', 'least-connections', 'ip-hash', 'random'];
  var STATE_COLOR = { UP: '#2da44e', DOWN: '#cf222e', MAINT: '#218bff', DRAIN: '#d4a72c', NOLB: '#8c959f' };

  function esc(v) {
    return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function num(v) { return v == null || v === '' ? '–' : Number(v).toLocaleString('en-US'); }
  function bytes(v) {
    if (v == null || v === '') return '–';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0, n = Number(v);
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + u[i];
  }
  function dur(sec) {
    sec = Math.max(0, Math.floor(sec));
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + s + 's';
    return s + 's';
  }
  function ms(v) { return v == null || v === '' ? '–' : (v < 10 ? Number(v).toFixed(1) : Math.round(v)) + ' ms'; }
  function perSec(v) { return (v < 10 ? Number(v).toFixed(1) : Math.round(v)) + '/s'; }
  function clock(t) { return new Date(t).toLocaleTimeString('en-GB'); }
  function span(minutes) { return minutes >= 60 ? Math.round(minutes / 60) + ' h' : minutes >= 1 ? Math.round(minutes) + ' min' : Math.round(minutes * 60) + ' s'; }

  /** HAProxy's transitional statuses ('UP 2/3', 'DOWN 1/2') get their own colours. */
  function stateClass(status) {
    var s = String(status || ''), w = s.split(' ')[0];
    if (s.indexOf('/') > 0) return w === 'DOWN' ? 's-GU' : 's-GD';
    return 's-' + w;
  }
  function badge(status, title) {
    var w = String(status).split(' ')[0];
    return '<span class="badge ' + stateClass(status) + '" data-state="' + esc(w) + '"' + (title ? ' title="' + esc(title) + '"' : '') + '>' + esc(status) + '</span>';
  }
  function sub(html, title) { return '<span class="sub"' + (title ? ' title="' + esc(title) + '"' : '') + '>' + html + '</span>'; }
  function td(label, html, cls) { return '<td data-label="' + esc(label) + '"' + (cls ? ' class="' + cls + '"' : '') + '>' + html + '</td>'; }

  /**
   * The window a chart shows: back to the oldest sample (rounded up to 10 s), at least 30 s, at
   * most max — a listener started a minute ago draws a full chart, not a sliver at the edge.
   */
  function windowOf(samples, now, maxMinutes) {
    var first = samples.length ? samples[0].t : now;
    return Math.min(maxMinutes, Math.max(0.5, Math.ceil((now - first) / 10000) / 6));
  }

  // ---- a line chart with its area, over [now - minutes, now] ----
  function lineChart(points, now, minutes, empty) {
    var W = 600, H = 64, t0 = now - minutes * 60000, max = 0, i, p, d = '', first = null, lastX = 0, pen = false, last = null;
    for (i = 0; i < points.length; i++) if (points[i].t >= t0 && points[i].v != null && points[i].v > max) max = points[i].v;
    var top = max > 0 ? max * 1.15 : 1, area = '';
    for (i = 0; i < points.length; i++) {
      p = points[i];
      if (p.t < t0) continue;
      if (p.v == null) { pen = false; continue; }
      var x = ((p.t - t0) / (now - t0)) * W, y = H - 3 - (p.v / top) * (H - 8);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      if (first === null) first = x;
      lastX = x;
      pen = true;
      last = p.v;
    }
    if (d && first !== null && d.indexOf('M', 1) < 0) area = '<path d="' + d + 'L' + lastX.toFixed(1) + ' ' + H + 'L' + first.toFixed(1) + ' ' + H + 'Z" fill="#0969da" fill-opacity=".12" stroke="none"/>';
    var svg = '<svg viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none" role="img">' + area +
      (d ? '<path d="' + d + '" fill="none" stroke="#0969da" stroke-width="2" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>'
        : '<text x="' + W / 2 + '" y="' + (H / 2 + 4) + '" text-anchor="middle" class="nodata">' + esc(empty || 'no data yet') + '</text>') + '</svg>';
    return { svg: svg, last: last, max: max };
  }
  function chartBox(kind, title, c, minutes, fmt) {
    return '<div class="chart" data-chart="' + kind + '"><div class="t"><span>' + esc(title) + '</span><span><b>' + esc(c.last == null ? '–' : fmt(c.last)) +
      '</b> now · max ' + esc(c.max > 0 ? fmt(c.max) : '–') + '</span></div>' + c.svg +
      '<div class="axis"><span>−' + esc(span(minutes)) + '</span><span>now</span></div></div>';
  }

  // ---- health timeline of one server: samples and transitions, coloured by state ----
  function timeline(samples, events, now, minutes, current) {
    var W = 1000, t0 = now - minutes * 60000, out = '', i, pts = [];
    for (i = 0; i < samples.length; i++) pts.push({ t: samples[i].t, s: samples[i].state });
    for (i = 0; i < events.length; i++) pts.push({ t: events[i].t, s: events[i].to });
    pts.sort(function (a, b) { return a.t - b.t; });
    pts.push({ t: now, s: current });
    for (i = 0; i < pts.length - 1; i++) {
      var a = Math.max(pts[i].t, t0), b = pts[i + 1].t;
      // One rect per stretch of one state, not one per sample (no seams between them).
      while (i + 2 < pts.length && pts[i + 1].s === pts[i].s) { i++; b = pts[i + 1].t; }
      if (b <= t0 || b <= a) continue;
      var x = (a - t0) / (now - t0) * W, w = Math.max(2, (b - a) / (now - t0) * W);
      out += '<rect data-state="' + esc(pts[i].s) + '" x="' + x.toFixed(1) + '" y="0" width="' + w.toFixed(1) + '" height="16" fill="' + (STATE_COLOR[pts[i].s] || '#8c959f') +
        '"><title>' + esc(pts[i].s + ' ' + clock(a) + '–' + clock(b)) + '</title></rect>';
    }
    return '<svg viewBox="0 0 ' + W + ' 16" preserveAspectRatio="none" role="img" aria-label="health over the last ' + esc(span(minutes)) + '">' + out + '</svg>';
  }

  // ---- response codes: a bar split by class, and the classes that are not zero ----
  var CLASSES = [['hrsp_1xx', '1xx', '#8c959f'], ['hrsp_2xx', '2xx', '#2da44e'], ['hrsp_3xx', '3xx', '#218bff'], ['hrsp_4xx', '4xx', '#d4a72c'], ['hrsp_5xx', '5xx', '#cf222e'], ['hrsp_other', 'other', '#6e7781']];
  function codes(st) {
    if (st.hrsp_2xx == null) return '<span class="kv">tcp</span>';
    var total = 0, bar = '', text = [], i, n, x = 0;
    for (i = 0; i < CLASSES.length; i++) total += Number(st[CLASSES[i][0]] || 0);
    for (i = 0; i < CLASSES.length; i++) {
      n = Number(st[CLASSES[i][0]] || 0);
      if (!n) continue;
      // SVG attributes, not inline styles: the CSP allows no style attribute.
      bar += '<rect x="' + x.toFixed(2) + '" y="0" width="' + (n / total * 100).toFixed(2) + '" height="8" fill="' + CLASSES[i][2] + '"/>';
      x += n / total * 100;
      text.push('<span class="' + (CLASSES[i][1] === '5xx' ? 't5' : CLASSES[i][1] === '4xx' ? 't4' : '') + '">' + CLASSES[i][1] + ' ' + num(n) + '</span>');
    }
    var title = CLASSES.map(function (c) { return c[1] + ': ' + num(st[c[0]] || 0); }).join(', ');
    return '<svg class="codes" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="' + esc(title) + '">' + bar + '</svg>' + sub(text.length ? text.join(' · ') : 'no response yet', title);
  }
  /** Total time DOWN (whole seconds, HAProxy's downtime) and how often (chkdown). */
  function downNote(st) {
    var secs = Number(st.downtime || 0), times = Number(st.chkdown || 0);
    if (!secs && !times) return sub('never down');
    var how = secs ? dur(secs) : '&lt;1s';
    return sub(times ? times + '× down · ' + how : 'down ' + how, 'DOWN ' + times + ' times, ' + secs + ' s in all');
  }
  function errors(a, b) { return (a || b) ? '<span class="bad">' + num(a || 0) + ' / ' + num(b || 0) + '</span>' : '0 / 0'; }

  function renderSummary(s) {
    var c = { UP: 0, DOWN: 0, MAINT: 0, DRAIN: 0 }, srv = 0, beUp = 0, rate = 0, cur = 0, e5 = 0;
    s.backends.forEach(function (b) {
      if (b.status === 'UP') beUp++;
      b.servers.forEach(function (x) { srv++; c[x.state] = (c[x.state] || 0) + 1; });
    });
    s.frontends.forEach(function (f) {
      rate += Number(f.stats.req_rate != null ? f.stats.req_rate : f.stats.rate || 0);
      cur += Number(f.stats.scur || 0);
      e5 += Number(f.stats.hrsp_5xx || 0);
    });
    var pills = ['UP', 'DOWN', 'MAINT', 'DRAIN'].map(function (k) {
      return '<span class="badge s-' + k + '" data-k="' + k.toLowerCase() + '">' + c[k] + ' ' + k + '</span>';
    }).join('');
    return '<div class="tile"><div class="k">Requests/s</div><div class="v" data-k="rate">' + num(rate) + '</div></div>' +
      '<div class="tile"><div class="k">Sessions now</div><div class="v">' + num(cur) + '</div></div>' +
      '<div class="tile wide"><div class="k">Servers</div><div class="v">' + srv + ' <small>in ' + s.backends.length + ' backend' + (s.backends.length === 1 ? '' : 's') +
      (beUp < s.backends.length ? ', <span class="bad">' + (s.backends.length - beUp) + ' DOWN</span>' : '') + '</small></div><div class="pills">' + pills + '</div></div>' +
      '<div class="tile"><div class="k">5xx answered</div><div class="v' + (e5 ? ' bad' : '') + '">' + num(e5) + '</div></div>' +
      '<div class="tile"><div class="k">Uptime</div><div class="v">' + dur(s.uptimeSeconds) + '</div></div>';
  }

  function renderReload(s) {
    var r = s.lastReload;
    if (!r || r.ok) return '';
    return '<div class="banner" id="reload-error"><b>Last reload rejected</b> at ' + esc(clock(r.at)) + ' — the running config (generation ' + esc(r.generation) +
      ') stays.<ul>' + r.errors.map(function (e) { return '<li>' + esc(e) + '</li>'; }).join('') + '</ul></div>';
  }

  /** A frontend's routes in order (first match wins) with their hits, under its row. */
  function renderRoutes(f) {
    if (!f.routes || !f.routes.length) return '';
    var total = 0, i;
    for (i = 0; i < f.routes.length; i++) total += f.routes[i].hits;
    var rows = f.routes.map(function (r) {
      var share = total ? Math.round(r.hits * 100 / total) : 0;
      return '<tr data-key="' + esc(f.name + '/' + r.name) + '" data-route="' + esc(r.name) + '">' + td('Route', '<b>' + esc(r.name) + '</b>', 'l') + td('Match', esc(r.match), 'l') +
        td('Action', esc(r.action), 'l') + td('Hits', num(r.hits) + sub(share + '%')) + '</tr>';
    }).join('');
    return '<tr class="routes" data-key="' + esc(f.name) + '/routes"><td colspan="9" class="wide"><table class="inner" aria-label="routes of ' + esc(f.name) + '"><thead><tr>' +
      '<th class="l">Route</th><th class="l">Match</th><th class="l">Action</th><th>Hits</th></tr></thead><tbody>' + rows + '</tbody></table></td></tr>';
  }

  function renderFrontends(s) {
    if (!s.frontends.length) return '';
    var rows = s.frontends.map(function (f) {
      var st = f.stats, http = st.req_rate != null;
      return '<tr data-key="' + esc(f.name) + '" data-frontend="' + esc(f.name) + '" data-state="UP">' +
        td('Frontend', '<b>' + esc(f.name) + '</b>' + sub(esc(f.bind) + ' → ' + esc(f.backend)), 'l name') +
        td('Mode', '<span class="tag">' + esc(f.mode) + '</span>', 'l') + td('Status', badge('OPEN'), 'l') +
        td('Sessions', num(st.scur) + ' / ' + num(st.smax) + sub('limit ' + (st.slim ? num(st.slim) : 'none'))) +
        td('Total', num(st.stot) + (http ? sub(num(st.req_tot) + ' requests') : '')) +
        td(http ? 'Requests/s' : 'Sessions/s', num(http ? st.req_rate : st.rate) + sub('max ' + num(http ? st.req_rate_max : st.rate_max))) +
        td('Bytes in / out', bytes(st.bin) + sub(bytes(st.bout) + ' out')) +
        td('Responses', codes(st), 'l') +
        td('Req. errors / denied', errors(st.ereq, st.dreq) + rateNote(f.overload)) + '</tr>' + renderRoutes(f);
    }).join('');
    return '<section class="card" id="frontends-card"><div class="head"><h2>Frontends</h2><span class="kv">' + s.frontends.length + ' listening</span></div>' +
      '<div class="scroll"><table class="rt"><thead><tr><th class="l">Frontend</th><th class="l">Mode</th><th class="l">Status</th>' +
      '<th>Sessions</th><th>Total</th><th>Rate</th><th>Bytes in / out</th><th class="l">Responses</th><th>Req. errors / denied</th></tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  // TLS: per frontend with tls (or SNI routing), handshakes by version, failures by reason, and
  // each certificate's days left (amber under 30 days, red under 7 or expired).
  function renderTls(s, now) {
    var list = s.frontends.filter(function (f) { return f.tls; });
    if (!list.length) return '';
    var rows = list.map(function (f) {
      var x = f.tls, fails = Object.keys(x.failures).filter(function (k) { return x.failures[k] > 0; });
      var failText = fails.length ? fails.map(function (k) { return esc(k.replace('_', ' ')) + ' ' + num(x.failures[k]); }).join(', ') : '–';
      var certs = x.certificates.length ? x.certificates.map(function (c) {
        var days = Math.floor((c.notAfter - now) / 86400000), cls = days < 7 ? 'bad' : days < 30 ? 't4' : '';
        return '<span class="' + cls + '">' + esc(c.names.join(', ') || c.file) + ' · ' + (days < 0 ? 'expired' : num(days) + ' days left') + '</span>';
      }).join('<br>') : (x.kind === 'sni-route' ? 'passthrough by SNI' : '–');
      return '<tr data-key="tls-' + esc(f.name) + '" data-tls="' + esc(f.name) + '">' +
        td('Frontend', '<b>' + esc(f.name) + '</b>', 'l name') +
        td('Handshakes', num(x.handshakes) + sub(x.kind === 'terminate' ? 'TLS 1.3 ' + num(x.versions['TLSv1.3']) + ' · 1.2 ' + num(x.versions['TLSv1.2']) + ' · resumed ' + num(x.resumed) : 'ClientHellos routed')) +
        td('Failures', failText, 'l') + td('Certificates', certs, 'l') + '</tr>';
    }).join('');
    return '<section class="card" id="tls-card"><div class="head"><h2>TLS</h2><span class="kv">' + list.length + ' frontend' + (list.length === 1 ? '' : 's') + '</span></div>' +
      '<div class="scroll"><table class="rt"><thead><tr><th class="l">Frontend</th><th>Handshakes</th><th class="l">Failures</th><th class="l">Certificates</th></tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  // User code (docs/programming.md): each router, hooks and strategy module with its version,
  // hot swaps so far and the errors it threw (the request fell back each time).
  function renderUserCode(s, now) {
    var list = s.userCode || [];
    if (!list.length) return '';
    var rows = list.map(function (m) {
      var last = m.lastError ? esc(m.lastError) + sub(dur((now - m.lastErrorAt) / 1000) + ' ago') : '–';
      return '<tr data-key="code-' + esc(m.kind) + '-' + esc(m.file) + '" data-code="' + esc(m.file) + '">' +
        td('Module', '<b>' + esc(m.file.split('/').pop()) + '</b>' + sub(esc(m.file)), 'l name') +
        td('Kind', esc(m.kind), 'l') +
        td('Loaded', num(m.loads) + sub('version ' + esc(String(m.version).slice(0, 12)) + ' · ' + dur((now - m.loadedAt) / 1000) + ' ago')) +
        td('Errors', m.errors ? '<b class="bad">' + num(m.errors) + '</b>' : '0') +
        td('Last error', last, 'l') + '</tr>';
    }).join('');
    return '<section class="card" id="code-card"><div class="head"><h2>User code</h2><span class="kv">' + list.length + ' module' + (list.length === 1 ? '' : 's') + '</span></div>' +
      '<div class="scroll"><table class="rt"><thead><tr><th class="l">Module</th><th class="l">Kind</th><th>Loaded</th><th>Errors</th><th class="l">Last error</th></tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  function adminButtons(b, x) {
    return '<span class="seg" role="group" aria-label="admin state of ' + esc(x.name) + '">' + ['ready', 'drain', 'maint'].map(function (a) {
      return '<button type="button" data-act="state" data-state="' + a + '" data-backend="' + esc(b.name) + '" data-server="' + esc(x.name) + '"' +
        (x.admin === a ? ' class="cur" disabled aria-pressed="true"' : ' aria-pressed="false"') + ' title="' + a + ' ' + esc(x.name) + '">' + a + '</button>';
    }).join('') + '</span>';
  }

  function strategyControl(b, admin) {
    if (!admin) return '<b>' + esc(b.strategy) + '</b>';
    var opts = STRATEGIES.slice();
    if (opts.indexOf(b.strategy) < 0) opts.push(b.strategy);
    return '<select data-act="strategy" data-backend="' + esc(b.name) + '" aria-label="strategy of ' + esc(b.name) + '">' + opts.map(function (o) {
      return '<option' + (o === b.strategy ? ' selected' : '') + '>' + esc(o) + '</option>';
    }).join('') + '</select>';
  }

  function serverRow(b, x, h, now, tlMin, admin) {
    var s = x.stats, ck = x.check, hs = null, i, http = b.mode === 'http', word = String(x.status).split(' ')[0];
    if (h) for (i = 0; i < h.servers.length; i++) if (h.servers[i].name === x.name) hs = h.servers[i];
    var evs = h ? h.events.filter(function (e) { return e.server === x.name; }) : [];
    var check = ck.enabled ? '<b>' + esc(s.check_status || '–') + '</b> ' + esc(ck.durationMs != null ? ms(ck.durationMs) : '') + sub(esc(ck.reason || ''), ck.reason)
      : '<span class="kv">no check</span>';
    return '<tr class="srv" data-key="' + esc(x.name) + '" data-backend="' + esc(b.name) + '" data-server="' + esc(x.name) + '" data-state="' + esc(word) + '">' +
      td('Server', '<b>' + esc(x.name) + '</b>' + (x.backup ? ' <span class="tag">backup</span>' : '') + sub(esc(x.address)), 'l name') +
      // The reason a server is UP is rarely news; why it is not UP always is.
      td('State', badge(x.status, x.stateReason) + sub('for ' + dur((now - x.stateSince) / 1000) + (x.stateReason && word !== 'UP' ? ' · ' + esc(x.stateReason) : ''), x.stateReason), 'l state') +
      td('Health check', check, 'l') +
      td('Weight', weightCell(x)) +
      td('Sessions', num(s.scur) + ' / ' + num(s.smax) + sub(num(s.stot) + ' total' + (s.qcur ? ' · <b data-k="squeue">' + num(s.qcur) + '</b> queued' : ''))) +
      td(http ? 'Requests/s' : 'Sessions/s', num(s.rate) + sub('max ' + num(s.rate_max))) +
      td('Bytes in / out', bytes(s.bin) + sub(bytes(s.bout) + ' out')) +
      td('Responses', codes(s), 'l') +
      td('Errors conn / resp', errors(s.econ, s.eresp) + sub(num(s.wretr) + ' retries' + (s.wredis ? ' · ' + num(s.wredis) + ' redisp.' : ''))) +
      td('Response time', ms(s.ttime) + sub('conn. ' + ms(s.ctime), 'average connect time')) +
      td('Health, last ' + span(tlMin), timeline(hs ? hs.samples : [], evs, now, tlMin, x.state) + downNote(s), 'l tl') +
      (admin ? td('Admin', adminButtons(b, x), 'l adm') : '') + '</tr>';
  }

  function renderBackend(b, h, now, admin) {
    var st = b.stats, samples = h ? h.samples : [], http = b.mode === 'http';
    var chartMin = windowOf(samples, now, 15), tlMin = windowOf(samples, now, 60);
    var rate = samples.map(function (p) { return { t: p.t, v: p.rate }; });
    var rt = samples.map(function (p) { return { t: p.t, v: p.avgMs }; });
    var rc = lineChart(rate, now, chartMin), tc = lineChart(rt, now, chartMin, http ? 'no request finished yet' : 'no response times in TCP mode');
    var rows = b.servers.map(function (x) { return serverRow(b, x, h, now, tlMin, admin); }).join('');
    return '<section class="card backend" data-key="' + esc(b.name) + '" data-backend="' + esc(b.name) + '"><div class="head"><h2>' + esc(b.name) + '</h2>' + badge(b.status) +
      '<span class="kv">for <b>' + dur((now - b.stateSince) / 1000) + '</b></span><span class="tag">' + esc(b.mode) + '</span>' +
      '<span class="kv">strategy ' + strategyControl(b, admin) + (b.strategyErrors ? ' <span class="bad">' + num(b.strategyErrors) + ' errors</span>' : '') + '</span>' +
      '<span class="sp"></span><span class="kv"><b>' + b.eligible + '</b> of ' + b.servers.length + ' servers take traffic</span></div>' +
      '<div class="facts"><span>sessions <b>' + num(st.scur) + '</b> now · max ' + num(st.smax) + ' · ' + num(st.stot) + ' total</span>' +
      '<span>bytes <b>' + bytes(st.bin) + '</b> in · <b>' + bytes(st.bout) + '</b> out</span>' +
      '<span>errors conn/resp <b class="' + (st.econ || st.eresp ? 'bad' : '') + '">' + num(st.econ) + ' / ' + num(st.eresp) + '</b></span>' +
      '<span>retries <b>' + num(st.wretr) + '</b></span>' + overloadFacts(b.overload) +
      '<span>health <b>' + esc(b.health) + '</b></span>' + (b.sticky ? '<span>sticky <b>' + esc(b.sticky) + '</b></span>' : '') + '</div>' +
      '<div class="charts">' + chartBox('rate', http ? 'Requests/s' : 'Connections/s', rc, chartMin, perSec) +
      chartBox('time', 'Avg response time', tc, chartMin, ms) + '</div>' +
      '<div class="scroll"><table class="rt"><thead><tr><th class="l">Server</th><th class="l">State</th><th class="l">Health check</th><th>Weight</th><th>Sessions</th><th>' +
      (http ? 'Req/s' : 'Sess/s') + '</th><th>Bytes in / out</th><th class="l">Responses</th><th title="connection errors / response errors; retries below">Errors</th><th>Resp. time</th><th class="l tl">Health, last ' + span(tlMin) + '</th>' +
      (admin ? '<th class="l">Admin</th>' : '') + '</tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  // ---- overload protection (docs/overload.md): queue, circuit breaker, slow start, rate limits ----
  /** A server's weight; during a slow-start ramp the effective weight first, then the configured one. */
  function weightCell(x) {
    if (x.rampUntil == null || x.effectiveWeight === x.weight) return num(x.weight);
    return '<b data-k="ramp">' + esc(x.effectiveWeight) + '</b> → ' + num(x.weight) + sub('slow start, ' + dur((x.rampUntil - Date.now()) / 1000) + ' left');
  }
  function rateNote(o) {
    if (!o || (!o.rateLimited && !o.connLimited)) return '';
    return sub('<span class="t4" data-k="limited">429 × ' + num(o.rateLimited) + (o.connLimited ? ' · ' + num(o.connLimited) + ' conn.' : '') + '</span>', 'refused by rate_limit');
  }
  function overloadFacts(o) {
    if (!o) return '';
    var q = o.queue, out = '', tripped = [], k;
    if (q.limit > 0 || q.max > 0) {
      out += '<span data-k="queue">queue <b>' + num(o.queue.waiting) + '</b> / ' + num(q.limit) + ' · max ' + num(q.max) + ' · wait avg ' + ms(q.avgWaitMs) + ', max ' + ms(q.maxWaitMs) + '</span>';
    }
    for (k in o.refusals) if (o.refusals[k]) tripped.push(k + ' ' + num(o.refusals[k]));
    if (o.breaker || tripped.length) {
      out += '<span data-k="breaker">limits <b class="' + (tripped.length ? 'bad' : '') + '">' + (tripped.length ? esc(tripped.join(' · ')) : 'none tripped') + '</b>' +
        (o.retries ? ' · ' + num(o.retries) + ' retrying' : '') + '</span>';
    }
    if (o.slowStartMs) out += '<span>slow start <b>' + dur(o.slowStartMs / 1000) + '</b></span>';
    return out;
  }

  function renderEvents(list) {
    var body = list.length ? '<ol>' + list.map(function (e) {
      return '<li data-key="' + esc(e.t + e.backend + e.server + e.to) + '"><time>' + esc(clock(e.t)) + '</time><b>' + esc(e.backend + '/' + e.server) + '</b> ' + badge(e.from) + ' → ' + badge(e.to) +
        ' <span class="kv">' + esc(e.reason) + '</span></li>';
    }).join('') + '</ol>' : '<div class="empty">No state change in the last hour.</div>';
    return '<section class="card" id="events"><div class="head"><h2>State changes</h2><span class="kv">last hour, newest first</span></div>' + body + '</section>';
  }
`;
