import { esc, num } from './format.js';

// The small HTML pieces every table uses: state badges, a muted second line, labelled cells.

/** Fill colours of the states in the SVG timelines (CSS holds the same colours for the badges). */
export const STATE_COLOR: Readonly<Record<string, string>> = { UP: '#2da44e', DOWN: '#cf222e', MAINT: '#218bff', DRAIN: '#d4a72c', NOLB: '#8c959f' };

/** HAProxy's transitional statuses ('UP 2/3', 'DOWN 1/2') get their own colours. */
function stateClass(status: string): string {
  const word = status.split(' ')[0];
  if (status.indexOf('/') > 0) return word === 'DOWN' ? 's-GU' : 's-GD';
  return `s-${word}`;
}

/** The first word of a status (`DOWN 1/2` → `DOWN`): what rows and badges are marked with. */
export function stateWord(status: string): string {
  return status.split(' ')[0] ?? '';
}

export function badge(status: string, title?: string): string {
  const titled = title ? ` title="${esc(title)}"` : '';
  return `<span class="badge ${stateClass(status)}" data-state="${esc(stateWord(status))}"${titled}>${esc(status)}</span>`;
}

/** A muted second line under a value; `html` is markup already escaped. */
export function sub(html: string, title?: string): string {
  return `<span class="sub"${title ? ` title="${esc(title)}"` : ''}>${html}</span>`;
}

/** A table cell; the label is what the narrow (card) layout shows above the value. */
export function td(label: string, html: string, cls?: string): string {
  return `<td data-label="${esc(label)}"${cls ? ` class="${cls}"` : ''}>${html}</td>`;
}

/** `errors a / b`, red when either is not zero. */
export function errorPair(a: number | string | undefined, b: number | string | undefined): string {
  return a || b ? `<span class="bad">${num(a || 0)} / ${num(b || 0)}</span>` : '0 / 0';
}
