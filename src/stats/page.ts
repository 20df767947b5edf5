import { createHash } from 'node:crypto';

// The stats page: one self-contained HTML document (inline CSS and JS, SVG charts drawn by the
// code below, nothing fetched from elsewhere: the CSP says so). It listens to /api/events
// (server-sent events: a /api/stats snapshot every 2 s and each state transition at once) and
// reads /api/history every 10 s for the charts and health timelines. Cells are keyed by the
// column table's names (the JSON `stats` objects), the same names as the CSV header.
// Admin controls appear after a login (kept in sessionStorage, sent as basic auth by fetch).

const STYLE = String.raw`
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;--up:#1a7f37;--upbg:#dafbe1;--down:#cf222e;--downbg:#ffebe9;
--maint:#0969da;--maintbg:#ddf4ff;--drain:#9a6700;--drainbg:#fff8c5;--nolb:#6e7781;--nolbbg:#eaeef2;--gd:#bc4c00;--gdbg:#fff1e5;--gu:#4d7c0f;--gubg:#ecfccb}
*{box-sizing:border-box}
body{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:10px 16px;background:#24292f;color:#fff}
header h1{font-size:16px;margin:0;font-weight:600}
header .meta{color:#d0d7de;font-size:12px}
header .sp{flex:1}
header button{background:#fff;color:#24292f;border:0;border-radius:6px;padding:4px 10px;font:inherit;cursor:pointer}
.live{display:inline-flex;align-items:center;gap:5px;font-size:12px;color:#d0d7de}
.dot{width:9px;height:9px;border-radius:50%;background:#8c959f}
.dot.on{background:#2da44e;box-shadow:0 0 0 3px rgba(45,164,78,.3)}
.dot.off{background:#cf222e}
main{padding:12px 16px;max-width:1600px;margin:0 auto}
.banner{margin:0 0 12px;padding:8px 12px;border-radius:6px;border:1px solid}
.banner.err{background:var(--downbg);border-color:#ff818266;color:#82071e}
.banner.ok{background:var(--upbg);border-color:#4ac26b66;color:#116329}
.banner ul{margin:4px 0 0;padding-left:20px}
.chips{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:12px}
.chip{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:6px 10px}
.chip b{font-size:15px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;margin-bottom:14px;overflow:hidden}
.card>.head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 14px;padding:8px 12px;border-bottom:1px solid var(--line);background:#fafbfc}
.card h2{font-size:15px;margin:0}
.kv{color:var(--muted)}
.kv b{color:var(--fg);font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px;padding:8px 12px;border-bottom:1px solid var(--line)}
.chart{flex:1 1 260px;min-width:0}
.chart .t{display:flex;justify-content:space-between;color:var(--muted);font-size:12px}
.chart svg{display:block;width:100%;height:56px;background:#fafbfc;border:1px solid #eaeef2;border-radius:4px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;background:#fafbfc}
th.l,td.l{text-align:left}
tbody tr:hover{background:#f6f8fa}
.sub{display:block;color:var(--muted);font-size:11px}
.badge{display:inline-block;min-width:46px;text-align:center;padding:1px 7px;border-radius:10px;font-weight:600;font-size:12px;border:1px solid transparent}
.s-UP,.s-OPEN{color:var(--up);background:var(--upbg);border-color:#4ac26b66}
.s-DOWN{color:var(--down);background:var(--downbg);border-color:#ff818266}
.s-MAINT{color:var(--maint);background:var(--maintbg);border-color:#54aeff66}
.s-DRAIN{color:var(--drain);background:var(--drainbg);border-color:#d4a72c66}
.s-NOLB{color:var(--nolb);background:var(--nolbbg)}
.s-GD{color:var(--gd);background:var(--gdbg);border-color:#fb8f4466}
.s-GU{color:var(--gu);background:var(--gubg);border-color:#84cc1666}
.codes span{display:inline-block;min-width:34px}
.c5{color:var(--down);font-weight:600}.c4{color:var(--drain)}
.err{color:var(--down);font-weight:600}
.tl{width:180px}
.tl svg{display:block;width:100%;height:14px;border-radius:3px;background:#eaeef2}
.adm button{font:inherit;font-size:12px;padding:2px 7px;margin-left:2px;border:1px solid var(--line);border-radius:5px;background:#fff;cursor:pointer}
.adm button.cur{background:#24292f;color:#fff;border-color:#24292f}
.adm button:disabled{cursor:default}
select{font:inherit;padding:1px 4px}
#events ol{list-style:none;margin:0;padding:0;max-height:260px;overflow:auto}
#events li{padding:4px 12px;border-bottom:1px solid #eaeef2}
#events time{color:var(--muted);margin-right:8px;font-variant-numeric:tabular-nums}
.empty{padding:10px 12px;color:var(--muted)}
#toast{position:fixed;right:16px;bottom:16px;max-width:380px;padding:8px 12px;border-radius:6px;background:#24292f;color:#fff;opacity:0;transition:opacity .2s;pointer-events:none}
#toast.show{opacity:1}
#toast.bad{background:#a40e26}
dialog{border:1px solid var(--line);border-radius:8px;padding:16px;max-width:320px;width:90vw}
dialog h3{margin-top:0}
dialog label{display:block;margin-bottom:8px}
dialog input{display:block;width:100%;font:inherit;padding:5px;margin-top:2px}
dialog .row{display:flex;gap:8px;justify-content:flex-end;margin-top:10px}
dialog .msg{color:var(--down);min-height:1.2em}
.scroll{overflow-x:auto}
@media (max-width:760px){
  main{padding:8px}
  header{padding:8px}
  .tl{width:auto}
  table.rt thead{display:none}
  table.rt,table.rt tbody,table.rt tr,table.rt td{display:block;width:100%}
  table.rt tr{border-bottom:2px solid var(--line);padding:4px 0}
  table.rt td{display:flex;justify-content:space-between;gap:12px;text-align:right;border:0;padding:3px 10px;white-space:normal}
  table.rt td::before{content:attr(data-label);color:var(--muted);font-size:12px;text-align:left;flex:none}
  table.rt td.name{font-size:14px;font-weight:600;background:#fafbfc}
  table.rt td.tl svg{width:60%}
  .sub{display:inline;margin-left:6px}
}
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var stats = null, hist = {}, evts = [], lastMsg = 0, auth = sessionStorage.getItem('switchyard-auth');
  var user = sessionStorage.getItem('switchyard-user') || '', deferred = false, es = null;
  var STRATEGIES = ['round-robin', 'least-connections', 'ip-hash', 'random'];
  var CHART_MIN = 15, TL_MIN = 60;
  var $ = function (id) { return document.getElementById(id); };

  function esc(v) {
    return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function num(v) { return v == null || v === '' ? '' : Number(v).toLocaleString('en-US'); }
  function bytes(v) {
    if (v == null) return '';
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
  function ms(v) { return v == null || v === '' ? '' : (v < 10 ? Number(v).toFixed(1) : Math.round(v)) + ' ms'; }
  function clock(t) { return new Date(t).toLocaleTimeString('en-GB'); }
  function stateClass(status) {
    var s = String(status || ''), w = s.split(' ')[0];
    if (s.indexOf('/') > 0) return w === 'DOWN' ? 's-GU' : 's-GD';
    return 's-' + w;
  }
  function badge(status) {
    var w = String(status).split(' ')[0];
    return '<span class="badge ' + stateClass(status) + '" data-state="' + esc(w) + '">' + esc(status) + '</span>';
  }
  function td(label, html, cls) { return '<td data-label="' + esc(label) + '"' + (cls ? ' class="' + cls + '"' : '') + '>' + html + '</td>'; }

  var toastTimer = null;
  function toast(msg, bad) {
    var t = $('toast');
    t.textContent = msg;
    t.className = 'show' + (bad ? ' bad' : '');
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
    return fetch(url, { method: method, headers: headers(body ? { 'content-type': 'application/json' } : {}), body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; }); });
  }

  // ---- charts: request rate and response time of a backend over the last minutes ----
  function lineChart(points, now, minutes, fmt) {
    var W = 600, H = 56, t0 = now - minutes * 60000, max = 0, i, p, d = '', last = null;
    for (i = 0; i < points.length; i++) if (points[i].v != null && points[i].v > max) max = points[i].v;
    var top = max > 0 ? max * 1.15 : 1;
    var pen = false;
    for (i = 0; i < points.length; i++) {
      p = points[i];
      if (p.t < t0) continue;
      if (p.v == null) { pen = false; continue; }
      var x = ((p.t - t0) / (now - t0)) * W, y = H - 2 - (p.v / top) * (H - 6);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
      last = p.v;
    }
    var svg = '<svg viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none" role="img">' +
      (d ? '<path d="' + d + '" fill="none" stroke="#0969da" stroke-width="1.6" vector-effect="non-scaling-stroke"/>' : '') + '</svg>';
    return { svg: svg, last: last == null ? '–' : fmt(last), max: max > 0 ? fmt(max) : '–' };
  }
  function chartBox(title, c) {
    return '<div class="chart"><div class="t"><span>' + esc(title) + '</span><span>now ' + esc(c.last) + ' · max ' + esc(c.max) + '</span></div>' + c.svg + '</div>';
  }

  // ---- health timeline: one bar per server, coloured by state, from /api/history ----
  var TL_COLOR = { UP: '#2da44e', DOWN: '#cf222e', MAINT: '#0969da', DRAIN: '#d4a72c', NOLB: '#8c959f' };
  function timeline(samples, events, now, current) {
    var W = 1000, t0 = now - TL_MIN * 60000, out = '', i;
    var pts = [];
    for (i = 0; i < samples.length; i++) pts.push({ t: samples[i].t, s: samples[i].state });
    for (i = 0; i < events.length; i++) pts.push({ t: events[i].t, s: events[i].to });
    pts.sort(function (a, b) { return a.t - b.t; });
    pts.push({ t: now, s: current });
    for (i = 0; i < pts.length - 1; i++) {
      var a = Math.max(pts[i].t, t0), b = pts[i + 1].t;
      if (b <= t0 || b <= a) continue;
      var x = (a - t0) / (now - t0) * W, w = Math.max(1, (b - a) / (now - t0) * W);
      out += '<rect x="' + x.toFixed(1) + '" y="0" width="' + w.toFixed(1) + '" height="14" fill="' + (TL_COLOR[pts[i].s] || '#8c959f') + '"><title>' +
        esc(pts[i].s + ' ' + clock(a) + '–' + clock(b)) + '</title></rect>';
    }
    return '<svg viewBox="0 0 ' + W + ' 14" preserveAspectRatio="none" role="img" aria-label="health over the last ' + TL_MIN + ' minutes">' + out + '</svg>';
  }

  // ---- rendering ----
  function codes(st) {
    if (st.hrsp_2xx == null) return '<span class="kv">tcp</span>';
    return '<span class="codes"><span title="1xx">' + num(st.hrsp_1xx) + '</span> <span title="2xx">' + num(st.hrsp_2xx) + '</span> <span title="3xx">' + num(st.hrsp_3xx) +
      '</span> <span class="' + (st.hrsp_4xx ? 'c4' : '') + '" title="4xx">' + num(st.hrsp_4xx) + '</span> <span class="' + (st.hrsp_5xx ? 'c5' : '') + '" title="5xx">' + num(st.hrsp_5xx) + '</span></span>';
  }
  function errs(a, b) { return (a || b) ? '<span class="err">' + num(a || 0) + ' / ' + num(b || 0) + '</span>' : '0 / 0'; }

  function renderSummary(s) {
    var c = { UP: 0, DOWN: 0, MAINT: 0, DRAIN: 0 }, srv = 0, beUp = 0, rate = 0;
    s.backends.forEach(function (b) {
      if (b.status === 'UP') beUp++;
      b.servers.forEach(function (x) { srv++; c[x.state] = (c[x.state] || 0) + 1; });
    });
    s.frontends.forEach(function (f) { rate += Number(f.stats.req_rate != null ? f.stats.req_rate : f.stats.rate || 0); });
    return '<div class="chip">Frontends <b>' + s.frontends.length + '</b></div>' +
      '<div class="chip">Backends <b>' + beUp + '</b>/' + s.backends.length + ' UP</div>' +
      '<div class="chip">Servers <b>' + srv + '</b>: <span class="badge s-UP">' + c.UP + ' UP</span> <span class="badge s-DOWN">' + c.DOWN +
      ' DOWN</span> <span class="badge s-MAINT">' + c.MAINT + ' MAINT</span> <span class="badge s-DRAIN">' + c.DRAIN + ' DRAIN</span></div>' +
      '<div class="chip">Rate <b>' + num(rate) + '</b>/s</div>';
  }

  function renderReload(s) {
    var r = s.lastReload;
    if (!r) return '';
    if (r.ok) return '';
    return '<div class="banner err" id="reload-error"><b>Last reload rejected</b> at ' + esc(clock(r.at)) + ' — the running config (generation ' + esc(r.generation) +
      ') stays.<ul>' + r.errors.map(function (e) { return '<li>' + esc(e) + '</li>'; }).join('') + '</ul></div>';
  }

  function renderFrontends(s) {
    if (!s.frontends.length) return '';
    var rows = s.frontends.map(function (f) {
      var st = f.stats;
      return '<tr data-frontend="' + esc(f.name) + '">' +
        td('Frontend', '<b>' + esc(f.name) + '</b><span class="sub">' + esc(f.bind) + ' → ' + esc(f.backend) + '</span>', 'l name') +
        td('Mode', esc(f.mode), 'l') + td('Status', badge('OPEN'), 'l') +
        td('Sessions cur / max / limit', num(st.scur) + ' / ' + num(st.smax) + ' / ' + (st.slim ? num(st.slim) : '∞')) +
        td('Total', num(st.stot)) +
        td('Rate conn / req', num(st.rate) + ' / ' + (st.req_rate != null ? num(st.req_rate) : '–') + '<span class="sub">max ' + num(st.rate_max) + '</span>') +
        td('Bytes in / out', bytes(st.bin) + ' / ' + bytes(st.bout)) +
        td('1xx 2xx 3xx 4xx 5xx', codes(st)) +
        td('Req errors / denied', errs(st.ereq, st.dreq)) + '</tr>';
    }).join('');
    return '<section class="card"><div class="head"><h2>Frontends</h2></div><div class="scroll"><table class="rt"><thead><tr><th class="l">Frontend</th><th class="l">Mode</th><th class="l">Status</th>' +
      '<th>Sessions cur / max / limit</th><th>Total</th><th>Rate conn / req</th><th>Bytes in / out</th><th>1xx 2xx 3xx 4xx 5xx</th><th>Req errors / denied</th></tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  function adminButtons(b, x) {
    if (!auth || !stats.admin) return '';
    return ['ready', 'drain', 'maint'].map(function (a) {
      return '<button data-act="state" data-state="' + a + '" data-backend="' + esc(b.name) + '" data-server="' + esc(x.name) + '"' +
        (x.admin === a ? ' class="cur" disabled' : '') + '>' + a + '</button>';
    }).join('');
  }

  function strategyControl(b) {
    if (!auth || !stats.admin) return '<b>' + esc(b.strategy) + '</b>';
    var opts = STRATEGIES.slice();
    if (opts.indexOf(b.strategy) < 0) opts.push(b.strategy);
    return '<select data-act="strategy" data-backend="' + esc(b.name) + '" aria-label="strategy of ' + esc(b.name) + '">' + opts.map(function (o) {
      return '<option' + (o === b.strategy ? ' selected' : '') + '>' + esc(o) + '</option>';
    }).join('') + '</select>';
  }

  function renderBackend(b, now) {
    var st = b.stats, h = hist[b.name], samples = h ? h.samples : [];
    var rate = samples.map(function (p) { return { t: p.t, v: p.rate }; });
    var rt = samples.map(function (p) { return { t: p.t, v: p.avgMs }; });
    rate.push({ t: now, v: Number(st.rate || 0) });
    var rc = lineChart(rate, now, CHART_MIN, function (v) { return (v < 10 ? Number(v).toFixed(1) : Math.round(v)) + '/s'; });
    var tc = lineChart(rt, now, CHART_MIN, ms);
    var adminCol = auth && stats.admin;
    var rows = b.servers.map(function (x) {
      var s = x.stats, ck = x.check, hs = null, i;
      if (h) for (i = 0; i < h.servers.length; i++) if (h.servers[i].name === x.name) hs = h.servers[i];
      var evs = h ? h.events.filter(function (e) { return e.server === x.name; }) : [];
      var check = ck.enabled ? esc(s.check_status || '') + (ck.durationMs != null ? ' <span class="kv">' + esc(ms(ck.durationMs)) + '</span>' : '') +
        '<span class="sub" title="' + esc(ck.reason) + '">' + esc(ck.reason || '') + '</span>' : '<span class="kv">no check</span>';
      return '<tr class="srv" data-backend="' + esc(b.name) + '" data-server="' + esc(x.name) + '">' +
        td('Server', '<b>' + esc(x.name) + '</b>' + (x.backup ? ' <span class="kv">backup</span>' : '') + '<span class="sub">' + esc(x.address) + '</span>', 'l name') +
        td('State', badge(x.status) + '<span class="sub" title="' + esc(x.stateReason) + '">for ' + dur((now - x.stateSince) / 1000) + (x.stateReason ? ' · ' + esc(x.stateReason) : '') + '</span>', 'l state') +
        td('Check', check, 'l') +
        td('Weight', num(x.weight)) +
        td('Sessions cur / max / total', num(s.scur) + ' / ' + num(s.smax) + ' / ' + num(s.stot)) +
        td('Rate', num(s.rate) + '/s<span class="sub">max ' + num(s.rate_max) + '</span>') +
        td('Bytes in / out', bytes(s.bin) + ' / ' + bytes(s.bout)) +
        td('1xx 2xx 3xx 4xx 5xx', codes(s)) +
        td('Errors conn / resp', errs(s.econ, s.eresp)) +
        td('Retries / redisp', num(s.wretr) + ' / ' + num(s.wredis)) +
        td('Resp. time', ms(s.ttime) + '<span class="sub">connect ' + ms(s.ctime) + '</span>') +
        td('Downtime', s.downtime ? dur(s.downtime) : '0s') +
        td('Health, last ' + TL_MIN + ' min', timeline(hs ? hs.samples : [], evs, now, x.state), 'tl') +
        (adminCol ? td('Admin', adminButtons(b, x), 'adm') : '') + '</tr>';
    }).join('');
    return '<section class="card backend" data-backend="' + esc(b.name) + '"><div class="head"><h2>' + esc(b.name) + '</h2>' + badge(b.status) +
      '<span class="kv">for <b>' + dur((now - b.stateSince) / 1000) + '</b></span>' +
      '<span class="kv">mode <b>' + esc(b.mode) + '</b></span>' +
      '<span class="kv">strategy ' + strategyControl(b) + (b.strategyErrors ? ' <span class="err">' + num(b.strategyErrors) + ' errors</span>' : '') + '</span>' +
      '<span class="kv">eligible <b>' + b.eligible + '</b>/' + b.servers.length + '</span>' +
      '<span class="kv">sessions <b>' + num(st.scur) + '</b> / ' + num(st.smax) + ' / ' + num(st.stot) + '</span>' +
      '<span class="kv">bytes <b>' + bytes(st.bin) + '</b> / ' + bytes(st.bout) + '</span>' +
      '<span class="kv">health <b>' + esc(b.health) + '</b></span>' +
      (b.sticky ? '<span class="kv">sticky <b>' + esc(b.sticky) + '</b></span>' : '') +
      '<span class="kv">errors conn/resp <b>' + num(st.econ) + '</b> / ' + num(st.eresp) + '</span>' +
      '<span class="kv">retries <b>' + num(st.wretr) + '</b></span>' +
      '</div><div class="charts">' + chartBox('Requests/s, last ' + CHART_MIN + ' min', rc) + chartBox('Avg response time, last ' + CHART_MIN + ' min', tc) + '</div>' +
      '<div class="scroll"><table class="rt"><thead><tr><th class="l">Server</th><th class="l">State</th><th class="l">Check</th><th>Weight</th><th>Sessions cur / max / total</th><th>Rate</th>' +
      '<th>Bytes in / out</th><th>1xx 2xx 3xx 4xx 5xx</th><th>Errors conn / resp</th><th>Retries / redisp</th><th>Resp. time</th><th>Downtime</th><th class="l">Health, last ' + TL_MIN + ' min</th>' +
      (adminCol ? '<th>Admin</th>' : '') + '</tr></thead><tbody>' + rows + '</tbody></table></div></section>';
  }

  function renderEvents() {
    var list = evts.slice(-100).reverse();
    var body = list.length ? '<ol>' + list.map(function (e) {
      return '<li><time>' + esc(clock(e.t)) + '</time><b>' + esc(e.backend + '/' + e.server) + '</b> ' + badge(e.from) + ' → ' + badge(e.to) + ' <span class="kv">' + esc(e.reason) + '</span></li>';
    }).join('') + '</ol>' : '<div class="empty">No state change in the last hour.</div>';
    return '<section class="card" id="events"><div class="head"><h2>State changes</h2><span class="kv">last hour</span></div>' + body + '</section>';
  }

  function render() {
    if (!stats) return;
    var a = document.activeElement;
    if (a && a.tagName === 'SELECT') { deferred = true; return; }
    deferred = false;
    var now = Date.now(), s = stats;
    $('meta').textContent = 'up ' + dur(s.uptimeSeconds) + ' · config generation ' + s.generation + ' · pid ' + s.pid +
      (s.workers ? ' · ' + s.workers.count + ' workers' : '') + (s.configSource ? ' · ' + s.configSource : ' · embedded demo');
    $('login').hidden = !s.admin || !!auth;
    $('logout').hidden = !auth;
    $('reload').hidden = !auth || !s.admin;
    $('who').textContent = auth ? 'admin: ' + user : '';
    $('banner').innerHTML = renderReload(s);
    $('summary').innerHTML = renderSummary(s);
    $('frontends').innerHTML = renderFrontends(s);
    $('backends').innerHTML = s.backends.length ? s.backends.map(function (b) { return renderBackend(b, now); }).join('') : '<div class="card empty">No backend.</div>';
    $('events-box').innerHTML = renderEvents();
  }

  function setLive(on) {
    var d = $('dot');
    d.className = 'dot ' + (on ? 'on' : 'off');
    $('live-text').textContent = on ? 'live' : 'reconnecting…';
  }

  function onStats(json) {
    try { stats = JSON.parse(json); } catch (e) { return; }
    lastMsg = Date.now();
    setLive(true);
    render();
  }

  function loadHistory() {
    return api('GET', '/api/history?minutes=' + TL_MIN).then(function (r) {
      if (r.status !== 200 || !r.body.backends) return;
      var all = [];
      r.body.backends.forEach(function (h) { hist[h.backend] = h; all = all.concat(h.events); });
      all.sort(function (a, b) { return a.t - b.t; });
      evts = all;
      render();
    }).catch(function () {});
  }

  function poll() {
    api('GET', '/api/stats').then(function (r) { if (r.status === 200) { stats = r.body; lastMsg = Date.now(); setLive(true); render(); } })
      .catch(function () { setLive(false); });
  }

  function connect() {
    if (!window.EventSource) { poll(); setInterval(poll, 2000); return; }
    es = new EventSource('/api/events');
    es.addEventListener('stats', function (e) { onStats(e.data); });
    es.addEventListener('transition', function (e) {
      try { var t = JSON.parse(e.data); evts.push(t); if (hist[t.backend]) hist[t.backend].events.push(t); } catch (x) { return; }
    });
    es.onerror = function () { setLive(false); };
  }

  function changeState(b, s, st) {
    api('POST', '/api/backends/' + encodeURIComponent(b) + '/servers/' + encodeURIComponent(s) + '/state', { state: st }).then(function (r) {
      if (r.status === 200) toast(b + '/' + s + ' is now ' + r.body.state);
      else failed(r);
    }).catch(function (e) { toast(String(e), true); });
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

  document.addEventListener('click', function (e) {
    var el = e.target.closest ? e.target.closest('button[data-act]') : null;
    if (!el) return;
    if (el.getAttribute('data-act') === 'state') changeState(el.getAttribute('data-backend'), el.getAttribute('data-server'), el.getAttribute('data-state'));
  });
  document.addEventListener('change', function (e) {
    var el = e.target;
    if (!el || el.getAttribute('data-act') !== 'strategy') return;
    var b = el.getAttribute('data-backend'), v = el.value;
    el.blur();
    api('PUT', '/api/backends/' + encodeURIComponent(b) + '/strategy', { strategy: v }).then(function (r) {
      if (r.status === 200) toast(b + ' now balances with ' + r.body.strategy); else failed(r);
      render();
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

  setInterval(function () {
    if (Date.now() - lastMsg > 6000) setLive(false);
    else if (stats) render();
  }, 1000);
  setInterval(loadHistory, 10000);
  connect();
  loadHistory();
})();
`;

const BODY = String.raw`<header>
<h1>switchyard</h1><span class="live"><span id="dot" class="dot"></span><span id="live-text">connecting…</span></span>
<span id="meta" class="meta"></span><span class="sp"></span>
<span id="who" class="meta"></span>
<button id="reload" type="button" hidden>Reload config</button>
<button id="login" type="button" hidden>Log in</button>
<button id="logout" type="button" hidden>Log out</button>
</header>
<main>
<div id="banner"></div>
<div id="summary" class="chips"></div>
<div id="frontends"></div>
<div id="backends"></div>
<div id="events-box"></div>
</main>
<div id="toast" role="status"></div>
<dialog id="dlg"><form id="form">
<h3>Admin login</h3>
<label>Username<input id="u" name="username" autocomplete="username" required></label>
<label>Password<input id="p" name="password" type="password" autocomplete="current-password" required></label>
<div id="msg" class="msg"></div>
<div class="row"><button type="button" id="cancel">Cancel</button><button type="submit" id="submit">Log in</button></div>
</form></dialog>`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard stats</title>
<style>${STYLE}</style>
</head><body>
${BODY}
<script>${SCRIPT}</script>
</body></html>
`;

/** Only this page's own script and style run; requests go to this listener only. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
