import { badge } from './cells.js';
import { clock, dur, esc, num, plural } from './format.js';
import type { StatsJson, Transition } from './types.js';

// The page's top and bottom: the summary tiles, the banner of a rejected reload, and the list
// of state changes.

const SUMMARY_STATES = ['UP', 'DOWN', 'MAINT', 'DRAIN'] as const;

export function renderSummary(s: StatsJson): string {
  const count: Record<string, number> = { UP: 0, DOWN: 0, MAINT: 0, DRAIN: 0 };
  let servers = 0;
  let backendsUp = 0;
  let rate = 0;
  let current = 0;
  let e5 = 0;
  for (const b of s.backends) {
    if (b.status === 'UP') backendsUp++;
    for (const x of b.servers) {
      servers++;
      count[x.state] = (count[x.state] ?? 0) + 1;
    }
  }
  for (const f of s.frontends) {
    rate += Number(f.stats.req_rate ?? f.stats.rate ?? 0);
    current += Number(f.stats.scur ?? 0);
    e5 += Number(f.stats.hrsp_5xx ?? 0);
  }
  const pills = SUMMARY_STATES.map((k) => `<span class="badge s-${k}" data-k="${k.toLowerCase()}">${count[k]} ${k}</span>`).join('');
  const down = s.backends.length - backendsUp;
  return (
    `<div class="tile"><div class="k">Requests/s</div><div class="v" data-k="rate">${num(rate)}</div></div>` +
    `<div class="tile"><div class="k">Sessions now</div><div class="v">${num(current)}</div></div>` +
    `<div class="tile wide"><div class="k">Servers</div><div class="v">${servers} <small>in ${plural(s.backends.length, 'backend')}` +
    `${down > 0 ? `, <span class="bad">${down} DOWN</span>` : ''}</small></div><div class="pills">${pills}</div></div>` +
    `<div class="tile"><div class="k">5xx answered</div><div class="v${e5 ? ' bad' : ''}">${num(e5)}</div></div>` +
    `<div class="tile"><div class="k">Uptime</div><div class="v">${dur(s.uptimeSeconds)}</div></div>`
  );
}

/** The errors of the last reload when it was rejected (the running config stays). */
export function renderReload(s: StatsJson): string {
  const r = s.lastReload;
  if (!r || r.ok) return '';
  return (
    `<div class="banner" id="reload-error"><b>Last reload rejected</b> at ${esc(clock(r.at))} — the running config (generation ${esc(r.generation)}) stays.` +
    `<ul>${r.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul></div>`
  );
}

/** State transitions, newest first. */
export function renderEvents(list: readonly Transition[]): string {
  const body = list.length
    ? `<ol>${list
        .map(
          (e) =>
            `<li data-key="${esc(`ev/${e.t}/${e.backend}/${e.server}/${e.to}`)}"><time>${esc(clock(e.t))}</time><b>${esc(`${e.backend}/${e.server}`)}</b> ` +
            `${badge(e.from)} → ${badge(e.to)} <span class="kv">${esc(e.reason)}</span></li>`,
        )
        .join('')}</ol>`
    : '<div class="empty">No state change in the last hour.</div>';
  return `<section class="card" id="events"><div class="head"><h2>State changes</h2><span class="kv">last hour, newest first</span></div>${body}</section>`;
}
