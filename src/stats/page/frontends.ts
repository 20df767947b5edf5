import { badge, errorPair, sub, td } from './cells.js';
import { codes } from './charts.js';
import { bytes, dur, esc, num, plural } from './format.js';
import type { FrontendJson, StatsJson } from './types.js';

// The cards about the listening side: frontends (with their routes), TLS and user code.

/** Requests refused by rate_limit, under a frontend's error counts. */
function rateNote(o: FrontendJson['overload'] | undefined): string {
  if (!o || (!o.rateLimited && !o.connLimited)) return '';
  const conn = o.connLimited ? ` · ${num(o.connLimited)} conn.` : '';
  return sub(`<span class="t4" data-k="limited">429 × ${num(o.rateLimited)}${conn}</span>`, 'refused by rate_limit');
}

/** A frontend's routes in order (first match wins) with their hits, under its row. */
function renderRoutes(f: FrontendJson): string {
  if (!f.routes?.length) return '';
  let total = 0;
  for (const r of f.routes) total += r.hits;
  const rows = f.routes
    .map((r) => {
      const share = total ? Math.round((r.hits * 100) / total) : 0;
      return (
        `<tr data-key="${esc(`fe/${f.name}/route/${r.name}`)}" data-route="${esc(r.name)}">${td('Route', `<b>${esc(r.name)}</b>`, 'l')}${td('Match', esc(r.match), 'l')}` +
        `${td('Action', esc(r.action), 'l')}${td('Hits', num(r.hits) + sub(`${share}%`))}</tr>`
      );
    })
    .join('');
  return (
    `<tr class="routes" data-key="fe/${esc(f.name)}/routes"><td colspan="9" class="wide"><table class="inner" aria-label="routes of ${esc(f.name)}"><thead><tr>` +
    `<th class="l">Route</th><th class="l">Match</th><th class="l">Action</th><th>Hits</th></tr></thead><tbody>${rows}</tbody></table></td></tr>`
  );
}

function frontendRow(f: FrontendJson): string {
  const st = f.stats;
  const http = st.req_rate !== undefined;
  return (
    `<tr data-key="fe/${esc(f.name)}" data-frontend="${esc(f.name)}" data-state="UP">` +
    td('Frontend', `<b>${esc(f.name)}</b>${sub(`${esc(f.bind)} → ${esc(f.backend)}`)}`, 'l name') +
    td('Mode', `<span class="tag">${esc(f.mode)}</span>`, 'l') +
    td('Status', badge('OPEN'), 'l') +
    td('Sessions', `${num(st.scur)} / ${num(st.smax)}${sub(`limit ${st.slim ? num(st.slim) : 'none'}`)}`) +
    td('Total', num(st.stot) + (http ? sub(`${num(st.req_tot)} requests`) : '')) +
    td(http ? 'Requests/s' : 'Sessions/s', num(http ? st.req_rate : st.rate) + sub(`max ${num(http ? st.req_rate_max : st.rate_max)}`)) +
    td('Bytes in / out', bytes(st.bin) + sub(`${bytes(st.bout)} out`)) +
    td('Responses', codes(st), 'l') +
    td('Req. errors / denied', errorPair(st.ereq, st.dreq) + rateNote(f.overload)) +
    `</tr>${renderRoutes(f)}`
  );
}

export function renderFrontends(s: Pick<StatsJson, 'frontends'>): string {
  if (!s.frontends.length) return '';
  return (
    `<section class="card" id="frontends-card"><div class="head"><h2>Frontends</h2><span class="kv">${s.frontends.length} listening</span></div>` +
    '<div class="scroll"><table class="rt"><thead><tr><th class="l">Frontend</th><th class="l">Mode</th><th class="l">Status</th>' +
    '<th>Sessions</th><th>Total</th><th>Rate</th><th>Bytes in / out</th><th class="l">Responses</th><th>Req. errors / denied</th></tr></thead>' +
    `<tbody>${s.frontends.map(frontendRow).join('')}</tbody></table></div></section>`
  );
}

