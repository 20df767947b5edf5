import { api } from './session.js';
import type { HistoryJson, StatsJson, Transition } from './types.js';

// Where the page's data comes from: /api/events (server-sent events: a /api/stats snapshot
// every interval, and each state transition at once), and /api/history for the charts and
// timelines at the listener's own sampling pace. Without EventSource it polls /api/stats.

export interface LiveHandlers {
  stats(s: StatsJson): void;
  transition(t: Transition): void;
  history(backends: readonly HistoryJson[]): void;
  /** The connection to the listener was lost (the event stream retries by itself). */
  lost(): void;
}

const POLL_MS = 2000;

function parse<T>(data: unknown): T | null {
  try {
    return JSON.parse(String(data)) as T;
  } catch {
    return null;
  }
}

/** One /api/stats snapshot now. */
export async function poll(handlers: LiveHandlers): Promise<void> {
  try {
    const r = await api<StatsJson>('GET', '/api/stats');
    if (r.status === 200) handlers.stats(r.body);
  } catch {
    handlers.lost();
  }
}

export function connect(handlers: LiveHandlers): void {
  if (!('EventSource' in window)) {
    void poll(handlers);
    setInterval(() => void poll(handlers), POLL_MS);
    return;
  }
  const es = new EventSource('/api/events');
  es.addEventListener('stats', (e) => {
    const s = parse<StatsJson>(e.data);
    if (s !== null) handlers.stats(s);
  });
  es.addEventListener('transition', (e) => {
    const t = parse<Transition>(e.data);
    if (t !== null) handlers.transition(t);
  });
  es.onerror = () => handlers.lost();
}

/** History now, then again at the listener's sampling pace: every 2 s at most, every 10 s at least. */
export function followHistory(handlers: LiveHandlers): void {
  let every = 10000;
  const load = async (): Promise<void> => {
    try {
      const r = await api<{ backends?: HistoryJson[] }>('GET', '/api/history?minutes=60');
      if (r.status === 200 && r.body.backends) {
        for (const h of r.body.backends) every = Math.min(10000, Math.max(2000, h.intervalSeconds * 1000));
        handlers.history(r.body.backends);
      }
    } catch {
      // The event stream reports the lost connection; history comes back with it.
    }
    setTimeout(() => void load(), every);
  };
  void load();
}
