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

/** An event's JSON; null when it is not JSON (the event is skipped). */
function parse(data: string): unknown {
  try {
    return JSON.parse(data);
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
  es.addEventListener('stats', (e: MessageEvent<string>) => {
    const s = parse(e.data) as StatsJson | null;
    if (s !== null) handlers.stats(s);
  });
  es.addEventListener('transition', (e: MessageEvent<string>) => {
    const t = parse(e.data) as Transition | null;
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
