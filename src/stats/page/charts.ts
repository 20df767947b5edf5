import { STATE_COLOR, sub } from './cells.js';
import { clock, esc, num, span } from './format.js';
import type { StatsCells, Transition } from './types.js';

// The SVG drawings: a line chart with its area (request rate, response time), a server's
// health timeline, and the bar of response codes. Colours are SVG attributes, never inline
// styles: the CSP allows no style attribute.

export interface Point {
  t: number;
  v: number | null;
}

export interface Chart {
  svg: string;
  last: number | null;
  max: number;
}

/**
 * The window a chart shows: back to the oldest sample (rounded up to 10 s), at least 30 s, at
 * most max — a listener started a minute ago draws a full chart, not a sliver at the edge.
 */
export function windowOf(samples: readonly { t: number }[], now: number, maxMinutes: number): number {
  const first = samples.length ? samples[0]!.t : now;
  return Math.min(maxMinutes, Math.max(0.5, Math.ceil((now - first) / 10000) / 6));
}

/** A line over [now - minutes, now]; a gap (null) lifts the pen. The area is filled when there is no gap. */
export function lineChart(points: readonly Point[], now: number, minutes: number, empty = 'no data yet'): Chart {
  const W = 600;
  const H = 64;
  const t0 = now - minutes * 60000;
  let max = 0;
  for (const p of points) if (p.t >= t0 && p.v !== null && p.v > max) max = p.v;
  const top = max > 0 ? max * 1.15 : 1;
  let d = '';
  let first: number | null = null;
  let lastX = 0;
  let pen = false;
  let last: number | null = null;
  for (const p of points) {
    if (p.t < t0) continue;
    if (p.v === null) {
      pen = false;
      continue;
    }
    const x = ((p.t - t0) / (now - t0)) * W;
    const y = H - 3 - (p.v / top) * (H - 8);
    d += `${pen ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`;
    if (first === null) first = x;
    lastX = x;
    pen = true;
    last = p.v;
  }
  const area =
    d && first !== null && d.indexOf('M', 1) < 0
      ? `<path d="${d}L${lastX.toFixed(1)} ${H}L${first.toFixed(1)} ${H}Z" fill="#0969da" fill-opacity=".12" stroke="none"/>`
      : '';
  const line = d
    ? `<path d="${d}" fill="none" stroke="#0969da" stroke-width="2" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>`
    : `<text x="${W / 2}" y="${H / 2 + 4}" text-anchor="middle" class="nodata">${esc(empty)}</text>`;
  return { svg: `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img">${area}${line}</svg>`, last, max };
}

/** A chart with its title, the value now and the maximum, and the time axis. */
export function chartBox(kind: string, title: string, c: Chart, minutes: number, fmt: (v: number) => string): string {
  return (
    `<div class="chart" data-chart="${kind}"><div class="t"><span>${esc(title)}</span><span><b>${esc(c.last === null ? '–' : fmt(c.last))}</b> now · max ${esc(c.max > 0 ? fmt(c.max) : '–')}</span></div>${c.svg}` +
    `<div class="axis"><span>−${esc(span(minutes))}</span><span>now</span></div></div>`
  );
}

interface Stretch {
  t: number;
  s: string;
}

/** A server's health over the window: samples and transitions, one rect per stretch of one state. */
export function timeline(
  samples: readonly { t: number; state: string }[],
  events: readonly Transition[],
  now: number,
  minutes: number,
  current: string,
): string {
  const W = 1000;
  const t0 = now - minutes * 60000;
  const pts: Stretch[] = samples.map((x) => ({ t: x.t, s: x.state }));
  for (const e of events) pts.push({ t: e.t, s: e.to });
  pts.sort((a, b) => a.t - b.t);
  pts.push({ t: now, s: current });
  let out = '';
  for (let i = 0; i < pts.length - 1; i++) {
    const a = Math.max(pts[i]!.t, t0);
    let b = pts[i + 1]!.t;
    // One rect per stretch of one state, not one per sample (no seams between them).
    while (i + 2 < pts.length && pts[i + 1]!.s === pts[i]!.s) {
      i++;
      b = pts[i + 1]!.t;
    }
    if (b <= t0 || b <= a) continue;
    const state = pts[i]!.s;
    const x = ((a - t0) / (now - t0)) * W;
    const w = Math.max(2, ((b - a) / (now - t0)) * W);
    out +=
      `<rect data-state="${esc(state)}" x="${x.toFixed(1)}" y="0" width="${w.toFixed(1)}" height="16" fill="${STATE_COLOR[state] ?? '#8c959f'}">` +
      `<title>${esc(`${state} ${clock(a)}–${clock(b)}`)}</title></rect>`;
  }
  return `<svg viewBox="0 0 ${W} 16" preserveAspectRatio="none" role="img" aria-label="health over the last ${esc(span(minutes))}">${out}</svg>`;
}

const CODE_CLASSES: readonly (readonly [column: string, label: string, color: string])[] = [
  ['hrsp_1xx', '1xx', '#8c959f'],
  ['hrsp_2xx', '2xx', '#2da44e'],
  ['hrsp_3xx', '3xx', '#218bff'],
  ['hrsp_4xx', '4xx', '#d4a72c'],
  ['hrsp_5xx', '5xx', '#cf222e'],
  ['hrsp_other', 'other', '#6e7781'],
];

/** Response codes: a bar split by class, and the classes that are not zero. `tcp` in TCP mode. */
export function codes(st: StatsCells): string {
  if (st.hrsp_2xx === undefined) return '<span class="kv">tcp</span>';
  const count = (column: string): number => Number(st[column] ?? 0);
  let total = 0;
  for (const [column] of CODE_CLASSES) total += count(column);
  let bar = '';
  let x = 0;
  const text: string[] = [];
  for (const [column, label, color] of CODE_CLASSES) {
    const n = count(column);
    if (!n) continue;
    bar += `<rect x="${x.toFixed(2)}" y="0" width="${((n / total) * 100).toFixed(2)}" height="8" fill="${color}"/>`;
    x += (n / total) * 100;
    text.push(`<span class="${label === '5xx' ? 't5' : label === '4xx' ? 't4' : ''}">${label} ${num(n)}</span>`);
  }
  const title = CODE_CLASSES.map(([column, label]) => `${label}: ${num(count(column))}`).join(', ');
  return (
    `<svg class="codes" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">${bar}</svg>` +
    sub(text.length ? text.join(' · ') : 'no response yet', title)
  );
}
