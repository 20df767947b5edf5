// Numbers, sizes, durations and times as the page prints them, and HTML escaping. Pure
// functions of their arguments (the tests call them in Node too).

type Cell = number | string | null | undefined;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML, in content and in quoted attributes alike. */
export function esc(v: Cell): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const missing = (v: Cell): v is null | undefined | '' => v === null || v === undefined || v === '';

export function num(v: Cell): string {
  return missing(v) ? '–' : Number(v).toLocaleString('en-US');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(v: Cell): string {
  if (missing(v)) return '–';
  let n = Number(v);
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${UNITS[i]}`;
}

/** A duration in seconds, to its two largest units: `3d 4h`, `5m 2s`, `9s`. */
export function dur(seconds: number): string {
  const sec = Math.max(0, Math.floor(seconds));
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function ms(v: Cell): string {
  if (missing(v)) return '–';
  const n = Number(v);
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`;
}

export function perSec(v: number): string {
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`;
}

export function clock(t: number): string {
  return new Date(t).toLocaleTimeString('en-GB');
}

/** A chart's time window in words: `1 h`, `15 min`, `30 s`. */
export function span(minutes: number): string {
  if (minutes >= 60) return `${Math.round(minutes / 60)} h`;
  if (minutes >= 1) return `${Math.round(minutes)} min`;
  return `${Math.round(minutes * 60)} s`;
}

/** `1 backend`, `2 backends`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
