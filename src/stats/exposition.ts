// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format), written
// directly: `/metrics` is one pass that appends families to a string.
//
// Why not prom-client's metric classes for switchyard's own families: its Histogram can only be
// fed by observe(), one value at a time, and our histograms are counts per bucket that the data
// path keeps in Counters (the data path never calls a metrics library); and its writer spells
// NaN `Nan`, which strict parsers (OpenMetrics, other scrapers) refuse. prom-client still
// collects the process and Node.js metrics (metrics.ts), which this writer formats too.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

const METRIC_TYPES: ReadonlySet<string> = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function isMetricType(type: string): type is MetricType {
  return METRIC_TYPES.has(type);
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `a="x",b="y"` in the object's key order (label names are ours, already valid). */
export function labelPairs(labels: Readonly<Partial<Record<string, string | number>>>): string {
  let out = '';
  for (const name in labels) {
    const v = labels[name];
    if (v === undefined) continue;
    out += `${out === '' ? '' : ','}${name}="${typeof v === 'number' ? String(v) : escapeLabelValue(v)}"`;
  }
  return out;
}

/** A sample value: Go's float spelling for the specials (`NaN`, `+Inf`, `-Inf`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Appends families and their samples; `text` is the body, ending in a line feed. */
export class Exposition {
  private out = '';

  /** Starts a family: its HELP and TYPE lines (a blank line before each but the first). */
  family(name: string, help: string, type: MetricType): void {
    this.out += `${this.out === '' ? '' : '\n'}# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
  }

  /** One sample; `labels` is a labelPairs() string ('' for none). */
  sample(name: string, labels: string, value: number): void {
    this.out += labels === '' ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`;
  }

  /** Text already in this format (a previous render's families), appended as it is. */
  raw(text: string): void {
    if (text === '') return;
    this.out += `${this.out === '' ? '' : '\n'}${text}`;
  }

  get text(): string {
    return this.out;
  }
}
