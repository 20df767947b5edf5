import { badge, errorPair, stateWord, sub, td } from './cells.js';
import { chartBox, codes, lineChart, timeline, windowOf } from './charts.js';
import { bytes, dur, esc, ms, num, perSec, plural, span } from './format.js';
import type { BackendJson, HistoryJson, JsonServer, StatsCells } from './types.js';

// One card per backend: its state and facts, the request-rate and response-time charts, and
// a row per server with its health timeline and, for a logged-in admin, the state buttons
// and the strategy drop-down.

export interface BackendView {
  readonly now: number;
  /** The admin controls are shown (logged in, and the listener has stats.auth). */
  readonly admin: boolean;
  /** Built-in strategy names, from the server (/api/stats `strategies`). */
  readonly strategies: readonly string[];
}

function adminButtons(b: BackendJson, x: JsonServer): string {
  const buttons = ['ready', 'drain', 'maint'].map(
    (a) =>
      `<button type="button" data-act="state" data-state="${a}" data-backend="${esc(b.name)}" data-server="${esc(x.name)}"` +
      `${x.admin === a ? ' class="cur" disabled aria-pressed="true"' : ' aria-pressed="false"'} title="${a} ${esc(x.name)}">${a}</button>`,
  );
  return `<span class="seg" role="group" aria-label="admin state of ${esc(x.name)}">${buttons.join('')}</span>`;
}

/** The strategy in use; for an admin a drop-down of the built-ins (plus a user module in use). */
function strategyControl(b: BackendJson, view: BackendView): string {
  if (!view.admin) return `<b>${esc(b.strategy)}</b>`;
  const options = view.strategies.includes(b.strategy) ? view.strategies : [...view.strategies, b.strategy];
  return (
    `<select data-act="strategy" data-backend="${esc(b.name)}" aria-label="strategy of ${esc(b.name)}">` +
    options.map((o) => `<option${o === b.strategy ? ' selected' : ''}>${esc(o)}</option>`).join('') +
    '</select>'
  );
}

/** A server's weight; during a slow-start ramp the effective weight first, then the configured one. */
function weightCell(x: JsonServer, now: number): string {
  if (x.rampUntil === null || x.effectiveWeight === x.weight) return num(x.weight);
  return `<b data-k="ramp">${esc(x.effectiveWeight)}</b> → ${num(x.weight)}${sub(`slow start, ${dur((x.rampUntil - now) / 1000)} left`)}`;
}

/** Total time DOWN (whole seconds, HAProxy's downtime) and how often (chkdown). */
function downNote(st: StatsCells): string {
  const secs = Number(st.downtime ?? 0);
  const times = Number(st.chkdown ?? 0);
  if (!secs && !times) return sub('never down');
  const how = secs ? dur(secs) : '&lt;1s';
  return sub(times ? `${times}× down · ${how}` : `down ${how}`, `DOWN ${times} times, ${secs} s in all`);
}

/** Queue, circuit breaker and slow start (docs/overload.md), in the backend's facts line. */
function overloadFacts(o: BackendJson['overload'] | undefined): string {
  if (!o) return '';
  const q = o.queue;
  let out = '';
  if (q.limit > 0 || q.max > 0) {
    out += `<span data-k="queue">queue <b>${num(q.waiting)}</b> / ${num(q.limit)} · max ${num(q.max)} · wait avg ${ms(q.avgWaitMs)}, max ${ms(q.maxWaitMs)}</span>`;
  }
  const tripped = Object.keys(o.refusals)
    .filter((k) => o.refusals[k])
    .map((k) => `${k} ${num(o.refusals[k])}`);
  if (o.breaker || tripped.length) {
    out +=
      `<span data-k="breaker">limits <b class="${tripped.length ? 'bad' : ''}">${tripped.length ? esc(tripped.join(' · ')) : 'none tripped'}</b>` +
      `${o.retries ? ` · ${num(o.retries)} retrying` : ''}</span>`;
  }
  if (o.slowStartMs) out += `<span>slow start <b>${dur(o.slowStartMs / 1000)}</b></span>`;
  return out;
}

