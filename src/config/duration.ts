// Durations in the config: `250ms`, `10s`, `5m`, `1h` (decimals allowed: `1.5s`), or a plain
// number meaning milliseconds. Everything downstream works in integer milliseconds.

export const DURATION_MESSAGE = 'expected a duration like 250ms, 10s, 5m';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?$/;

/** Milliseconds for a duration value, or null when it is not one (negative, NaN, junk). */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value) : null;
  }
  if (typeof value !== 'string') return null;
  const m = DURATION.exec(value.trim());
  if (m === null) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** The shortest exact spelling of a duration, for summaries and docs: 1500 -> `1500ms`, 60000 -> `1m`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
