import { wireAdmin } from './admin.js';
import { renderBackend } from './backends.js';
import { renderFrontends, renderTls, renderUserCode } from './frontends.js';
import { connect, followHistory, poll, type LiveHandlers } from './live.js';
import { patch } from './patch.js';
import { loggedIn, userName } from './session.js';
import { renderEvents, renderReload, renderSummary } from './summary.js';
import type { HistoryJson, StatsJson, Transition } from './types.js';

// The stats page's entry point: holds the latest snapshot, history and transitions, and
// draws every section from them (patched in place, patch.ts) on each snapshot and every
// second between them, so that times in state and the charts' "now" move.

let stats: StatsJson | null = null;
const history = new Map<string, HistoryJson>();
let transitions: Transition[] = [];
let lastMessage = 0;
/** A render was skipped while a drop-down was open; do it when focus moves. */
let deferred = false;

const STALE_MS = 6000;

function byId(id: string): HTMLElement {
  return document.getElementById(id)!;
}

function setLive(on: boolean): void {
  byId('dot').className = `dot ${on ? 'on' : 'off'}`;
  byId('live-text').textContent = on ? 'live' : 'reconnecting…';
}

function header(s: StatsJson): void {
  const admin = loggedIn() && s.admin;
  byId('meta').textContent =
    `pid ${s.pid}${s.workers ? ` · ${s.workers.count} workers` : ''} · config generation ${s.generation}` +
    (s.configSource ? ` · ${s.configSource}` : ' · embedded config');
  byId('login').hidden = !s.admin || loggedIn();
  byId('logout').hidden = !loggedIn();
  byId('reload').hidden = !admin;
  byId('who').textContent = loggedIn() ? `admin: ${userName()}` : s.admin ? '' : 'read-only (no stats.auth)';
}

function render(): void {
  const s = stats;
  if (s === null) return;
  // Re-rendering would close an open strategy drop-down: wait until it loses focus.
  if (document.activeElement?.tagName === 'SELECT') {
    deferred = true;
    return;
  }
  deferred = false;
  const now = Date.now();
  const view = { now, admin: loggedIn() && s.admin, strategies: s.strategies };
  header(s);
  patch('banner', renderReload(s));
  patch('summary', renderSummary(s));
  patch('frontends', renderFrontends(s) + renderTls(s, now) + renderUserCode(s, now));
  patch(
    'backends',
    s.backends.length ? s.backends.map((b) => renderBackend(b, history.get(b.name), view)).join('') : '<div class="card empty">No backend.</div>',
  );
  patch('events-box', renderEvents(transitions.slice(-100).reverse()));
}

const handlers: LiveHandlers = {
  stats(s) {
    stats = s;
    lastMessage = Date.now();
    setLive(true);
    render();
  },
  transition(t) {
    transitions.push(t);
    history.get(t.backend)?.events.push(t);
  },
  history(backends) {
    const all: Transition[] = [];
    for (const h of backends) {
      history.set(h.backend, h);
      all.push(...h.events);
    }
    transitions = all.sort((a, b) => a.t - b.t);
    render();
  },
  lost() {
    setLive(false);
  },
};

wireAdmin({ render, refresh: () => void poll(handlers) });
document.addEventListener('focusout', () => {
  setTimeout(() => {
    if (deferred) render();
  }, 0);
});
setInterval(() => {
  if (Date.now() - lastMessage > STALE_MS) setLive(false);
  render();
}, 1000);
connect(handlers);
followHistory(handlers);