type TlsFrontend = FrontendJson & { tls: NonNullable<FrontendJson['tls']> };

function tlsRow(f: TlsFrontend, now: number): string {
  const x = f.tls;
  const fails = Object.keys(x.failures).filter((k) => x.failures[k]! > 0);
  const failText = fails.length ? fails.map((k) => `${esc(k.replace('_', ' '))} ${num(x.failures[k])}`).join(', ') : '–';
  const certs = x.certificates.length
    ? x.certificates
        .map((c) => {
          const days = Math.floor((c.notAfter - now) / 86400000);
          const cls = days < 7 ? 'bad' : days < 30 ? 't4' : '';
          return `<span class="${cls}">${esc(c.names.join(', ') || c.file)} · ${days < 0 ? 'expired' : `${num(days)} days left`}</span>`;
        })
        .join('<br>')
    : x.kind === 'sni-route'
      ? 'passthrough by SNI'
      : '–';
  const handshakes =
    x.kind === 'terminate' ? `TLS 1.3 ${num(x.versions['TLSv1.3'])} · 1.2 ${num(x.versions['TLSv1.2'])} · resumed ${num(x.resumed)}` : 'ClientHellos routed';
  return (
    `<tr data-key="tls/${esc(f.name)}" data-tls="${esc(f.name)}">` +
    td('Frontend', `<b>${esc(f.name)}</b>`, 'l name') +
    td('Handshakes', num(x.handshakes) + sub(handshakes)) +
    td('Failures', failText, 'l') +
    td('Certificates', certs, 'l') +
    '</tr>'
  );
}

/**
 * TLS: per frontend with tls (or SNI routing), handshakes by version, failures by reason, and
 * each certificate's days left (amber under 30 days, red under 7 or expired).
 */
export function renderTls(s: Pick<StatsJson, 'frontends'>, now: number): string {
  const list = s.frontends.filter((f): f is TlsFrontend => !!f.tls);
  if (!list.length) return '';
  return (
    `<section class="card" id="tls-card"><div class="head"><h2>TLS</h2><span class="kv">${plural(list.length, 'frontend')}</span></div>` +
    '<div class="scroll"><table class="rt"><thead><tr><th class="l">Frontend</th><th>Handshakes</th><th class="l">Failures</th><th class="l">Certificates</th></tr></thead>' +
    `<tbody>${list.map((f) => tlsRow(f, now)).join('')}</tbody></table></div></section>`
  );
}

/**
 * User code (docs/programming.md): each router, hooks and strategy module with its version,
 * hot swaps so far and the errors it threw (the request fell back each time).
 */
export function renderUserCode(s: Pick<StatsJson, 'userCode'>, now: number): string {
  const list = s.userCode ?? [];
  if (!list.length) return '';
  const rows = list
    .map((m) => {
      const last = m.lastError ? esc(m.lastError) + sub(`${dur((now - m.lastErrorAt) / 1000)} ago`) : '–';
      return (
        `<tr data-key="code/${esc(m.kind)}/${esc(m.file)}" data-code="${esc(m.file)}">` +
        td('Module', `<b>${esc(m.file.split('/').pop())}</b>${sub(esc(m.file))}`, 'l name') +
        td('Kind', esc(m.kind), 'l') +
        td('Loaded', num(m.loads) + sub(`version ${esc(m.version.slice(0, 12))} · ${dur((now - m.loadedAt) / 1000)} ago`)) +
        td('Errors', m.errors ? `<b class="bad">${num(m.errors)}</b>` : '0') +
        td('Last error', last, 'l') +
        '</tr>'
      );
    })
    .join('');
  return (
    `<section class="card" id="code-card"><div class="head"><h2>User code</h2><span class="kv">${plural(list.length, 'module')}</span></div>` +
    '<div class="scroll"><table class="rt"><thead><tr><th class="l">Module</th><th class="l">Kind</th><th>Loaded</th><th>Errors</th><th class="l">Last error</th></tr></thead>' +
    `<tbody>${rows}</tbody></table></div></section>`
  );
}