function serverRow(b: BackendJson, x: JsonServer, h: HistoryJson | undefined, tlMin: number, view: BackendView): string {
  const s = x.stats;
  const ck = x.check;
  const now = view.now;
  const http = b.mode === 'http';
  const word = stateWord(x.status);
  const hs = h?.servers.find((server) => server.name === x.name);
  const events = h ? h.events.filter((e) => e.server === x.name) : [];
  const check = ck.enabled
    ? `<b>${esc(s.check_status ?? '–')}</b> ${esc(ck.durationMs !== null ? ms(ck.durationMs) : '')}${sub(esc(ck.reason), ck.reason)}`
    : '<span class="kv">no check</span>';
  const queued = s.qcur ? ` · <b data-k="squeue">${num(s.qcur)}</b> queued` : '';
  return (
    `<tr class="srv" data-key="be/${esc(b.name)}/srv/${esc(x.name)}" data-backend="${esc(b.name)}" data-server="${esc(x.name)}" data-state="${esc(word)}">` +
    td('Server', `<b>${esc(x.name)}</b>${x.backup ? ' <span class="tag">backup</span>' : ''}${sub(esc(x.address))}`, 'l name') +
    // The reason a server is UP is rarely news; why it is not UP always is.
    td(
      'State',
      badge(x.status, x.stateReason) +
        sub(`for ${dur((now - x.stateSince) / 1000)}${x.stateReason && word !== 'UP' ? ` · ${esc(x.stateReason)}` : ''}`, x.stateReason),
      'l state',
    ) +
    td('Health check', check, 'l') +
    td('Weight', weightCell(x, now)) +
    td('Sessions', `${num(s.scur)} / ${num(s.smax)}${sub(`${num(s.stot)} total${queued}`)}`) +
    td(http ? 'Requests/s' : 'Sessions/s', num(s.rate) + sub(`max ${num(s.rate_max)}`)) +
    td('Bytes in / out', bytes(s.bin) + sub(`${bytes(s.bout)} out`)) +
    td('Responses', codes(s), 'l') +
    td('Errors conn / resp', errorPair(s.econ, s.eresp) + sub(`${num(s.wretr)} retries${s.wredis ? ` · ${num(s.wredis)} redisp.` : ''}`)) +
    td('Response time', ms(s.ttime) + sub(`conn. ${ms(s.ctime)}`, 'average connect time')) +
    td(`Health, last ${span(tlMin)}`, timeline(hs ? hs.samples : [], events, now, tlMin, x.state) + downNote(s), 'l tl') +
    (view.admin ? td('Admin', adminButtons(b, x), 'l adm') : '') +
    '</tr>'
  );
}

/** Where discovered servers come from (Consul) and whether that source answers, in the facts line. */
function discoveryFacts(d: BackendJson['discovery'], now: number): string {
  if (!d) return '';
  const last = d.lastSuccessAt === null ? 'no answer yet' : `last answer ${dur((now - d.lastSuccessAt) / 1000)} ago`;
  const error = d.lastError ?? '';
  // The servers of the last answer keep serving; the error says why the source is not answering.
  const failing = d.failures ? ` · <b class="bad" title="${esc(error)}">failing ×${num(d.failures)}</b> ${esc(error.slice(0, 80))}` : '';
  return `<span data-k="discovery">${esc(d.provider)} <b>${esc(d.service)}</b> · ${plural(d.servers, 'server')} · ${last}${failing}</span>`;
}

function facts(b: BackendJson, now: number): string {
  const st = b.stats;
  return (
    `<div class="facts"><span>sessions <b>${num(st.scur)}</b> now · max ${num(st.smax)} · ${num(st.stot)} total</span>` +
    `<span>bytes <b>${bytes(st.bin)}</b> in · <b>${bytes(st.bout)}</b> out</span>` +
    `<span>errors conn/resp <b class="${st.econ || st.eresp ? 'bad' : ''}">${num(st.econ)} / ${num(st.eresp)}</b></span>` +
    `<span>retries <b>${num(st.wretr)}</b></span>${overloadFacts(b.overload)}` +
    `<span>health <b>${esc(b.health)}</b></span>${b.sticky ? `<span>sticky <b>${esc(b.sticky)}</b></span>` : ''}${discoveryFacts(b.discovery, now)}</div>`
  );
}

export function renderBackend(b: BackendJson, h: HistoryJson | undefined, view: BackendView): string {
  const now = view.now;
  const samples = h ? h.samples : [];
  const http = b.mode === 'http';
  const chartMin = windowOf(samples, now, 15);
  const tlMin = windowOf(samples, now, 60);
  const rate = lineChart(
    samples.map((p) => ({ t: p.t, v: p.rate })),
    now,
    chartMin,
  );
  const time = lineChart(
    samples.map((p) => ({ t: p.t, v: p.avgMs })),
    now,
    chartMin,
    http ? 'no request finished yet' : 'no response times in TCP mode',
  );
  const rows = b.servers.map((x) => serverRow(b, x, h, tlMin, view)).join('');
  return (
    `<section class="card backend" data-key="be/${esc(b.name)}" data-backend="${esc(b.name)}"><div class="head"><h2>${esc(b.name)}</h2>${badge(b.status)}` +
    `<span class="kv">for <b>${dur((now - b.stateSince) / 1000)}</b></span><span class="tag">${esc(b.mode)}</span>` +
    `<span class="kv">strategy ${strategyControl(b, view)}${b.strategyErrors ? ` <span class="bad">${num(b.strategyErrors)} errors</span>` : ''}</span>` +
    `<span class="sp"></span><span class="kv"><b>${b.eligible}</b> of ${b.servers.length} servers take traffic</span></div>` +
    facts(b, now) +
    `<div class="charts">${chartBox('rate', http ? 'Requests/s' : 'Connections/s', rate, chartMin, perSec)}${chartBox('time', 'Avg response time', time, chartMin, ms)}</div>` +
    '<div class="scroll"><table class="rt"><thead><tr><th class="l">Server</th><th class="l">State</th><th class="l">Health check</th><th>Weight</th><th>Sessions</th>' +
    `<th>${http ? 'Req/s' : 'Sess/s'}</th><th>Bytes in / out</th><th class="l">Responses</th><th title="connection errors / response errors; retries below">Errors</th>` +
    `<th>Resp. time</th><th class="l tl">Health, last ${span(tlMin)}</th>${view.admin ? '<th class="l">Admin</th>' : ''}</tr></thead>` +
    `<tbody>${rows}</tbody></table></div></section>`
  );
}
